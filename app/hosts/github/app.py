"""This service's own GitHub App (``GITHUB_APP_ID``, ``GITHUB_APP_PRIVATE_KEY``): clone tokens for the builder.

Source: ``/work/shared/provider-facts.md`` ("Learned since"): the app authenticates with a JWT signed
by its private key (RS256, ``iss`` the app id, at most 10 minutes); ``GET /repos/{o}/{r}/installation``
finds the installation on a repository (404 where the app is not installed); ``POST
/app/installations/{id}/access_tokens {"repositories": [name], "permissions": {"contents": "read"}}``
→ 201 ``{token, expires_at}`` (1 hour), used as ``x-access-token:TOKEN`` over HTTPS. No user token is
involved, and the token minted reaches that one repository, read-only.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from joserfc import jwt
from joserfc.jwk import RSAKey

from app.domain.errors import ProviderUnavailableError
from app.hosts.github.constants import ACCEPT, API_VERSION, USER_AGENT
from app.hosts.github.repository_scope import RepositoryRequests, repository_path
from app.hosts.parsing import parse_timestamp
from app.net.client import HostHTTP, Upstream, json_body
from app.settings.values import GitHubAppCredentials

# GitHub refuses a JWT whose lifetime exceeds 10 minutes; ``iat`` is set a minute back for clock drift.
_JWT_LIFETIME_SECONDS = 540
_CLOCK_DRIFT_SECONDS = 60


@dataclass(frozen=True)
class InstallationToken:
    token: str
    expires_at: datetime | None


class GitHubApp:
    """Speaks to GitHub as the app itself (never as a user)."""

    def __init__(
        self,
        upstream: Upstream,
        host: str,
        api: str,
        credentials: GitHubAppCredentials,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._upstream = upstream
        self._host = host
        self._api = api.rstrip("/")
        self._app_id = credentials.app_id
        self._key = RSAKey.import_key(credentials.private_key.reveal())
        self._clock = clock

    def _http(self) -> HostHTTP:
        now = int(self._clock())
        claims = {"iat": now - _CLOCK_DRIFT_SECONDS, "exp": now + _JWT_LIFETIME_SECONDS, "iss": self._app_id}
        signed = jwt.encode({"alg": "RS256", "typ": "JWT"}, claims, self._key)
        return self._upstream.to(
            self._host,
            headers={
                "Authorization": f"Bearer {signed}",
                "Accept": ACCEPT,
                "X-GitHub-Api-Version": API_VERSION,
                "User-Agent": USER_AGENT,
            },
        )

    async def installation_for(self, full_name: str) -> str | None:
        """The id of the app's installation that covers ``full_name``; None where it is not installed."""
        # A repository renamed since it was linked is redirected to its new name (RepositoryRequests).
        http = RepositoryRequests(self._http(), self._api)
        response = await http.get(f"{repository_path(self._api, full_name)}/installation")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self._unavailable(response.status_code, "looking up the GitHub App's installation")
        body = json_body(response, self._host)
        installation_id = body.get("id") if isinstance(body, dict) else None
        if not isinstance(installation_id, int) or isinstance(installation_id, bool):
            raise ProviderUnavailableError(
                f"{self._host} answered with an unexpected installation; try again later."
            )
        return str(installation_id)

    async def repository_token(self, installation_id: str, full_name: str) -> InstallationToken | None:
        """A token reaching only ``full_name`` with contents read; None when the installation no longer
        covers it (uninstalled, suspended, or the repository was removed from its selection)."""
        if not installation_id.isdigit():
            return None
        name = full_name.partition("/")[2]
        response = await self._http().send(
            "POST",
            f"{self._api}/app/installations/{installation_id}/access_tokens",
            json_body={"repositories": [name], "permissions": {"contents": "read"}},
        )
        if response.status_code in (403, 404, 422):
            return None
        if response.status_code != 201:
            raise self._unavailable(response.status_code, "minting a clone token")
        body = json_body(response, self._host)
        token = body.get("token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise ProviderUnavailableError(f"{self._host} answered without a token; try again later.")
        return InstallationToken(token=token, expires_at=parse_timestamp(body.get("expires_at")))

    def _unavailable(self, status: int, doing: str) -> ProviderUnavailableError:
        return ProviderUnavailableError(
            f"{self._host} answered HTTP {status} while {doing}; try again later."
        )
