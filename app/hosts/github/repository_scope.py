"""One repository at GitHub, addressed with one connection's token, and what GitHub's refusals there mean.

Sources for the refusals (``/work/shared/provider-facts.md``, "Learned since"): a fine-grained or app
token lacking a permission gets 403 "Resource not accessible by personal access token" / "... by
integration" (``X-Accepted-GitHub-Permissions`` names the permission, but is sent on every answer, so
only the message proves anything); a user without admin rights gets 403 "Must have admin rights to
Repository." — or 404 on the hooks endpoints; a classic token lacking a scope gets 404 with
``X-Accepted-OAuth-Scopes``; SAML SSO answers 403 with ``X-GitHub-SSO: required; url=…``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from app.domain.errors import (
    MissingPermissionsError,
    NeedsReconnectError,
    NotFoundError,
    ProviderUnavailableError,
    PublicError,
)
from app.domain.models import Integration, TokenKind
from app.hosts.github import link_messages, messages
from app.net.client import HostHTTP
from app.net.pagination import inside_base


def repository_path(api: str, repository_id: str) -> str:
    """``{api}/repos/{owner}/{name}`` for a repository id (its full name); NotFound for anything else."""
    owner, _, name = repository_id.partition("/")
    if not owner or not name or "/" in name:
        raise NotFoundError("No repository with this id.")
    return f"{api}/repos/{quote(owner, safe='')}/{quote(name, safe='')}"


_REDIRECTS = frozenset({301, 302, 307, 308})


class RepositoryRequests:
    """Requests about one repository, following GitHub's redirect of a renamed or transferred one.

    GitHub answers a request to a repository's old name with 301 (GET) or 307 (other methods) and a
    ``Location`` at ``/repositories/{id}/…`` on the same API ("If a repository is renamed or
    transferred, API requests to the old name are redirected"; docs.github.com, "Best practices for
    using the REST API": follow redirects). A link made before the rename keeps working: one such
    redirect is followed, and only while it stays on this API (same origin, below its path), so a
    redirect cannot carry the token anywhere else. Every other answer is returned as it came.
    """

    def __init__(self, http: HostHTTP, api: str) -> None:
        self._http = http
        self._api = api.rstrip("/")
        self.host = http.host

    async def get(self, url: str, *, params: Mapping[str, str | int] | None = None) -> httpx.Response:
        response = await self._http.get(url, params=params)
        moved = self._moved_to(url, response)
        return response if moved is None else await self._http.get(moved)

    async def send(self, method: str, url: str, *, json_body: Any = None) -> httpx.Response:
        response = await self._http.send(method, url, json_body=json_body)
        moved = self._moved_to(url, response)
        if moved is None or (response.status_code in (301, 302) and method != "GET"):
            return response  # a 301/302 may turn a write into a GET: not repeated blindly
        return await self._http.send(method, moved, json_body=json_body)

    def _moved_to(self, url: str, response: httpx.Response) -> str | None:
        location = response.headers.get("location")
        if response.status_code not in _REDIRECTS or not location:
            return None
        try:
            target = str(httpx.URL(url).join(location))
        except (httpx.InvalidURL, ValueError):
            return None
        return target if inside_base(target, self._api) else None


@dataclass(frozen=True)
class RepositoryScope:
    """``http`` carries the connection's token; ``api`` is the API root without a trailing slash."""

    http: RepositoryRequests
    api: str
    full_name: str
    integration: Integration

    @property
    def base(self) -> str:
        """``{api}/repos/{owner}/{name}``."""
        return repository_path(self.api, self.full_name)

    def url(self, suffix: str = "") -> str:
        return f"{self.base}{suffix}"

    def refusal(self, response: httpx.Response, *, doing: str, permission: str) -> PublicError:
        """The domain error for an answer that is not a success, for an action needing ``permission``."""
        status = response.status_code
        if status == 401:
            return NeedsReconnectError(messages.RECONNECT)
        granted = list(self.integration.granted_permissions)
        manage = self.integration.manage_access_url
        message = messages.message_of(response)
        if status == 403:
            if message.startswith("Resource not accessible by"):
                return MissingPermissionsError(
                    link_messages.token_lacks(permission, self.full_name, manage), [permission], granted
                )
            if "admin rights" in message.lower():
                return MissingPermissionsError(
                    link_messages.needs_admin(self.full_name), [f"admin on {self.full_name}"], granted
                )
            sso = response.headers.get("x-github-sso", "")
            if sso.startswith("required"):
                url = sso.partition("url=")[2].strip()
                return MissingPermissionsError(
                    f"Your organization requires SAML single sign-on for {self.full_name}: authorize this "
                    f"connection{f' at {url}' if url.startswith('https://') else ''}, then try again.",
                    [f"SSO authorization for {self.full_name}"],
                    granted,
                )
            return MissingPermissionsError(
                link_messages.refused(doing, self.full_name, response), [permission], granted
            )
        if status == 404:
            # GitHub names the accepted scopes on every answer, to app and fine-grained tokens too
            # (recording user.github-app-token-empty-scopes): only a token that has scopes can lack one.
            scopes = response.headers.get("x-accepted-oauth-scopes", "").strip()
            scoped = self.integration.token_kind in (TokenKind.GITHUB_CLASSIC, TokenKind.GITHUB_OAUTH_APP)
            if scoped and scopes and not set(map(str.strip, scopes.split(","))) & set(granted):
                return MissingPermissionsError(
                    link_messages.scope_lacks(scopes, self.full_name), [scopes.split(",")[0].strip()], granted
                )
            return NotFoundError(messages.REPOSITORY_GONE)
        return ProviderUnavailableError(messages.unexpected_answer(self.http.host, status, doing))
