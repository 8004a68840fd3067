"""The composition root: everything the service is made of, built once, closed in reverse order.

``open_services(settings)`` opens the database (starting the embedded server when ``MONGODB_URI`` is
unset), the guarded HTTP client for Git hosts, and builds every use case with exactly what it uses.
``app.main`` opens it in Starlette's lifespan and hands the ``Services`` to handlers through the
lifespan state (``request.state.services``).

``Seams`` is the one door for replacing a part: tests and benchmarks pass a client that reaches fake
hosts, a DNS table, a retry policy without pauses, a clock, or a repository that fails on purpose —
instead of patching module globals.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import TYPE_CHECKING

import httpx

from app.hosts.registry import HostRegistry, configured_origins
from app.metrics import Metrics
from app.net.accounting import ConcurrencyCap
from app.net.client import PagePolicy, RetryPolicy, Upstream
from app.net.guard import HostGuard, Resolver
from app.net.transport import guarded_client
from app.security.auth import Authenticator, jwks_client
from app.security.crypto import TokenCipher
from app.services.branches import Branches
from app.services.catalog import RepositoryCatalog
from app.services.catch_up import DeliveryCatchUp
from app.services.clock import Clock, utc_now
from app.services.clone_credentials import CloneCredentialIssuer
from app.services.commit_statuses import CommitStatuses
from app.services.connect_token import ConnectByToken
from app.services.credentials import CredentialSource, HostAccess
from app.services.disconnect import Disconnect
from app.services.links import RepositoryLinks
from app.services.oauth_connect import CALLBACK_PATH, ConnectByLogin
from app.services.token_refresh import TokenRefresher
from app.services.verify_integration import VerifyIntegration
from app.services.webhook_intake import WebhookIntake
from app.settings.model import Settings
from app.storage.branch_lists import BranchListStore
from app.storage.catch_up_markers import CatchUpMarkers
from app.storage.events import EventStore
from app.storage.integrations import IntegrationRepository
from app.storage.links import LinkStore
from app.storage.listings import ListingStore
from app.storage.mongo import Database, EmbeddedMongo, embedded_storage_path
from app.storage.oauth_states import OAuthStateRepository
from app.tracing import NO_TRACING, Tracing

if TYPE_CHECKING:
    from app.tracing import SpanExporter

USER_AGENT = "git-integrations/0.1 (+https://github.com)"
# At shutdown, how long listings still running may finish (and be saved) before they are cancelled.
SHUTDOWN_DRAIN_SECONDS = 5.0


@dataclass(frozen=True)
class Seams:
    """What may be replaced from outside; production uses every default.

    ``http``: the client for Git hosts (default: the guarded one, built and closed here).
    ``resolver``: DNS for the SSRF guard. ``retry``: how GETs are retried. ``pages``: how listings
    walk pages (how many at once, how many at most). ``clock``: the time.
    ``metrics``: the sink (default: a fresh one per app). ``integrations``: builds the integrations
    repository from the database, the cipher and the clock. ``span_exporter``: where spans go, whatever the
    settings say (tests: an in-memory exporter; needs the ``otel`` extra).
    """

    http: httpx.AsyncClient | None = None
    resolver: Resolver | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    pages: PagePolicy = field(default_factory=PagePolicy)
    clock: Clock = utc_now
    metrics: Metrics | None = None
    integrations: Callable[[Database, TokenCipher, Clock], IntegrationRepository] = IntegrationRepository
    span_exporter: SpanExporter | None = None


@dataclass(frozen=True)
class Services:
    """Everything handlers use, built once per process (or per test)."""

    settings: Settings
    database: Database
    metrics: Metrics
    clock: Clock
    authenticator: Authenticator
    integrations: IntegrationRepository
    listings: ListingStore
    link_store: LinkStore
    events: EventStore
    hosts: HostRegistry
    upstream_cap: ConcurrencyCap  # requests in flight per user (MAX_CONCURRENT_UPSTREAM_PER_USER)
    # The use cases.
    connect_token: ConnectByToken
    connect_login: ConnectByLogin
    verify: VerifyIntegration
    disconnect: Disconnect
    catalog: RepositoryCatalog
    branches: Branches
    links: RepositoryLinks
    commit_statuses: CommitStatuses
    clone_credentials: CloneCredentialIssuer
    intake: WebhookIntake
    catch_up: DeliveryCatchUp


def build_services(
    settings: Settings,
    database: Database,
    http: httpx.AsyncClient,
    guard: HostGuard,
    seams: Seams,
    tracing: Tracing = NO_TRACING,
    jwks_http: httpx.AsyncClient | None = None,
) -> Services:
    """Wire the use cases to their collaborators (no I/O)."""
    clock = seams.clock
    metrics = seams.metrics or Metrics()
    cipher = TokenCipher(settings.encryption_keys)
    # The clock also says when a login has ended (reconnectBy), as each integration is loaded.
    integrations = seams.integrations(database, cipher, clock)
    cap = ConcurrencyCap(
        settings.max_concurrent_upstream_per_user, wait_seconds=settings.http_timeout_seconds
    )
    # A listing's window never grows past the user's cap: pages beyond it would only wait for a slot.
    pages = replace(seams.pages, max_window=min(seams.pages.max_window, cap.per_user))
    upstream = Upstream(http, retry=seams.retry, observer=metrics, pages=pages, cap=cap)
    hosts = HostRegistry(settings, upstream, guard)
    metrics.allow_hosts([hosts.github.host, hosts.gitlab.host])  # operator-configured
    listings = ListingStore(database)
    refresher = TokenRefresher(
        integrations,
        hosts,
        clock,
        metrics,
        http_timeout_seconds=settings.http_timeout_seconds,
        redirect_uri=f"{settings.public_url}{CALLBACK_PATH}",
    )
    credentials = CredentialSource(integrations, refresher)
    access = HostAccess(hosts, credentials, integrations)
    link_store, events = LinkStore(database, cipher), EventStore(database)
    catch_up = DeliveryCatchUp(
        access,
        integrations,
        link_store,
        CatchUpMarkers(database),
        events,
        clock,
        metrics,
        interval_seconds=settings.delivery_catch_up_seconds,
    )
    links = RepositoryLinks(
        access, integrations, link_store, events, clock, catch_up, public_url=settings.public_url
    )
    return Services(
        settings=settings,
        database=database,
        metrics=metrics,
        clock=clock,
        authenticator=Authenticator(settings, jwks_http),
        integrations=integrations,
        listings=listings,
        link_store=link_store,
        events=events,
        hosts=hosts,
        upstream_cap=cap,
        connect_token=ConnectByToken(
            hosts, integrations, clock, metrics, max_integrations=settings.max_integrations_per_user
        ),
        connect_login=ConnectByLogin(
            hosts,
            OAuthStateRepository(database),
            integrations,
            clock,
            metrics,
            public_url=settings.public_url,
            frontend_origins=settings.frontend_origins,
            max_integrations=settings.max_integrations_per_user,
        ),
        verify=VerifyIntegration(hosts, integrations, credentials, clock),
        disconnect=Disconnect(hosts, integrations, credentials, listings, links),
        catalog=RepositoryCatalog(
            hosts,
            access,
            listings,
            integrations,
            clock,
            metrics,
            fresh_for=timedelta(seconds=settings.repository_cache_seconds),
            tracing=tracing,
            one_round=seams.pages.first_window,
        ),
        branches=Branches(
            hosts,
            access,
            BranchListStore(database),
            listings,
            integrations,
            clock,
            fresh_for=timedelta(seconds=settings.repository_cache_seconds),
        ),
        links=links,
        commit_statuses=CommitStatuses(access, integrations, link_store),
        clone_credentials=CloneCredentialIssuer(hosts, integrations, link_store, links),
        intake=WebhookIntake(hosts, link_store, events, clock, metrics, on_unavailable=catch_up.note),
        catch_up=catch_up,
    )


@contextlib.asynccontextmanager
async def open_services(
    settings: Settings, seams: Seams | None = None, tracing: Tracing = NO_TRACING
) -> AsyncIterator[Services]:
    """Everything the use cases need, opened for the lifetime of the process (or of a test).

    ``tracing`` (``app.tracing``; the app's, from ``create_app``) traces the MongoDB commands and the
    requests to Git hosts.
    """
    seams = seams or Seams()
    async with contextlib.AsyncExitStack() as stack:
        if settings.mongodb_uri is None:
            embedded = EmbeddedMongo(embedded_storage_path(settings.data_dir))
            uri = embedded.start()
            stack.callback(embedded.stop)
        else:
            uri = settings.mongodb_uri.reveal()
        database = Database(uri, settings.mongodb_database, event_listeners=tracing.mongo_listeners())
        stack.push_async_callback(database.close)
        await database.ensure_indexes()
        guard = HostGuard(
            allowlist=settings.git_host_allowlist,
            configured=configured_origins(settings),
            resolver=seams.resolver,
        )
        http = seams.http
        if http is None:
            http = guarded_client(
                guard,
                timeout_seconds=settings.http_timeout_seconds,
                user_agent=USER_AGENT,
                configured_origins=[origin.address for origin in configured_origins(settings)],
                refuse_fake_hosts=settings.production,
            )
            stack.push_async_callback(http.aclose)
        stack.callback(tracing.instrument_http(http))
        # The identity provider's keys come through a client of their own: the JWKS host is not a
        # Git host, and the Git hosts' guard does not know it (tests reach a fake through seams.http).
        jwks_http = seams.http
        if jwks_http is None and settings.auth_jwks_url:
            jwks_http = jwks_client(timeout_seconds=settings.http_timeout_seconds, user_agent=USER_AGENT)
            stack.push_async_callback(jwks_http.aclose)
        services = build_services(settings, database, http, guard, seams, tracing, jwks_http)
        # Before the database closes: let listings and received events that are still being saved finish,
        # for a while (walks nobody waits for any more are let go at once).
        stack.push_async_callback(services.catalog.shut_down, SHUTDOWN_DRAIN_SECONDS)
        stack.push_async_callback(services.branches.drain, SHUTDOWN_DRAIN_SECONDS)
        stack.push_async_callback(services.events.drain)
        # The delivery catch-up runs beside the requests; stopped first on the way out.
        worker = asyncio.create_task(services.catch_up.run(), name="delivery-catch-up")
        stack.push_async_callback(_stop, worker)
        yield services


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
