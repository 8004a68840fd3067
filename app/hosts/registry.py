"""``HostRegistry``: which host a request goes to, and the ``GitHost`` that speaks to it.

The one place that knows the concrete host packages. GitHub lives where ``GITHUB_URL`` /
``GITHUB_API_URL`` say (github.com or one GitHub Enterprise server). GitLab defaults to
``GITLAB_URL``; a user may name a self-managed instance, which is normalised and passed through the
SSRF guard before anything is sent to it. Operator-configured addresses are trusted as configured,
for their own host only (``configured_origins``); user-entered ones never are. "Connect with ..." is
configured per host: its authorization server is the host's ``login``.
"""

from __future__ import annotations

from app.domain.errors import HostNotAllowedError, OAuthNotConfiguredError
from app.domain.models import GitProvider, HostEndpoint
from app.hosts.base import GitHost
from app.hosts.github.app import GitHubApp
from app.hosts.github.client import GitHubHost
from app.hosts.github.client import configured_endpoint as github_endpoint
from app.hosts.github.oauth import GitHubAuthorization
from app.hosts.gitlab.client import GitLabHost
from app.hosts.gitlab.client import configured_endpoint as gitlab_endpoint
from app.hosts.gitlab.client import endpoint_of as gitlab_endpoint_of
from app.hosts.gitlab.oauth import GitLabAuthorization
from app.hosts.oauth import AuthorizationServer
from app.net.client import Upstream
from app.net.guard import ConfiguredOrigin, HostGuard
from app.net.hostnames import normalize_gitlab_host
from app.settings.model import Settings

_NAMES = {GitProvider.GITHUB: "GitHub", GitProvider.GITLAB: "GitLab"}


def configured_origins(settings: Settings) -> list[ConfiguredOrigin]:
    """The Git hosts' addresses the operator configured, each for its own host (never the JWKS host).

    Reachable even when they resolve to private addresses, but only as configured: scheme, host and
    port, and only for that Git host. Their ``address`` also picks the configured hosts' connection pool.
    """
    return [
        ConfiguredOrigin.of(settings.github_url, GitProvider.GITHUB),
        ConfiguredOrigin.of(settings.github_api_url, GitProvider.GITHUB),
        ConfiguredOrigin.of(settings.gitlab_url, GitProvider.GITLAB),
    ]


class HostRegistry:
    """The configured hosts and their logins; any endpoint's ``GitHost``."""

    def __init__(self, settings: Settings, upstream: Upstream, guard: HostGuard) -> None:
        self.github = github_endpoint(settings.github_url, settings.github_api_url)
        self.gitlab = gitlab_endpoint(settings.gitlab_url)
        self._upstream = upstream
        self._guard = guard
        self._logins: dict[GitProvider, AuthorizationServer] = {}
        # This service's GitHub App mints clone tokens on the configured GitHub only.
        self._github_app = (
            GitHubApp(upstream, self.github.host, self.github.api_url, settings.github_app)
            if settings.github_app is not None
            else None
        )
        if settings.github_oauth is not None:
            self._logins[GitProvider.GITHUB] = GitHubAuthorization(
                upstream,
                settings.github_oauth,
                settings.github_url,
                settings.github_api_url,
                self.github.host,
                app_slug=settings.github_app_slug,
            )
        if settings.gitlab_oauth is not None:
            self._logins[GitProvider.GITLAB] = GitLabAuthorization(
                upstream, settings.gitlab_oauth, settings.gitlab_url, self.gitlab.host
            )

    def default_endpoint(self, provider: GitProvider) -> HostEndpoint:
        """The configured host of ``provider`` (``GITHUB_URL`` or ``GITLAB_URL``)."""
        return self.github if provider is GitProvider.GITHUB else self.gitlab

    async def endpoint_for(self, provider: GitProvider, host: str | None) -> HostEndpoint:
        """The endpoint a user asked for; user-entered GitLab hosts are normalised and vetted."""
        if host is None or not host.strip():
            return self.default_endpoint(provider)
        parsed = normalize_gitlab_host(host)
        endpoint = gitlab_endpoint_of(parsed)
        if provider is GitProvider.GITHUB:
            if endpoint.host != self.github.host:
                raise HostNotAllowedError(
                    f"GitHub connections go to {self.github.host}; a host can only be chosen for GitLab.",
                    host=endpoint.host,
                )
            return self.github
        if endpoint.host == self.gitlab.host:
            return self.gitlab
        await self._guard.check(parsed, GitProvider.GITLAB)
        return endpoint

    def host(self, endpoint: HostEndpoint) -> GitHost:
        """The ``GitHost`` for ``endpoint``, with its ``login`` when "Connect with ..." lives there."""
        login = self.login_at(endpoint)
        if endpoint.provider is GitProvider.GITLAB:
            return GitLabHost(self._upstream, endpoint, login=login)
        app = self._github_app if endpoint.host == self.github.host else None
        return GitHubHost(self._upstream, endpoint, login=login, app=app)

    def deliveries(self, provider: GitProvider) -> GitHost:
        """A ``GitHost`` of ``provider`` for checking and reading webhook deliveries (which need no
        endpoint: only the provider's format and signature)."""
        return self.host(self.default_endpoint(provider))

    def login(self, provider: GitProvider) -> AuthorizationServer:
        """The provider's configured login, or ``OAuthNotConfiguredError`` naming the variables to set."""
        server = self._logins.get(provider)
        if server is not None:
            return server
        variables = [f"{provider.value}_CLIENT_ID", f"{provider.value}_CLIENT_SECRET"]
        raise OAuthNotConfiguredError(
            f"Connecting with {_NAMES[provider]} by login is not set up on this service: the operator must set "
            f"{variables[0]} and {variables[1]}. You can connect with an access token instead.",
            variables=variables,
        )

    def login_at(self, endpoint: HostEndpoint) -> AuthorizationServer | None:
        """The login that issued tokens for ``endpoint``'s host, if it is (still) configured."""
        server = self._logins.get(endpoint.provider)
        return server if server is not None and server.host == endpoint.host else None
