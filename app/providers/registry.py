"""Which host a request goes to, and the client that speaks to it.

GitHub lives where ``GITHUB_URL`` / ``GITHUB_API_URL`` say (github.com or one GitHub Enterprise
server). GitLab defaults to ``GITLAB_URL``; a user may name a self-hosted instance, which is
normalised and passed through the SSRF guard before anything is sent to it. Operator-configured
hosts are trusted; user-entered ones never are.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx

from app.domain.errors import HostNotAllowedError
from app.domain.models import GitProvider, HostEndpoint
from app.providers.github import GitHubClient
from app.providers.gitlab import GitLabClient
from app.providers.hosts import HostGuard, normalize_gitlab_host
from app.settings import Settings


def _host_key(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.netloc.lower()}{parts.path.rstrip('/')}"


def github_endpoint(settings: Settings) -> HostEndpoint:
    return HostEndpoint(
        provider=GitProvider.GITHUB,
        host=_host_key(settings.github_url),
        web_url=settings.github_url,
        api_url=settings.github_api_url,
    )


def gitlab_endpoint(settings: Settings) -> HostEndpoint:
    return HostEndpoint(
        provider=GitProvider.GITLAB,
        host=_host_key(settings.gitlab_url),
        web_url=settings.gitlab_url,
        api_url=f"{settings.gitlab_url}/api/v4",
    )


def trusted_hostnames(settings: Settings) -> list[str]:
    """Hosts the operator configured: reachable even when they resolve to private addresses."""
    urls = [settings.github_url, settings.github_api_url, settings.gitlab_url]
    if settings.auth_jwks_url:
        urls.append(settings.auth_jwks_url)
    return sorted({(urlsplit(u).hostname or "").lower() for u in urls} - {""})


class GitHosts:
    def __init__(self, settings: Settings, http: httpx.AsyncClient, guard: HostGuard) -> None:
        self.github = github_endpoint(settings)
        self.gitlab = gitlab_endpoint(settings)
        self._http = http
        self._guard = guard

    @property
    def http(self) -> httpx.AsyncClient:
        """The shared client (guarded, no redirects) that every request to a Git host goes through."""
        return self._http

    def default_endpoint(self, provider: GitProvider) -> HostEndpoint:
        return self.github if provider is GitProvider.GITHUB else self.gitlab

    async def endpoint_for(self, provider: GitProvider, host: str | None) -> HostEndpoint:
        """The endpoint a user asked for; user-entered GitLab hosts are normalised and vetted."""
        if host is None or not host.strip():
            return self.default_endpoint(provider)
        parsed = normalize_gitlab_host(host)
        endpoint = parsed.gitlab_endpoint()
        if provider is GitProvider.GITHUB:
            if endpoint.host != self.github.host:
                raise HostNotAllowedError(
                    f"GitHub connections go to {self.github.host}; a host can only be chosen for GitLab.",
                    host=endpoint.host,
                )
            return self.github
        if endpoint.host == self.gitlab.host:
            return self.gitlab
        await self._guard.check(parsed)
        return endpoint

    def client(self, endpoint: HostEndpoint) -> GitHubClient | GitLabClient:
        if endpoint.provider is GitProvider.GITHUB:
            return GitHubClient(self._http, endpoint)
        return GitLabClient(self._http, endpoint)
