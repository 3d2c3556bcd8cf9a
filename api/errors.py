"""Domain errors of the REST layer and the one place that turns errors into HTTP responses.

Every error answer has one body: ``{"error": {"code", "message", "details": [{"loc", "msg"}]}}``.
Services raise the exceptions below; :func:`install_exception_handlers` maps them -- and
FastAPI's own 404/405/422, database outages and Prefect outages -- to that body.

Exception tree::

    ApiError                              500 internal_error
    ├── BadRequestError                   400 bad_request
    ├── UnauthorizedError                 401 unauthorized (WWW-Authenticate)
    ├── ForbiddenError                    403 forbidden
    ├── NotFoundError                     404 not_found
    ├── ConflictError                     409 conflict
    │   ├── AlreadyExistsError            409 already_exists
    │   ├── ImmutableVersionError         409 immutable_version
    │   ├── InUseError                    409 in_use
    │   ├── InvalidTransitionError        409 invalid_transition
    │   └── IdempotencyKeyReusedError     409 idempotency_key_reused
    ├── PayloadTooLargeError              413 payload_too_large
    ├── UnsupportedMediaTypeError         415 unsupported_media_type
    ├── UnprocessableError                422 validation_error
    ├── RateLimitedError                  429 rate_limited (Retry-After)
    └── ServiceUnavailableError           503 service_unavailable (Retry-After)
        ├── DatabaseUnavailableError      503 database_unavailable
        └── PrefectUnavailableError       503 prefect_unavailable
"""

from __future__ import annotations

import logging
import math
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from specs.errors import json_path

logger = logging.getLogger("trinity.api")

WWW_AUTHENTICATE = 'Bearer realm="trinity", ApiKey realm="trinity", header="X-API-Key"'


@dataclass(frozen=True)
class Detail:
    """One located problem: ``loc`` is a JSON path for bodies, ``query.x`` / ``path.x`` otherwise."""

    loc: str
    msg: str
    line: int | None = None
    col: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"loc": self.loc, "msg": self.msg}
        if self.line is not None:
            out["line"] = self.line
        if self.col is not None:
            out["col"] = self.col
        return out


class ApiError(Exception):
    """Base of every error the API answers with; subclasses fix the status and code."""

    status_code = 500
    code = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        details: Sequence[Detail] = (),
        headers: dict[str, str] | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = list(details)
        self.headers = dict(headers or {})
        if code is not None:
            self.code = code


class BadRequestError(ApiError):
    status_code, code = 400, "bad_request"


class UnauthorizedError(ApiError):
    status_code, code = 401, "unauthorized"

    def __init__(self, message: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.headers.setdefault("WWW-Authenticate", WWW_AUTHENTICATE)


class ForbiddenError(ApiError):
    status_code, code = 403, "forbidden"


class NotFoundError(ApiError):
    status_code, code = 404, "not_found"


class ConflictError(ApiError):
    status_code, code = 409, "conflict"


class AlreadyExistsError(ConflictError):
    code = "already_exists"


class ImmutableVersionError(ConflictError):
    code = "immutable_version"


class InUseError(ConflictError):
    code = "in_use"


class InvalidTransitionError(ConflictError):
    code = "invalid_transition"


class IdempotencyKeyReusedError(ConflictError):
    code = "idempotency_key_reused"


class PayloadTooLargeError(ApiError):
    status_code, code = 413, "payload_too_large"


class UnsupportedMediaTypeError(ApiError):
    status_code, code = 415, "unsupported_media_type"


class UnprocessableError(ApiError):
    status_code, code = 422, "validation_error"


class RateLimitedError(ApiError):
    status_code, code = 429, "rate_limited"

    def __init__(self, message: str, *, retry_after: float, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.headers["Retry-After"] = str(max(1, math.ceil(retry_after)))


class ServiceUnavailableError(ApiError):
    status_code, code = 503, "service_unavailable"
    retry_after = 5

    def __init__(self, message: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.headers.setdefault("Retry-After", str(self.retry_after))


class DatabaseUnavailableError(ServiceUnavailableError):
    code = "database_unavailable"
    retry_after = 2


class PrefectUnavailableError(ServiceUnavailableError):
    code = "prefect_unavailable"


# --- the error body, as documented in OpenAPI ---------------------------------------------------


class ErrorDetail(BaseModel):
    loc: str = Field(description="JSON path into the body ($.a.b[0]) or 'query.x', 'path.x', 'header.x'.")
    msg: str
    line: int | None = None
    col: int | None = None


class ErrorInfo(BaseModel):
    code: str = Field(description="Stable, machine-readable error code.")
    message: str
    details: list[ErrorDetail] = Field(default_factory=list)


class ErrorBody(BaseModel):
    error: ErrorInfo


def error_response(
    status_code: int,
    code: str,
    message: str,
    *,
    details: Sequence[Detail] = (),
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """The one error body every failure answers with."""
    body = {"error": {"code": code, "message": message, "details": [d.to_dict() for d in details]}}
    return JSONResponse(body, status_code=status_code, headers=headers)


# --- translating errors -------------------------------------------------------------------------


def is_number_too_large(exc: BaseException | None) -> bool:
    """True for Python's refusal to read an integer of more digits than it converts (4300 by
    default): what ``json.loads`` and YAML raise for such a number in a body."""
    return isinstance(exc, ValueError) and "integer string conversion" in str(exc)


def number_too_large() -> UnprocessableError:
    """The 422 for a body holding an integer too long to read."""
    limit = sys.get_int_max_str_digits()
    return UnprocessableError(
        "the request body holds a number too large to read",
        details=[Detail(loc="$", msg=f"integers may have at most {limit} digits")],
    )


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def validation_loc(loc: Sequence[Any]) -> str:
    """FastAPI's ``("body", "a", 0)`` -> ``$.a[0]``; ``("query", "limit")`` -> ``query.limit``."""
    parts = list(loc)
    if parts and parts[0] == "body":
        return json_path(p if isinstance(p, int) else str(p) for p in parts[1:])
    return ".".join(str(part) for part in parts) or "$"


def _allowed_methods(request: Request) -> list[str]:
    # Starlette's 405 lists only the first route that matched the path; answer with all of them,
    # as documented in the OpenAPI paths.
    patterns: list[tuple[re.Pattern[str], set[str]]] | None = getattr(request.app.state, "allow", None)
    if patterns is None:
        patterns = []
        for template, item in request.app.openapi().get("paths", {}).items():
            parts = re.split(r"\{[^/{}]+\}", template)
            regex = "^" + "[^/]+".join(re.escape(part) for part in parts) + "$"
            methods = {method.upper() for method in item}
            patterns.append((re.compile(regex), methods))
        request.app.state.allow = patterns
    found: set[str] = set()
    for pattern, methods in patterns:
        if pattern.match(request.url.path):
            found |= methods
    return sorted(found)


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status_code, exc.code, exc.message, details=exc.details, headers=exc.headers)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    message = str(exc.detail)
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(_allowed_methods(request)) or headers.get("Allow", "")
    if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
        if is_number_too_large(exc.__cause__):
            return await _api_error(request, number_too_large())
        # FastAPI's answer to a JSON body that is not UTF-8: the same 422 as any undecodable body.
        detail = Detail(loc="$", msg="the body is not valid JSON text (UTF-8)")
        return error_response(422, "validation_error", "the request body cannot be read", details=[detail])
    if exc.status_code == 404 and exc.detail == "Not Found":
        message = f"no resource at {request.url.path}"
    if exc.status_code == 401:
        headers.setdefault("WWW-Authenticate", WWW_AUTHENTICATE)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, message, headers=headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        Detail(loc=validation_loc(err.get("loc", ())), msg=str(err.get("msg", ""))) for err in exc.errors()
    ]
    return error_response(422, "validation_error", "the request is not valid", details=details)


def is_database_outage(exc: BaseException) -> bool:
    """True for errors that mean the database is unreachable or restarting, not a bad statement."""
    if isinstance(exc, sa_exc.TimeoutError | sa_exc.OperationalError | sa_exc.InterfaceError):
        return True
    return isinstance(exc, sa_exc.DBAPIError) and bool(exc.connection_invalidated)


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    if is_database_outage(exc):
        logger.warning("database unavailable: %s", str(exc).splitlines()[0] if str(exc) else type(exc))
        error = DatabaseUnavailableError("the database is unavailable; retry shortly")
        return await _api_error(request, error)
    if isinstance(exc, sa_exc.IntegrityError):
        # Services check uniqueness first; this is the race where two requests insert at once.
        return error_response(409, "conflict", "the request conflicts with a concurrent change; retry")
    if isinstance(exc, sa_exc.DataError):
        return error_response(422, "validation_error", "a value cannot be stored (out of range or invalid)")
    logger.exception("database error", exc_info=exc)
    return error_response(500, "internal_error", "internal error")


async def _prefect_transport_error(request: Request, exc: Exception) -> JSONResponse:
    logger.warning("Prefect API unreachable: %s", exc)
    return await _api_error(request, PrefectUnavailableError("the Prefect API is unreachable; retry shortly"))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    if is_number_too_large(exc):  # a parser the API does not wrap itself
        return await _api_error(request, number_too_large())
    logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", "internal error")


def install_exception_handlers(app: FastAPI) -> None:
    """Register the handlers that turn every error into the one error body."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(sa_exc.SQLAlchemyError, _database_error)
    app.add_exception_handler(httpx.TransportError, _prefect_transport_error)
    app.add_exception_handler(Exception, _unexpected)
