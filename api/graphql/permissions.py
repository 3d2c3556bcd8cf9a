"""Roles on GraphQL fields, the same as on the REST routes: viewer < operator < admin."""

from __future__ import annotations

from typing import Any

from strawberry.permission import BasePermission
from strawberry.types import Info

from api.deps import check_role
from api.errors import ForbiddenError, UnauthorizedError
from api.models.api_key import Role
from api.security import Principal


def caller(info: Info[Any, Any]) -> Principal:
    """The authenticated caller (UNAUTHENTICATED otherwise)."""
    context = info.context
    if context.principal is None:
        raise context.auth_error or UnauthorizedError("authentication required")
    principal: Principal = context.principal
    return principal


class _Needs(BasePermission):
    role: Role

    async def has_permission(self, source: Any, info: Info[Any, Any], **kwargs: Any) -> bool:
        # The REST 403 (FORBIDDEN here), with the same message, audited the same way.
        try:
            check_role(caller(info), self.role)
        except ForbiddenError as exc:
            context = info.context
            if context.audit is not None:
                context.audit.action = f"graphql.{info.field_name}"
                await context.audit.deny(context.app.db, exc)
            raise
        return True


class IsViewer(_Needs):
    role = Role.VIEWER


class IsOperator(_Needs):
    role = Role.OPERATOR


class IsAdmin(_Needs):
    role = Role.ADMIN
