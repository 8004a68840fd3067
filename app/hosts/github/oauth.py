"""GitHub's authorization server for this service's OAuth App or GitHub App ("Connect with GitHub").

- OAuth App: ``/login/oauth/authorize`` with the scopes ``repo admin:repo_hook read:user``.
- GitHub App (``GITHUB_APP_SLUG``): the installation page (``/apps/{slug}/installations/new``; GitHub
  Enterprise Server: ``/github-apps/{slug}/installations/new``), where the user picks all or selected
  repositories; after its setup redirect, ``/login/oauth/authorize`` with the PKCE challenge, so that
  the code the service exchanges is one GitHub issued for that challenge.
- Tokens from ``{GITHUB_URL}/login/oauth/access_token``; revocation of one token with
  ``DELETE {api}/applications/{client_id}/token``, of the whole grant with ``.../grant`` (basic auth
  with the client credentials).
"""

from __future__ import annotations

import logging
from urllib.parse import quote, urlsplit

import httpx
from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri

from app.domain.errors import ProviderUnavailableError
from app.domain.models import GitProvider, TokenKind
from app.hosts.github.addresses import is_enterprise_server
from app.hosts.github.constants import ACCEPT, API_VERSION, OAUTH_APP_SCOPES
from app.hosts.oauth import AuthorizationServer, code_challenge
from app.net.client import Upstream
from app.settings.values import OAuthClient

log = logging.getLogger(__name__)


class GitHubAuthorization(AuthorizationServer):
    """github.com or a GitHub Enterprise Server: an OAuth App, or a GitHub App when a slug is set."""

    provider = GitProvider.GITHUB
    name = "GitHub"

    def __init__(
        self,
        upstream: Upstream,
        client: OAuthClient,
        web_url: str,
        api_url: str,
        host: str,
        *,
        app_slug: str | None,
    ) -> None:
        super().__init__(upstream, client, web_url, host)
        self._api = api_url.rstrip("/")
        self.enterprise_server = is_enterprise_server(web_url, api_url)
        # Revocation goes to the API, which may live on another host (api.github.com).
        self._api_http = upstream.to(host, name=urlsplit(self._api).netloc)
        self.app_slug = app_slug
        self.token_kind = TokenKind.GITHUB_APP if app_slug else TokenKind.GITHUB_OAUTH_APP

    @property
    def token_url(self) -> str:
        return f"{self._web}/login/oauth/access_token"

    @property
    def installs_first(self) -> bool:
        return self.app_slug is not None

    def authorization_url(self, *, state: str, code_verifier: str, redirect_uri: str) -> str:
        if self.app_slug:
            # The installation page takes no client_id, redirect_uri or PKCE challenge: GitHub sends
            # the browser to the app's Setup URL (this service's callback) with installation_id,
            # setup_action and this state; the callback then continues with user_authorization_url.
            # github.com and GitHub Enterprise Cloud with data residency (SUB.ghe.com, which follows
            # github.com's URL scheme: the GHES path answers 404 there, coollabsio/coolify#10573) use
            # /apps/; GitHub Enterprise Server uses /github-apps/ ("Sharing your GitHub App", GHES docs).
            prefix = "github-apps" if self.enterprise_server else "apps"
            url = f"{self._web}/{prefix}/{quote(self.app_slug, safe='')}/installations/new"
            result: str = add_params_to_uri(url, [("state", state)])
            return result
        return self.user_authorization_url(
            state=state, code_verifier=code_verifier, redirect_uri=redirect_uri
        )

    def user_authorization_url(self, *, state: str, code_verifier: str, redirect_uri: str) -> str:
        # A GitHub App takes no scopes (its permissions are the installation's); an OAuth App does.
        grant_uri: str = prepare_grant_uri(
            f"{self._web}/login/oauth/authorize",
            self._client.client_id,
            "code",  # GitHub ignores response_type; RFC 6749 wants it
            redirect_uri=redirect_uri,
            scope=None if self.app_slug else " ".join(OAUTH_APP_SCOPES),
            state=state,
            code_challenge=code_challenge(code_verifier),
            code_challenge_method="S256",
        )
        return grant_uri

    async def revoke(
        self, access_token: str, refresh_token: str | None = None, *, whole_grant: bool = False
    ) -> bool:
        # DELETE .../token revokes this token; DELETE .../grant the user's whole authorization of the
        # app, every token of that GitHub account for it included - also those other platform users
        # connected with the same account.
        what = "grant" if whole_grant else "token"
        response = await self._api_http.send(
            "DELETE",
            f"{self._api}/applications/{quote(self._client.client_id, safe='')}/{what}",
            headers={"Accept": ACCEPT, "X-GitHub-Api-Version": API_VERSION},
            json_body={"access_token": access_token},
            auth=httpx.BasicAuth(self._client.client_id, self._client.client_secret.reveal()),
        )
        if response.status_code in (200, 204):
            return True
        if response.status_code in (404, 422):
            # GitHub does not know the token (already revoked or expired) - or, indistinguishably,
            # the client credentials are wrong: report "not confirmed" rather than guess.
            log.warning(
                "oauth: GitHub did not confirm the revocation", extra={"status": response.status_code}
            )
            return False
        raise ProviderUnavailableError(
            f"GitHub answered HTTP {response.status_code} to the revocation; try again later."
        )
