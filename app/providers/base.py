"""The port every Git host client implements, so services never depend on a concrete host."""

from __future__ import annotations

from typing import Protocol

from app.domain.models import HostEndpoint, VerifiedToken


class GitHostClient(Protocol):
    """A client for one Git host (github.com, a GitHub Enterprise server, a GitLab instance)."""

    endpoint: HostEndpoint

    async def verify_token(self, token: str) -> VerifiedToken:
        """Find out what ``token`` is and whether it may be used, without changing anything at the host.

        Raises ``InvalidTokenError``, ``MissingPermissionsError``, ``InsufficientRoleError``,
        ``HostNotAllowedError`` or ``ProviderUnavailableError`` (``RateLimitedError``).
        """
        ...
