"""The GitLab instance at ``GITLAB_URL`` as the authorization server of this service's OAuth application.

``/oauth/authorize`` with the scopes ``api read_repository write_repository`` and a PKCE challenge,
tokens from ``/oauth/token`` (the refresh repeats the ``redirect_uri``, as GitLab documents),
revocation at ``/oauth/revoke`` (Doorkeeper).
"""

from __future__ import annotations

import logging

from authlib.oauth2.rfc6749.parameters import prepare_grant_uri

from app.domain.errors import ProviderUnavailableError
from app.domain.models import GitProvider, TokenKind
from app.hosts.gitlab.constants import REQUIRED_SCOPES
from app.hosts.oauth import AuthorizationServer, code_challenge

log = logging.getLogger(__name__)


class GitLabAuthorization(AuthorizationServer):
    """The GitLab instance at ``GITLAB_URL`` with this service's OAuth application."""

    provider = GitProvider.GITLAB
    name = "GitLab"
    token_kind = TokenKind.GITLAB_OAUTH
    # "parameters = 'client_id=APP_ID&client_secret=APP_SECRET&refresh_token=REFRESH_TOKEN
    # &grant_type=refresh_token&redirect_uri=REDIRECT_URI'" - "The redirect_uri must match the
    # redirect_uri used in the original authorization request." (gitlabhq doc/api/oauth2.md)
    refresh_with_redirect_uri = True

    @property
    def token_url(self) -> str:
        return f"{self._web}/oauth/token"

    def authorization_url(self, *, state: str, code_verifier: str, redirect_uri: str) -> str:
        grant_uri: str = prepare_grant_uri(
            f"{self._web}/oauth/authorize",
            self._client.client_id,
            "code",
            redirect_uri=redirect_uri,
            scope=" ".join(REQUIRED_SCOPES),
            state=state,
            code_challenge=code_challenge(code_verifier),
            code_challenge_method="S256",
        )
        return grant_uri

    async def revoke(
        self, access_token: str, refresh_token: str | None = None, *, whole_grant: bool = False
    ) -> bool:
        # Doorkeeper keeps the access and the refresh token in one record: revoking the access token
        # revokes the refresh token with it (and works after the access token expired). Other tokens
        # of the same account stay valid: GitLab has no grant-wide revocation, so whole_grant changes
        # nothing here.
        response = await self._http.send(
            "POST",
            f"{self._web}/oauth/revoke",
            data={**self._client_credentials(), "token": access_token},
        )
        if response.status_code == 200:
            return True
        if response.status_code in (400, 401, 403):
            log.warning(
                "oauth: GitLab did not confirm the revocation", extra={"status": response.status_code}
            )
            return False
        raise ProviderUnavailableError(
            f"GitLab answered HTTP {response.status_code} to the revocation; try again later."
        )
