"""Field permissions: every operation of this API needs an authenticated caller."""

from __future__ import annotations

from typing import Any

from strawberry.permission import BasePermission

from app.graphql.context import Info


class IsAuthenticated(BasePermission):
    message = "Sign in first: send 'Authorization: Bearer <JWT>'."
    error_extensions = {"code": "UNAUTHENTICATED"}

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        # Raises UnauthenticatedError with the precise reason (expired, badly signed, ...).
        await info.context.caller()
        return True
