"""``/api/v1/graphql``: queries and mutations over HTTP, subscriptions over graphql-transport-ws.

Authentication is REST's: ``X-API-Key`` or ``Authorization: Bearer`` on the request (for a
WebSocket, on the upgrade request or in the ``connection_init`` payload). An operation that
cannot run answers 4xx: 401 without valid credentials, 429 over the rate limit, 400 when it
does not parse or breaks a limit (depth, aliases, size, cost). Errors inside a valid operation
are GraphQL errors with ``extensions.code``, beside the data of the fields that worked.
GraphiQL is served in development mode only.
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError, GraphQLSyntaxError
from starlette.requests import Request
from starlette.responses import Response
from strawberry.exceptions import ConnectionRejectionError
from strawberry.fastapi import GraphQLRouter
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult
from strawberry.types.execution import PreExecutionError

from api.errors import is_number_too_large, number_too_large
from api.graphql.context import Context, get_context
from api.graphql.errors import api_error_extensions
from api.graphql.schema import schema

PATH = "/graphql"
CREDENTIAL_KEYS = {"x-api-key": "api_key", "apikey": "api_key", "authorization": "authorization"}


class TrinityGraphQLRouter(GraphQLRouter[Context, None]):
    """Strawberry's FastAPI router with the API's authentication and status codes."""

    async def execute_single(self, *args: Any, **kwargs: Any) -> ExecutionResult:
        context: Context = kwargs["context"]
        sub_response: Response = kwargs["sub_response"]
        if context.principal is None and context.auth_error is not None:
            error = context.auth_error
            sub_response.status_code = error.status_code
            for name, value in error.headers.items():
                sub_response.headers[name] = value
            extensions = api_error_extensions(error)
            return PreExecutionError(data=None, errors=[GraphQLError(error.message, extensions=extensions)])
        result = await super().execute_single(*args, **kwargs)
        if isinstance(result, PreExecutionError):
            sub_response.status_code = 400
        return result

    def decode_json(self, data: str | bytes) -> object:
        """JSON bodies as Strawberry reads them; an integer too long to read is a 422, not a 500."""
        try:
            return super().decode_json(data)
        except ValueError as exc:
            if is_number_too_large(exc):
                raise number_too_large() from exc
            raise

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        if isinstance(result, PreExecutionError) and result.errors:
            result.errors = [_coded(error) for error in result.errors]
        return await super().process_result(request, result)

    async def on_ws_connect(self, context: Context) -> Any:
        """Authenticate a WebSocket: upgrade headers, else the ``connection_init`` payload."""
        if context.principal is None:
            params = context.connection_params if isinstance(context.connection_params, dict) else {}
            found = {CREDENTIAL_KEYS[k.lower()]: v for k, v in params.items() if k.lower() in CREDENTIAL_KEYS}
            if any(isinstance(v, str) and v for v in found.values()):
                await context.sign_in(api_key=found.get("api_key"), authorization=found.get("authorization"))
        if context.principal is None:
            raise ConnectionRejectionError()
        return await super().on_ws_connect(context)


def _coded(error: GraphQLError) -> GraphQLError:
    if error.extensions and "code" in error.extensions:
        return error
    code = "GRAPHQL_PARSE_FAILED" if isinstance(error, GraphQLSyntaxError) else "GRAPHQL_VALIDATION_FAILED"
    return GraphQLError(
        error.message, error.nodes, error.source, error.positions, error.path, extensions={"code": code}
    )


def graphql_router(*, dev_mode: bool) -> GraphQLRouter[Context, None]:
    """The router to mount under ``/api/v1``; GraphiQL only when ``dev_mode``."""
    return TrinityGraphQLRouter(
        schema,
        path=PATH,
        graphql_ide="graphiql" if dev_mode else None,
        allow_queries_via_get=False,
        context_getter=get_context,
        include_in_schema=False,
    )
