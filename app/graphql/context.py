"""The per-request context: who is calling, the app's collaborators, and this request's DataLoaders."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from starlette.requests import Request
from starlette.responses import Response
from strawberry.types import Info as StrawberryInfo

from app.composition import Services
from app.graphql.answer_cache import AnswerRecorder
from app.graphql.loaders import Loaders
from app.net.accounting import attribute_to
from app.observability import note
from app.security.auth import Caller


@dataclass
class Context:
    request: Request
    response: Response | None
    services: Services
    request_id: str
    # What this request's answer is made of, when it may be kept (app.graphql.answer_cache).
    answer: AnswerRecorder | None = None
    _caller: Caller | None = None
    _loaders: Loaders | None = None

    async def caller(self) -> Caller:
        """The authenticated caller; raises ``UnauthenticatedError`` (once per request at most)."""
        if self._caller is None:
            self._caller = await self.services.authenticator.authenticate(
                self.request.headers.get("authorization")
            )
            note(user_id=self._caller.user_id)
            attribute_to(self._caller.user_id)  # its upstream requests count against this user's cap
        return self._caller

    async def loaders_for_caller(self) -> Loaders:
        """This request's DataLoaders, scoped to the caller (created on first use)."""
        if self._loaders is None:
            caller = await self.caller()
            self._loaders = Loaders(self.services, caller.user_id)
        return self._loaders


Info: TypeAlias = StrawberryInfo[Context, None]
