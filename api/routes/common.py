"""Shared query parameters and the documented error responses."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Query
from pydantic import BeforeValidator

from api.errors import Detail, ErrorBody, UnprocessableError
from api.models.pagination import MAX_LIMIT

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size.")]
Offset = Annotated[int, Query(ge=0, le=2**31 - 1, description="Items to skip.")]
NameFilter = Annotated[
    str | None, Query(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f]+$", description="Exact name.")
]
TextFilter = Annotated[str | None, Query(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f]+$")]

_DESCRIPTIONS = {
    400: "Bad request",
    401: "Missing or invalid credentials",
    403: "The key's role does not allow this",
    404: "Not found",
    409: "ConflictError with the current state",
    413: "Request body too large",
    415: "Unsupported content type",
    422: "Invalid input; details locate each problem",
    429: "Rate limit exceeded",
    503: "Database or Prefect unavailable; retry after the given delay",
}
_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}}
_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"description": "The accepted schemes.", "schema": {"type": "string"}}},
    429: _RETRY_AFTER,
    503: _RETRY_AFTER,
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries (the one error body) for these status codes."""
    out: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        entry: dict[str, Any] = {"model": ErrorBody, "description": _DESCRIPTIONS[code]}
        if code in _HEADERS:
            entry["headers"] = _HEADERS[code]
        out[code] = entry
    return out


PROTECTED = errors(401, 403, 422, 429, 503)
"""Every authenticated operation may answer these."""


_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def _rfc3339(value: Any) -> Any:
    # Pydantic would also read numbers as Unix times and dates as midnight; the API takes RFC 3339.
    if isinstance(value, str) and not _RFC3339.match(value):
        raise ValueError("expected an RFC 3339 date-time such as 2024-03-01T00:00:00Z")
    return value


DateTimeQuery = Annotated[datetime, BeforeValidator(_rfc3339)]
"""A query date-time: RFC 3339 with an offset (``Z`` or ``+hh:mm``)."""


def as_utc(value: datetime | None, *, name: str) -> datetime | None:
    """A query datetime as aware UTC (naive means UTC); 422 when it falls outside the calendar."""
    if value is None:
        return None
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        raise UnprocessableError(
            "the date is out of range", details=[Detail(loc=f"query.{name}", msg="out of range in UTC")]
        ) from exc
