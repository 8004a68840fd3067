"""Field permissions: who may call what (``app.security.auth`` says who is calling).

- ``IsAuthenticated``: a person signed in to the platform (a JWT without scopes). Every operation on
  integrations, the picker and linking is theirs alone: a service token gets ``FORBIDDEN`` there.
- ``MayReadLinks``: that person, or a platform service holding ``git:deploy`` (the deployer reads links
  and their events for the user it acts for).
- ``MaySetCommitStatuses``: only ``git:deploy``. ``MayClone``: only ``git:clone`` (the builder).

A missing or invalid JWT is ``UNAUTHENTICATED`` everywhere, before any of this is looked at.
"""

from __future__ import annotations

from typing import Any

from strawberry.permission import BasePermission

from app.domain.errors import ForbiddenError
from app.graphql.context import Info
from app.security.auth import SCOPE_CLONE, SCOPE_DEPLOY, Caller


class _Requires(BasePermission):
    """A person (when ``people``) or a service token holding one of ``scopes``."""

    people = False
    scopes: tuple[str, ...] = ()
    refusal = ""

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        # Raises UnauthenticatedError with the precise reason (expired, badly signed, ...).
        caller = await info.context.caller()
        if self.allows(caller):
            return True
        raise ForbiddenError(self.refusal)

    def allows(self, caller: Caller) -> bool:
        if not caller.is_service:
            return self.people
        return any(caller.holds(scope) for scope in self.scopes)


class IsAuthenticated(_Requires):
    message = "Sign in first: send 'Authorization: Bearer <JWT>'."
    error_extensions = {"code": "UNAUTHENTICATED"}
    people = True
    refusal = (
        "This operation is for people signed in to the platform, not for service tokens (JWTs with scopes)."
    )


class MayReadLinks(_Requires):
    people = True
    scopes = (SCOPE_DEPLOY,)
    refusal = f"Reading repository links needs a user's token or the scope {SCOPE_DEPLOY}."


class MaySetCommitStatuses(_Requires):
    scopes = (SCOPE_DEPLOY,)
    refusal = (
        f"Setting commit statuses needs a token with the scope {SCOPE_DEPLOY} (the platform's deployer)."
    )


class MayClone(_Requires):
    scopes = (SCOPE_CLONE,)
    refusal = f"Clone credentials are only for a token with the scope {SCOPE_CLONE} (the platform's builder)."
