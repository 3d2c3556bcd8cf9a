"""GraphQL errors with the API's rules: every error carries ``extensions.code``.

Services raise the REST layer's :class:`~api.errors.ApiError` family; :class:`ErrorCodes` turns
each into a GraphQL error with a stable code (``FORBIDDEN``, ``UNAUTHENTICATED``, ``NOT_FOUND``,
``BAD_USER_INPUT``, ``CONFLICT``, ...), the REST code as ``reason`` and the located ``details``.
Anything unexpected is logged in one line and answered as ``INTERNAL_SERVER_ERROR`` without its
text; a database or Prefect outage is ``SERVICE_UNAVAILABLE``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError
from sqlalchemy.exc import SQLAlchemyError
from strawberry.extensions import SchemaExtension

from api.errors import (
    ApiError,
    ConflictError,
    DatabaseUnavailableError,
    ForbiddenError,
    NotFoundError,
    RateLimitedError,
    ServiceUnavailableError,
    UnauthorizedError,
    is_database_outage,
)
from api.services.events import SlowConsumerError

logger = logging.getLogger("trinity.api")

_CODES: tuple[tuple[type[ApiError], str], ...] = (
    (UnauthorizedError, "UNAUTHENTICATED"),
    (ForbiddenError, "FORBIDDEN"),
    (NotFoundError, "NOT_FOUND"),
    (ConflictError, "CONFLICT"),
    (SlowConsumerError, "SLOW_CONSUMER"),
    (RateLimitedError, "RATE_LIMITED"),
    (ServiceUnavailableError, "SERVICE_UNAVAILABLE"),
)


def code_of(error: ApiError) -> str:
    """The GraphQL code of an API error (4xx input errors are ``BAD_USER_INPUT``)."""
    for kind, code in _CODES:
        if isinstance(error, kind):
            return code
    return "BAD_USER_INPUT" if 400 <= error.status_code < 500 else "INTERNAL_SERVER_ERROR"


def api_error_extensions(error: ApiError) -> dict[str, Any]:
    return {
        "code": code_of(error),
        "reason": error.code,
        "status": error.status_code,
        "details": [detail.to_dict() for detail in error.details],
    }


def bad_input(argument: str, message: str) -> GraphQLError:
    """A GraphQL error about one argument."""
    return GraphQLError(
        f"{argument}: {message}",
        extensions={"code": "BAD_USER_INPUT", "details": [{"loc": argument, "msg": message}]},
    )


def translate(error: GraphQLError) -> GraphQLError:
    """The error as clients see it: with a code, and without the text of unexpected failures."""
    original = error.original_error
    if original is None or isinstance(original, GraphQLError):
        if error.extensions and "code" in error.extensions:
            return error
        extensions = {**(error.extensions or {}), "code": "BAD_USER_INPUT"}
        return GraphQLError(error.message, error.nodes, path=error.path, extensions=extensions)
    if isinstance(original, SQLAlchemyError) and is_database_outage(original):
        logger.warning("database unavailable during a GraphQL operation: %s", str(original).splitlines()[0])
        original = DatabaseUnavailableError("the database is unavailable; retry shortly")
    if isinstance(original, ApiError):
        return GraphQLError(
            original.message,
            error.nodes,
            path=error.path,
            original_error=original,
            extensions=api_error_extensions(original),
        )
    logger.error(
        "GraphQL field %s failed: %s: %s; answered INTERNAL_SERVER_ERROR",
        ".".join(str(p) for p in error.path or ()),
        type(original).__name__,
        original,
    )
    return GraphQLError(
        "internal error", error.nodes, path=error.path, extensions={"code": "INTERNAL_SERVER_ERROR"}
    )


class ErrorCodes(SchemaExtension):
    """Rewrites the errors of each executed operation with :func:`translate`."""

    def on_execute(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is not None and result.errors:
            result.errors = [translate(error) for error in result.errors]
