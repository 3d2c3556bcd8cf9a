"""API keys and JWT access tokens.

Keys are 256-bit random strings (``trn_`` + url-safe base64); only their SHA-256 digest is stored,
so a leaked table does not leak keys, and a fast hash is enough because keys are not guessable.
Tokens are HS256 JWTs signed with ``security.jwt_secret``; only HS256 is accepted on the way in,
which rules out ``alg=none`` and algorithm confusion.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from api.models.api_key import Role

KEY_PREFIX = "trn_"
ALGORITHM = "HS256"
ISSUER = "trinity"


def generate_api_key() -> str:
    """A new random API key (shown once, never stored)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    """The hex SHA-256 digest stored for a key."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def key_matches(key: str, stored_hash: str) -> bool:
    """Constant-time comparison of a presented key with a stored digest."""
    return hmac.compare_digest(hash_api_key(key), stored_hash)


def key_prefix(key: str) -> str:
    """The first characters of a key, safe to show in listings."""
    return key[:12]


@dataclass(frozen=True)
class Principal:
    """Who is calling: the API key (directly or through a token) and its role."""

    key_id: uuid.UUID
    name: str
    role: Role
    via: str  # "api_key" or "token"
    token_id: str | None = None  # the bearer token's jti


class InvalidTokenError(Exception):
    """The bearer token is malformed, signed with another key, of another algorithm, or expired."""


@dataclass(frozen=True)
class TokenClaims:
    key_id: uuid.UUID
    role: Role
    expires_at: datetime
    token_id: str | None = None


def issue_token(
    *, key_id: uuid.UUID, role: Role, secret: str, expiry_seconds: int, token_id: str | None = None
) -> tuple[str, int]:
    """Sign a short-lived token for a key; returns (token, lifetime in seconds).

    ``token_id`` becomes the token's ``jti`` (a new random one when not given).
    """
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": str(key_id),
        "role": role.value,
        "iss": ISSUER,
        "iat": now,
        "nbf": now - timedelta(seconds=5),
        "exp": now + timedelta(seconds=expiry_seconds),
        "jti": token_id or uuid.uuid4().hex,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM), expiry_seconds


def verify_token(token: str, *, secret: str) -> TokenClaims:
    """Check signature, algorithm, issuer and expiry; raise :class:`InvalidTokenError` otherwise."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["sub", "role", "exp", "iat", "iss"]},
            leeway=5,
        )
    except jwt.ExpiredSignatureError as exc:
        raise InvalidTokenError("the token has expired") from exc
    except jwt.PyJWTError as exc:
        raise InvalidTokenError(f"invalid token ({exc})") from exc
    try:
        return TokenClaims(
            key_id=uuid.UUID(str(claims["sub"])),
            role=Role(claims["role"]),
            expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
            token_id=str(claims["jti"])[:64] if claims.get("jti") else None,
        )
    except (ValueError, TypeError) as exc:
        raise InvalidTokenError("invalid token claims") from exc
