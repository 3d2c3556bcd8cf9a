"""Semantic versions and version ranges (the ``spec.version`` of a workflow).

Ranges accepted:

* exact: ``1.2.3`` or ``=1.2.3``;
* caret: ``^1.2.3`` (same major; for ``0.x`` the same minor, for ``0.0.x`` the same patch);
* tilde: ``~1.2.3`` (same minor), ``~1`` (same major);
* comparisons: ``>=2.0.0,<3.0.0`` (comma or blank separated, all must hold), with ``>``, ``>=``,
  ``<``, ``<=``, ``=``, ``!=``;
* wildcards: ``*`` (any release), ``1.x``, ``1.2.*``; alternatives joined by ``||``.

Partial versions (``^1``, ``~1.2``, ``>=2``) fill the missing parts with 0. As in npm, a
pre-release (``1.3.0-rc.1``) only matches a range that names a pre-release of the same
``major.minor.patch``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import total_ordering

from specs.errors import SpecError

_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
_PARTIAL = re.compile(
    r"^(0|[1-9]\d*)(?:\.(0|[1-9]\d*))?(?:\.(0|[1-9]\d*))?"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$"
)
_COMPARATOR = re.compile(r"^(>=|<=|>|<|=|!=|\^|~)?\s*(\S+)$")
MAX_RANGE_CHARS = 200


class VersionError(SpecError):
    """An invalid version or version range."""


def _prerelease_key(part: str) -> tuple[int, int | str]:
    # Numeric identifiers sort before alphanumeric ones and compare numerically.
    return (0, int(part)) if part.isdigit() else (1, part)


@total_ordering
@dataclass(frozen=True)
class Version:
    """A semantic version (semver.org 2.0.0); build metadata is kept but never compared."""

    major: int
    minor: int
    patch: int
    prerelease: tuple[str, ...] = ()
    build: str = field(default="", compare=False)

    @classmethod
    def parse(cls, text: str) -> Version:
        """Parse ``MAJOR.MINOR.PATCH[-pre][+build]``; raises :class:`VersionError`."""
        match = _SEMVER.match(text.strip()) if isinstance(text, str) else None
        if match is None:
            raise VersionError(f"invalid semantic version '{text}' (expected MAJOR.MINOR.PATCH, e.g. 1.2.0)")
        major, minor, patch, pre, build = match.groups()
        return cls(int(major), int(minor), int(patch), tuple(pre.split(".")) if pre else (), build or "")

    @property
    def release(self) -> tuple[int, int, int]:
        """``(major, minor, patch)`` without pre-release."""
        return (self.major, self.minor, self.patch)

    def _key(self) -> tuple[tuple[int, int, int], int, tuple[tuple[int, int | str], ...]]:
        # A release sorts after all of its pre-releases.
        return (self.release, 0 if self.prerelease else 1, tuple(map(_prerelease_key, self.prerelease)))

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() < other._key()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += "-" + ".".join(self.prerelease)
        if self.build:
            text += "+" + self.build
        return text


@dataclass(frozen=True)
class Comparator:
    """One ``op version`` condition."""

    op: str
    version: Version

    def holds(self, version: Version) -> bool:
        """Whether ``version`` satisfies this condition."""
        ops = {
            "=": version == self.version,
            "!=": version != self.version,
            ">": version > self.version,
            ">=": version >= self.version,
            "<": version < self.version,
            "<=": version <= self.version,
        }
        return ops[self.op]


@dataclass(frozen=True)
class VersionRange:
    """Alternatives (``||``), each a set of comparators that must all hold."""

    text: str
    alternatives: tuple[tuple[Comparator, ...], ...]

    def contains(self, version: str | Version) -> bool:
        """Whether a version satisfies the range (invalid version strings never do)."""
        if isinstance(version, str):
            try:
                version = Version.parse(version)
            except VersionError:
                return False
        return any(self._set_holds(comparators, version) for comparators in self.alternatives)

    @staticmethod
    def _set_holds(comparators: tuple[Comparator, ...], version: Version) -> bool:
        if not all(c.holds(version) for c in comparators):
            return False
        if version.prerelease:
            return any(c.version.prerelease and c.version.release == version.release for c in comparators)
        return True

    def __str__(self) -> str:
        return self.text


def _partial(text: str, whole: str) -> tuple[list[int], tuple[str, ...]]:
    match = _PARTIAL.match(text)
    if match is None:
        raise VersionError(f"invalid version '{text}' in range '{whole}'")
    parts = [int(p) for p in match.groups()[:3] if p is not None]
    pre = match.group(4)
    if pre and len(parts) < 3:
        raise VersionError(f"a pre-release needs a full version, got '{text}' in range '{whole}'")
    return parts, tuple(pre.split(".")) if pre else ()


def _version(parts: list[int], pre: tuple[str, ...] = ()) -> Version:
    filled = [*parts, 0, 0, 0][:3]
    return Version(filled[0], filled[1], filled[2], pre)


def _caret(parts: list[int], pre: tuple[str, ...]) -> tuple[Comparator, ...]:
    low = Comparator(">=", _version(parts, pre))
    if parts[0] != 0 or len(parts) == 1:
        high = _version([parts[0] + 1])
    elif parts[1] != 0 or len(parts) == 2:
        high = _version([0, parts[1] + 1])
    else:
        high = _version([0, 0, parts[2] + 1])
    return (low, Comparator("<", high))


def _tilde(parts: list[int], pre: tuple[str, ...]) -> tuple[Comparator, ...]:
    low = Comparator(">=", _version(parts, pre))
    high = _version([parts[0] + 1]) if len(parts) == 1 else _version([parts[0], parts[1] + 1])
    return (low, Comparator("<", high))


def _comparators(token: str, whole: str) -> tuple[Comparator, ...]:
    match = _COMPARATOR.match(token)
    if match is None:
        raise VersionError(f"invalid version range '{whole}'")
    op, text = match.group(1) or "=", match.group(2)
    text = re.sub(r"(\.[xX*])+$", "", text)  # '1.x' and '1.2.*' are partial versions
    parts, pre = _partial(text, whole)
    if op == "^":
        return _caret(parts, pre)
    if op == "~":
        return _tilde(parts, pre)
    if len(parts) < 3 and op in ("=", "!="):
        # '=1.2' means any 1.2.x, like '~1.2'.
        if op == "=":
            return _tilde(parts, pre)
        raise VersionError(f"'!=' needs a full version, got '{token}' in range '{whole}'")
    if len(parts) < 3 and op in (">", "<="):
        # '>1.2' means above every 1.2.x; '<=1.2' means up to every 1.2.x.
        bump = [parts[0] + 1] if len(parts) == 1 else [parts[0], parts[1] + 1]
        return (Comparator(">=" if op == ">" else "<", _version(bump)),)
    return (Comparator(op, _version(parts, pre)),)


def _tokens(alternative: str) -> list[str]:
    # Allow blanks between an operator and its version: '>= 2.0.0, < 3'.
    compact = re.sub(r"(>=|<=|!=|>|<|=|\^|~)\s+", r"\1", alternative)
    return [t for t in re.split(r"[,\s]+", compact.strip()) if t]


def parse_range(text: str) -> VersionRange:
    """Parse a version range; raises :class:`VersionError` with what was expected."""
    if not isinstance(text, str) or not text.strip():
        raise VersionError("empty version range (expected e.g. '1.2.0', '^1.2.0' or '>=1.0.0,<2.0.0')")
    if len(text) > MAX_RANGE_CHARS:
        raise VersionError(f"version range is over {MAX_RANGE_CHARS} characters")
    alternatives = []
    for alternative in text.split("||"):
        tokens = _tokens(alternative)
        if not tokens:
            raise VersionError(f"empty alternative in version range '{text}'")
        comparators: list[Comparator] = []
        for token in tokens:
            if token in ("*", "x", "X"):
                comparators.append(Comparator(">=", Version(0, 0, 0)))
            else:
                comparators.extend(_comparators(token, text))
        alternatives.append(tuple(comparators))
    return VersionRange(text=text.strip(), alternatives=tuple(alternatives))


def best_match(versions: Iterable[str], range_text: str) -> str | None:
    """The highest of ``versions`` inside the range (invalid versions are skipped), or None."""
    wanted = parse_range(range_text)
    best: tuple[Version, str] | None = None
    for text in versions:
        try:
            version = Version.parse(text)
        except VersionError:
            continue
        if wanted.contains(version) and (best is None or version > best[0]):
            best = (version, text)
    return best[1] if best else None
