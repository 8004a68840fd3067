"""Prometheus metrics: every metric the service exports, defined here and nowhere else.

``Metrics`` is the sink: the composition root builds one per app and hands it to what records (the
use cases, ``HostHTTP``, the GraphQL operation log); ``GET /metrics`` answers its numbers in the
Prometheus text format.

    metric                                                  type       labels
    git_integrations_graphql_requests_total                 counter    operation, outcome
    git_integrations_graphql_request_duration_seconds       histogram  operation, outcome
    git_integrations_upstream_requests_total                counter    host, endpoint, status
    git_integrations_upstream_request_duration_seconds      histogram  host, endpoint
    git_integrations_upstream_rate_limit_remaining          gauge      host
    git_integrations_repository_cache_lookups_total         counter    provider, result
    git_integrations_token_refreshes_total                  counter    provider, outcome
    git_integrations_connect_attempts_total                 counter    provider, method, token_kind, result
    git_integrations_webhook_deliveries_total               counter    provider, outcome
    git_integrations_webhook_delivery_duration_seconds      histogram  provider
    git_integrations_delivery_catch_up_total                counter    outcome

- ``operation``: the GraphQL operation name; ``anonymous`` for an unnamed one, ``other`` for a name
  that is longer than 64 characters, is not ``[A-Za-z_][A-Za-z0-9_]*``, or arrives after 200 distinct
  names were seen (names come from clients: a hostile one must not grow the label set without end).
- ``outcome`` (GraphQL): ``ok``, or the sorted ``extensions.code`` of its errors joined by ``,``
  (``UNAUTHENTICATED``, ``NOT_FOUND``, ``GRAPHQL_ERROR`` for a syntax or validation error, ...).
  A mutation answering with an error member of its union is ``ok``: the connect counter tells those.
- ``host``: the host key of a configured host (``GITHUB_URL``, ``GITLAB_URL``: ``github.com``,
  ``gitlab.example.com/gitlab``); every host a user typed is ``other`` (its name is the user's
  business, and the scrape must not list the self-managed instances of the platform's customers).
- ``endpoint``: a fixed family derived from the path, never the path itself (it holds owner and
  repository names): ``user``, ``user_repos``, ``installations``, ``repos``, ``branches``,
  ``projects``, ``groups``, ``personal_access_tokens``, ``oauth``, ``other``.
- ``status``: the HTTP status (``200``, ``304``, ``401``, ...) of each attempt, retries included;
  ``error`` when no answer came (timeout, refused connection, the SSRF guard refused the address).
- rate limit remaining: the last ``x-ratelimit-remaining`` / ``ratelimit-remaining`` the host sent.
  GitHub counts per token, so this is the budget of whichever token was used last.
- cache ``result``: ``hit`` (served from ``repository_cache`` without asking the host), ``miss``
  (nothing stored, or stored for what the token no longer reaches: the host lists everything),
  ``revalidate`` (stored but expired, or ``refresh: true``: the stored pages are revalidated with
  their ETags), ``joined`` (another request was already listing the same: this one shares its
  answer), ``first_page`` (a first page answered from the host's own newest-first page while the
  whole list was walked). ``miss`` + ``revalidate`` is how many times the host was walked.
- refresh ``outcome``: ``refreshed`` (this caller renewed the token), ``refused`` (the host refused
  the refresh token: the integration needs reconnecting), ``failed`` (the host could not renew it now,
  or login is no longer configured), ``waited`` (another request or replica renewed it meanwhile).
- connect ``method``: ``ACCESS_TOKEN`` (``connectGitToken``) or ``OAUTH`` (``completeGitOAuth`` and
  ``/oauth/callback``); ``token_kind``: the ``TokenKind``, ``unknown`` when the token was refused
  before its kind was known (and ``provider`` is ``unknown`` for an OAuth state that is not valid);
  ``result``: ``connected`` or the error's code (``INVALID_TOKEN``, ``MISSING_PERMISSIONS``,
  ``INVALID_OAUTH_STATE``, ``ACCESS_DENIED``, ``PROVIDER_UNAVAILABLE``, ``INTERNAL``, ...).

- delivery ``outcome`` (``POST /webhooks/...``): ``stored``, ``duplicate`` (stored before: a redelivery
  or a replay), ``ignored`` (another branch, or an event not subscribed to), ``ping``, ``unsigned``
  (bad or missing signature: 401), ``malformed`` (400), ``unknown_link`` (404), ``too_large`` (413),
  ``unavailable`` (503: the database did not answer in time; caught up later).
- catch-up ``outcome``: ``redelivered`` (a failed delivery the host was asked to send again),
  ``checked`` (a link's delivery log was read), ``failed`` (the host could not be asked), ``broken``
  (the hook was gone or disabled at the host).

No label ever holds a token, a user id, a repository name or a raw path.

Several worker processes (``serve --workers N``) share their numbers through prometheus-client's
multiprocess mode: ``PROMETHEUS_MULTIPROC_DIR`` names a directory the workers write to (``serve``
creates one when several workers run without it, and empties it at start). The variable must be in
the environment before this module is imported, as prometheus-client decides at import.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess
from prometheus_client.exposition import choose_encoder

MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# Read once, like prometheus-client itself does when it is imported (just above).
_MULTIPROCESS_DIR = os.environ.get(MULTIPROCESS_VARIABLE) or None

OTHER = "other"
UNKNOWN = "unknown"
ENDPOINT_FAMILIES = (
    "user",
    "user_repos",
    "installations",
    "repos",
    "branches",
    "projects",
    "groups",
    "personal_access_tokens",
    "oauth",
    OTHER,
)
_OAUTH_TAILS = (("oauth", "token"), ("oauth", "revoke"), ("oauth", "token", "info"))
CACHE_RESULTS = ("hit", "miss", "revalidate", "joined", "first_page")
REFRESH_OUTCOMES = ("refreshed", "refused", "failed", "waited", "expired")
DELIVERY_OUTCOMES = (
    "stored",
    "duplicate",
    "ignored",
    "ping",
    "unsigned",
    "malformed",
    "unknown_link",
    "too_large",
    "unavailable",
)
CATCH_UP_OUTCOMES = ("redelivered", "checked", "failed", "broken")


class BoundedLabel:
    """Label values that come from outside, kept to a bounded set.

    A value is used as it is when it matches ``pattern``, is at most ``max_length`` long, and is
    one of the first ``limit`` distinct values seen (or was declared with ``allow``); anything else
    is ``other``. Per process: each worker keeps its own set.
    """

    def __init__(self, *, limit: int, max_length: int, pattern: str) -> None:
        self._limit = limit
        self._max_length = max_length
        self._pattern = re.compile(pattern)
        self._seen: set[str] = set()
        self._allowed: set[str] = set()
        self._lock = threading.Lock()

    def allow(self, values: Iterable[str]) -> None:
        """Values that are always used as they are, however many others came first."""
        with self._lock:
            self._allowed.update(v for v in values if self._valid(v))

    def __call__(self, value: str) -> str:
        if value in self._allowed or value in self._seen:
            return value
        if not self._valid(value):
            return OTHER
        with self._lock:
            if len(self._seen) >= self._limit:
                return OTHER
            self._seen.add(value)
        return value

    def _valid(self, value: str) -> bool:
        return len(value) <= self._max_length and self._pattern.fullmatch(value) is not None


OPERATION_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
OPERATION_NAME_LENGTH = 64
OPERATION_NAME_LIMIT = 200
HOST = r"[a-z0-9][a-z0-9.\-:/_\[\]]*"  # host keys: name, maybe a port and a path
HOST_LENGTH = 100


class Metrics:
    """The metrics sink: every counter above, and the label sets that bound them.

    One per app, built by the composition root and handed to whatever records (the use cases,
    ``HostHTTP`` as its ``UpstreamObserver``, the GraphQL operation log). Each instance has its own
    registry and label sets, so a test gets fresh numbers by building an app; with several worker
    processes the numbers are shared through ``PROMETHEUS_MULTIPROC_DIR`` whatever the registry.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.operation_label = BoundedLabel(
            limit=OPERATION_NAME_LIMIT, max_length=OPERATION_NAME_LENGTH, pattern=OPERATION_NAME
        )
        self.outcome_label = BoundedLabel(limit=100, max_length=120, pattern=r"ok|[A-Z_]+(,[A-Z_]+)*")
        self.result_label = BoundedLabel(limit=50, max_length=40, pattern=r"connected|[A-Z_]+")
        # Only the configured hosts (allow_hosts) by name: limit 0 makes every other one "other".
        self.host_label = BoundedLabel(limit=0, max_length=HOST_LENGTH, pattern=HOST)
        registry = self.registry
        self._graphql_requests = Counter(
            "git_integrations_graphql_requests_total",
            "GraphQL requests by operation name and outcome.",
            ["operation", "outcome"],
            registry=registry,
        )
        self._graphql_duration = Histogram(
            "git_integrations_graphql_request_duration_seconds",
            "Time to answer a GraphQL request, by operation name and outcome.",
            ["operation", "outcome"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=registry,
        )
        self._upstream_requests = Counter(
            "git_integrations_upstream_requests_total",
            "Requests to Git hosts (each attempt) by host, endpoint family and HTTP status ('error': no answer).",
            ["host", "endpoint", "status"],
            registry=registry,
        )
        self._upstream_duration = Histogram(
            "git_integrations_upstream_request_duration_seconds",
            "Time a Git host took to answer one request, by host and endpoint family.",
            ["host", "endpoint"],
            buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=registry,
        )
        self._rate_limit_remaining = Gauge(
            "git_integrations_upstream_rate_limit_remaining",
            "Requests left in the rate-limit window the host reported last (GitHub: of the token used last).",
            ["host"],
            multiprocess_mode="mostrecent",
            registry=registry,
        )
        self._repository_cache = Counter(
            "git_integrations_repository_cache_lookups_total",
            "Repository listings asked of the cache: hit, miss or revalidate.",
            ["provider", "result"],
            registry=registry,
        )
        self._token_refreshes = Counter(
            "git_integrations_token_refreshes_total",
            "Renewals of expiring login tokens: refreshed, refused, failed, waited or expired (not tried).",
            ["provider", "outcome"],
            registry=registry,
        )
        self._connect_attempts = Counter(
            "git_integrations_connect_attempts_total",
            "Attempts to connect an integration, by provider, method, token kind and result.",
            ["provider", "method", "token_kind", "result"],
            registry=registry,
        )

        self._deliveries = Counter(
            "git_integrations_webhook_deliveries_total",
            "Webhook deliveries received, by provider and outcome.",
            ["provider", "outcome"],
            registry=registry,
        )
        self._delivery_duration = Histogram(
            "git_integrations_webhook_delivery_duration_seconds",
            "Time from a delivery's body being read to the answer, by provider.",
            ["provider"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=registry,
        )
        self._catch_up = Counter(
            "git_integrations_delivery_catch_up_total",
            "Work of the delivery catch-up: logs read, deliveries redelivered, failures, broken hooks.",
            ["outcome"],
            registry=registry,
        )

    def webhook_delivery(self, provider: str, outcome: str, seconds: float | None = None) -> None:
        assert outcome in DELIVERY_OUTCOMES
        self._deliveries.labels(provider, outcome).inc()
        if seconds is not None:
            self._delivery_duration.labels(provider).observe(seconds)

    def delivery_catch_up(self, outcome: str, count: int = 1) -> None:
        assert outcome in CATCH_UP_OUTCOMES
        self._catch_up.labels(outcome).inc(count)

    def graphql_request(self, operation: str | None, outcome: str, seconds: float) -> None:
        name = self.operation_label(operation) if operation else "anonymous"
        result = self.outcome_label(outcome)
        self._graphql_requests.labels(name, result).inc()
        self._graphql_duration.labels(name, result).observe(seconds)

    def allow_hosts(self, hosts: Iterable[str]) -> None:
        """The hosts the operator configured: always labelled by name."""
        self.host_label.allow(hosts)

    def upstream_request(
        self,
        host: str,
        url: str,
        status: int | None,
        seconds: float,
        rate_limit_remaining: str | None = None,
    ) -> None:
        """One attempt at a request to a Git host; ``status`` None when no answer came."""
        host_value = self.host_label(host)
        family = endpoint_family(url)
        status_value = "error" if status is None else str(status) if 100 <= status <= 599 else OTHER
        self._upstream_requests.labels(host_value, family, status_value).inc()
        if status is not None:
            self._upstream_duration.labels(host_value, family).observe(seconds)
        if rate_limit_remaining is not None and rate_limit_remaining.strip().isdigit():
            self._rate_limit_remaining.labels(host_value).set(int(rate_limit_remaining.strip()))

    def repository_cache(self, provider: str, result: str) -> None:
        assert result in CACHE_RESULTS
        self._repository_cache.labels(provider, result).inc()

    def token_refresh(self, provider: str, outcome: str) -> None:
        assert outcome in REFRESH_OUTCOMES
        self._token_refreshes.labels(provider, outcome).inc()

    def connect_attempt(self, provider: str | None, method: str, token_kind: str | None, result: str) -> None:
        """``result``: ``connected`` or the code of the error that ended the attempt."""
        self._connect_attempts.labels(
            provider or UNKNOWN, method, token_kind or UNKNOWN, self.result_label(result)
        ).inc()

    def exposition(self, accept: str | None = None) -> tuple[bytes, str]:
        """The current metrics in the format the scraper's ``Accept`` header asks for, and its content type.

        Prometheus text format 0.0.4 unless the scraper asks for OpenMetrics or a later text format.
        """
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.exposed_registry()), content_type

    def exposed_registry(self) -> CollectorRegistry:
        """What a scrape reads: this registry, or every process's numbers in multiprocess mode."""
        directory = multiprocess_directory()
        return self.registry if directory is None else shared_registry(directory)


def shared_registry(directory: Path) -> CollectorRegistry:
    """The numbers every worker process wrote to ``directory`` (``PROMETHEUS_MULTIPROC_DIR``)."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    return registry


def error_code(exc: BaseException) -> str:
    """The public code of an error, ``INTERNAL`` for anything else (a bug)."""
    code = getattr(exc, "code", None)
    return code if isinstance(code, str) and re.fullmatch(r"[A-Z_]{1,40}", code) else "INTERNAL"


def endpoint_family(url: str) -> str:
    """Which kind of endpoint ``url`` is (``ENDPOINT_FAMILIES``), from its path below the API root."""
    segments = [s for s in urlsplit(url).path.split("/") if s]
    for i in range(len(segments) - 1):
        # GitHub Enterprise serves its API below /api/v3, GitLab below /api/v4 (itself maybe below a path).
        if segments[i] == "api" and segments[i + 1] in ("v3", "v4"):
            segments = segments[i + 2 :]
            break
    first = segments[0] if segments else ""
    if first == "user":
        if "installations" in segments:
            return "installations"
        return "user_repos" if segments[-1] == "repos" else "user"
    if first in ("repos", "repositories"):
        return "branches" if segments[3:4] == ["branches"] else "repos"
    if first == "projects":
        return "branches" if segments[2:4] == ["repository", "branches"] else "projects"
    if first in ("groups", "personal_access_tokens"):
        return first
    if first in ("applications", "login", "oauth") or _is_oauth_path(segments):
        return "oauth"
    return OTHER


def _is_oauth_path(segments: list[str]) -> bool:
    # GitLab below a path (https://host/gitlab/oauth/token): the web endpoints are not under /api/v4.
    return any(tuple(segments[-len(tail) :]) == tail for tail in _OAUTH_TAILS)


# --- exposition ----------------------------------------------------------------------------------------


def multiprocess_directory() -> Path | None:
    """Where the workers' numbers are shared, when several processes serve (see the module docstring)."""
    return Path(_MULTIPROCESS_DIR) if _MULTIPROCESS_DIR else None


def prepare_multiprocess_directory(directory: Path) -> None:
    """Create the shared directory, and remove what processes of an earlier run left in it.

    Only prometheus-client's own ``*.db`` files are removed: a stale run's counters would otherwise
    be added to this run's.
    """
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink(missing_ok=True)
