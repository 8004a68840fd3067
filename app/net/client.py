"""``HostHTTP``: the one way this service speaks HTTP to a Git host, and the policy it follows.

- Every request goes through the shared guarded ``httpx.AsyncClient`` (``app.net.transport``:
  connection pooling, one set of timeouts) and never follows redirects: a redirect with a token
  attached could hand the token to another host.
- Only idempotent GETs are retried, a bounded number of times with exponential backoff and
  jitter, and only for failures that pass quickly (connection errors, 500/502/503/504). A host that
  used up a whole deadline, an answer too large to read, or a pool or user at their cap fail at once:
  trying again would only multiply the wait (issue 11).
- Rate limits (GitHub 403/429 with ``x-ratelimit-*`` or ``retry-after``; GitLab 429 with
  ``Retry-After``) become ``RateLimitedError`` carrying how long to wait; they are not retried
  here because the wait is usually far longer than a request should take.
- Transport failures become ``ProviderUnavailableError`` with a message that names the host and
  what went wrong, never the URL's query or any header (tokens live in headers); a connection the
  guard refused becomes ``HostNotAllowedError``.
- Every attempt is counted for the current request and holds one of the user's slots while it runs
  (``app.net.accounting``), and is reported to the ``UpstreamObserver`` (the metrics).
- Deadlines, the cap on an answer's size and the pools are the client's transports
  (``app.net.transports``); their failures become ``ProviderUnavailableError`` with a sentence each.

``Upstream`` bundles what the host packages need to make a ``HostHTTP``: the client, the retry
policy, the observer and the per-user cap, built once by the composition root (tests pass a quick
``RetryPolicy``).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from app.domain.errors import HostNotAllowedError, ProviderUnavailableError, RateLimitedError
from app.net.accounting import ConcurrencyCap, UpstreamObserver, UserBusyError, count_upstream_request
from app.net.guard import HostRefusedError
from app.net.transports import AnswerTooLarge, FakeHostRefused, PoolBusy, UnreadableEncoding

RETRYABLE_STATUSES = frozenset({500, 502, 503, 504})
# Pages one listing has in flight at first: a listing of up to 2,100 repositories (21 pages) takes two
# rounds, 10,000 four (1 + 20 + 40 + 39), a fifth of what GitHub allows at once (100).
FIRST_WINDOW = 20
# The most it grows to while the host answers cleanly (net.window): GitHub allows 100 concurrent
# requests per user ("About secondary rate limits"); 40 is also MAX_CONCURRENT_UPSTREAM_PER_USER's default.
MAX_WINDOW = 40
# 1,000 pages of 100: a listing larger than 100,000 repositories stops there and says so.
MAX_PAGES = 1000


@dataclass(frozen=True)
class PagePolicy:
    """How listings walk a host's pages (``net.pagination``); tests pass a smaller one through Seams."""

    first_window: int = FIRST_WINDOW  # pages of one listing in flight at first
    max_window: int = MAX_WINDOW  # the most it grows to while the host answers cleanly
    max_pages: int = MAX_PAGES  # per stream; a longer list stops there and says so (LIST_INCOMPLETE)
    # A rate limit asking for a pause up to this long is waited out and the page asked again (at
    # most ``throttle_retries`` times); a longer one fails the listing with RATE_LIMITED.
    inline_wait_seconds: float = 2.0
    throttle_retries: int = 2


# Failures that would only repeat, or multiply the wait, when tried again (see the module docstring).
_NOT_RETRIED = (httpx.TimeoutException, AnswerTooLarge, UnreadableEncoding, UserBusyError, FakeHostRefused)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and after which pauses an idempotent request is tried again."""

    attempts: int = 3  # the first try and two retries
    base_delay: float = 0.2
    max_delay: float = 2.0

    def delay(self, attempt: int) -> float:
        exp: float = min(self.max_delay, self.base_delay * (2**attempt))
        return float(exp * (0.5 + random.random() / 2))  # noqa: S311 - jitter, not security


def retry_after_seconds(response: httpx.Response, now: float | None = None) -> int | None:
    """How long the host asks us to wait, from ``Retry-After`` or a spent ``x-ratelimit-reset``."""
    now = time.time() if now is None else now
    retry_after = response.headers.get("retry-after")
    if retry_after:
        retry_after = retry_after.strip()
        if retry_after.isdigit():
            return int(retry_after)
        parsed = email.utils.parsedate_to_datetime(retry_after) if retry_after else None
        if parsed is not None:
            return max(0, int(parsed.timestamp() - now + 0.999))
    remaining = response.headers.get("x-ratelimit-remaining") or response.headers.get("ratelimit-remaining")
    reset = response.headers.get("x-ratelimit-reset") or response.headers.get("ratelimit-reset")
    if remaining is not None and remaining.strip() == "0" and reset and reset.strip().isdigit():
        return max(0, int(reset) - int(now))
    return None


def is_rate_limited(response: httpx.Response) -> bool:
    """Whether the host refused because of a rate limit (GitHub 403/429, GitLab 429)."""
    if response.status_code == 429:
        return True
    if response.status_code != 403:
        return False
    if response.headers.get("x-ratelimit-remaining", "").strip() == "0" or "retry-after" in response.headers:
        return True
    try:
        message = str(parse_json(response).get("message", ""))
    except (ValueError, AttributeError):
        return False
    return "rate limit" in message.lower()


def parse_json(response: httpx.Response) -> Any:
    """``response.json()``, where JSON nested too deeply to parse is a ``ValueError`` like any bad JSON.

    Python's parser recurses once per level of nesting: a few kilobytes of ``[`` end in a
    ``RecursionError``, which no handler of unreadable answers expects.
    """
    try:
        return response.json()
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", "", 0) from None


def json_body(response: httpx.Response, host: str) -> Any:
    """Parse a JSON body, or explain that the host did not answer with JSON."""
    try:
        return parse_json(response)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are both ValueErrors
        raise ProviderUnavailableError(
            f"{host} answered with something that is not valid JSON (HTTP {response.status_code}); try again later."
        ) from exc


@dataclass(frozen=True)
class Upstream:
    """The way out to Git hosts: the shared client, the retry policy, who observes each request."""

    client: httpx.AsyncClient
    retry: RetryPolicy = RetryPolicy()
    observer: UpstreamObserver | None = None
    pages: PagePolicy = PagePolicy()
    cap: ConcurrencyCap | None = None  # requests in flight per user; None: not capped (tests of a host)

    def to(self, host: str, headers: Mapping[str, str] | None = None, *, name: str | None = None) -> HostHTTP:
        """A ``HostHTTP`` for ``host`` (the host key, as metrics label it).

        ``name``: the host its requests actually go to, as messages name it, when that is not the
        host key (github.com's API is api.github.com); by default the host key.
        """
        return HostHTTP(self, host, default_headers=headers, name=name)


class HostHTTP:
    """Sends requests to one Git host over the shared client, with the rules above."""

    def __init__(
        self,
        upstream: Upstream,
        host: str,
        *,
        default_headers: Mapping[str, str] | None = None,
        name: str | None = None,
    ) -> None:
        self._client = upstream.client
        self._retry = upstream.retry
        self._observer = upstream.observer
        self.pages = upstream.pages  # how listings walk this host's pages (net.pagination)
        self._cap = upstream.cap
        self.key = host  # the host key: metrics and the SSRF guard's refusals
        self.host = name or host  # the host contacted: what messages name
        self._default_headers = dict(default_headers or {})

    async def get(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str | int] | None = None,
        etag: str | None = None,
    ) -> httpx.Response:
        """GET with bounded retries; returns any non-retryable answer (including 304, 401, 404)."""
        request_headers = {**self._default_headers, **(headers or {})}
        if etag:
            request_headers["If-None-Match"] = etag
        last_error: ProviderUnavailableError | None = None
        for attempt in range(self._retry.attempts):
            if attempt:
                await asyncio.sleep(self._retry.delay(attempt - 1))
            try:
                response = await self._send("GET", url, request_headers, params=params)
            except ProviderUnavailableError as exc:
                if isinstance(exc.__cause__, _NOT_RETRIED):
                    raise
                last_error = exc
                continue
            if response.status_code in RETRYABLE_STATUSES:
                last_error = self._unavailable(response)
                continue
            self._raise_for_rate_limit(response)
            return response
        assert last_error is not None
        raise last_error

    async def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        json_body: Any = None,
        data: Mapping[str, str] | None = None,
        auth: httpx.Auth | None = None,
    ) -> httpx.Response:
        """A request that is never retried (it may change something at the host)."""
        request_headers = {**self._default_headers, **(headers or {})}
        response = await self._send(method, url, request_headers, json_body=json_body, data=data, auth=auth)
        if response.status_code in RETRYABLE_STATUSES:
            raise self._unavailable(response)
        self._raise_for_rate_limit(response)
        return response

    async def _send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        *,
        params: Mapping[str, str | int] | None = None,
        json_body: Any = None,
        data: Mapping[str, str] | None = None,
        auth: httpx.Auth | None = None,
    ) -> httpx.Response:
        count_upstream_request()
        started = time.perf_counter()
        try:
            async with self._slot():
                response = await self._client.request(
                    method,
                    url,
                    headers=headers,
                    params=params,
                    json=json_body,
                    data=data,
                    auth=auth if auth is not None else httpx.USE_CLIENT_DEFAULT,
                    follow_redirects=False,
                )
                await response.aread()
        except UserBusyError as exc:
            self._observe(url, None, started)
            raise ProviderUnavailableError(
                "Too many of your requests to Git hosts are running at once; try again in a moment."
            ) from exc
        except PoolBusy as exc:
            self._observe(url, None, started)
            raise ProviderUnavailableError(
                f"The service has no free connection for {self.host} right now; try again in a moment."
            ) from exc
        except httpx.TimeoutException as exc:
            self._observe(url, None, started)
            raise ProviderUnavailableError(f"{self.host} did not answer in time; try again later.") from exc
        except AnswerTooLarge as exc:
            self._observe(url, None, started)
            raise ProviderUnavailableError(
                f"{self.host} sent an answer larger than {exc.limit // (1024 * 1024)} MiB, more than the "
                "service reads; check the address of the host."
            ) from exc
        except FakeHostRefused as exc:
            self._observe(url, None, started)
            raise ProviderUnavailableError(
                f"{self.host} is a fake Git host (the tests' or make demo's), which a production service "
                "does not use; the operator must point the service at the real host."
            ) from exc
        except (httpx.TransportError, httpx.DecodingError) as exc:
            self._observe(url, None, started)
            refused = exc.__cause__
            if isinstance(refused, HostRefusedError):
                # The SSRF guard refused the address at connect time (e.g. DNS now points inside).
                if refused.unresolvable:
                    raise ProviderUnavailableError(refused.message) from exc
                raise HostNotAllowedError(refused.message, host=self.key) from exc
            raise ProviderUnavailableError(
                f"Could not reach {self.host} ({_describe_transport_error(exc)}); check the address or try again later."
            ) from exc
        self._observe(url, response.status_code, started, response)
        return response

    def _slot(self) -> contextlib.AbstractAsyncContextManager[None]:
        return self._cap.slot() if self._cap is not None else contextlib.nullcontext()

    def _observe(
        self, url: str, status: int | None, started: float, response: httpx.Response | None = None
    ) -> None:
        if self._observer is None:
            return
        remaining = None
        if response is not None:
            remaining = response.headers.get("x-ratelimit-remaining") or response.headers.get(
                "ratelimit-remaining"
            )
        self._observer.upstream_request(self.key, url, status, time.perf_counter() - started, remaining)

    def _raise_for_rate_limit(self, response: httpx.Response) -> None:
        if is_rate_limited(response):
            wait = retry_after_seconds(response)
            if wait is None:
                wait = 60  # GitHub: with no hint, wait at least a minute
            raise RateLimitedError(
                f"{self.host} is rate limiting requests; try again in {wait} seconds.",
                retry_after_seconds=wait,
            )

    def _unavailable(self, response: httpx.Response) -> ProviderUnavailableError:
        return ProviderUnavailableError(
            f"{self.host} is having trouble (HTTP {response.status_code}); try again later.",
            retry_after_seconds=retry_after_seconds(response),
        )


def _describe_transport_error(exc: Exception) -> str:
    # httpx messages can include the URL; say only what kind of failure it was.
    if isinstance(exc, httpx.ConnectError):
        return "connection failed"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the connection was closed unexpectedly"
    if isinstance(exc, UnreadableEncoding):
        return "the answer was compressed in a way the service does not read"
    if isinstance(exc, httpx.DecodingError):
        return "the answer could not be decoded"
    if isinstance(exc, httpx.ProxyError):
        return "proxy error"
    return type(exc).__name__
