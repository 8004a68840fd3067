"""The collaborators the use cases need, built once per process in ``app.main``'s lifespan."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from app.providers.oauth import AuthorizationServers
from app.providers.registry import GitHosts
from app.security.auth import Authenticator
from app.services.single_flight import SingleFlight
from app.settings import Settings
from app.storage.integrations import IntegrationRepository
from app.storage.mongo import Database
from app.storage.oauth_states import OAuthStateRepository
from app.storage.repository_cache import RepositoryCache, StagedListing


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Services:
    settings: Settings
    database: Database
    integrations: IntegrationRepository
    hosts: GitHosts
    authenticator: Authenticator
    clock: Callable[[], datetime] = field(default=utc_now)
    # The picker's cache and single flight (see services.list_repositories); built from the above.
    repository_cache: RepositoryCache = field(init=False)
    listing_flights: SingleFlight[tuple[str, str], StagedListing] = field(
        init=False, default_factory=SingleFlight
    )

    # Connect by login (see services.oauth_connect and services.token_refresh); built from the above.
    oauth: AuthorizationServers = field(init=False)
    oauth_states: OAuthStateRepository = field(init=False)

    def __post_init__(self) -> None:
        self.repository_cache = RepositoryCache(self.database)
        self.oauth = AuthorizationServers(
            self.settings,
            self.hosts.http,
            github_host=self.hosts.github.host,
            gitlab_host=self.hosts.gitlab.host,
        )
        self.oauth_states = OAuthStateRepository(self.database)
