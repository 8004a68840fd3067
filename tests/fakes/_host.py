"""What both fake hosts share: a request log, added latency, fault injection, a movable clock, control routes.

Fault kinds (each queued fault is used by exactly one request, in order; ``path_prefix`` limits which):

- ``fail``: answer ``status`` (500 JSON, 502/503/504 an HTML proxy page) without reaching the host logic.
- ``hang``: read the request, wait ``seconds``, then handle it and answer normally, even when the client
  has gone meanwhile (use a client timeout shorter than that).
- ``reset``: drop the connection without answering. Under uvicorn (``server.run_in_thread``) the socket is
  aborted with an RST; in-process (``httpx.ASGITransport``) the client sees ``httpx.ReadError``.
- ``invalid_json``: answer 200 ``application/json`` whose body is an HTML page.
- ``truncate``: send the headers and half of the real body, then drop the connection (uvicorn); in-process the
  client sees ``httpx.RemoteProtocolError``.

Control routes under ``/_fake/`` (never logged, delayed, faulted or rate limited) let another process steer a
fake started with ``python -m tests.fakes``: ``GET /_fake/state``, ``POST /_fake/faults``, ``POST /_fake/config``,
``POST /_fake/seed``, ``POST /_fake/clear``.
"""

from __future__ import annotations

import asyncio
import gzip
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, NamedTuple

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tests.fakes._http import Call, Router, json_response, route_segments, wall_clock

CONTROL_PREFIX = "_fake"
# Every answer of a fake carries this header, and APP_ENV=production refuses an answer that does
# (app.net.transports.FAKE_HOST_HEADER, the same name: app/ imports nothing from tests/).
FAKE_HOST_HEADER = "X-Fake-Git-Host"
# Set by ``tests.fakes.server`` on every scope: a callable that aborts this request's TCP connection.
ABORT_EXTENSION = "tests.fakes.abort"
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]

FaultKind = Literal["fail", "hang", "reset", "invalid_json", "truncate"]


class RecordedRequest(NamedTuple):
    method: str
    path: str  # below the mount point, e.g. "/api/v3/user/repos"
    query: str
    status: int  # 0 while in flight, or when the connection was dropped before an answer


@dataclass
class Fault:
    kind: FaultKind
    status: int = 500
    seconds: float = 0.0
    path_prefix: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    exact: bool = False  # only the path equal to ``path_prefix``, not those below it
    query_contains: str = ""  # only requests whose query string contains this


class FakeHost:
    """Base of ``FakeGitHub`` and ``FakeGitLab``; subclasses fill ``self.router``."""

    # Attributes ``POST /_fake/config`` may set.
    CONFIGURABLE: ClassVar[frozenset[str]] = frozenset({"delay"})

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.delay: float = 0.0
        self.requests: list[RecordedRequest] = []
        # How many requests it was answering at once, now and at most (what a host's concurrency limit
        # sees: GitHub's secondary rate limit allows 100 concurrent requests per user).
        self.in_flight = 0
        self.max_in_flight = 0
        self.refresh_count = 0
        self.revocations: list[tuple[str, str]] = []  # (how, token)
        # Mutating requests (POST, PUT, PATCH, DELETE) in flight now, and the most seen at once. GitHub
        # asks integrators to "make requests serially instead of concurrently" and to pause between
        # mutative ones (https://docs.github.com/rest/using-the-rest-api/best-practices-for-using-the-rest-api);
        # the fake does not refuse a burst, it measures it (make overlap visible with ``delay``).
        self.writes_in_flight = 0
        self.max_writes_in_flight = 0
        # A host's limit on concurrent requests per caller (None: none): a request arriving while that
        # many of the same credentials' requests are in flight gets ``concurrency_refusal()`` (FakeGitHub:
        # GitHub's secondary rate limit of 100 concurrent requests). Counted per Authorization header.
        self.concurrency_limit: int | None = None
        self.concurrency_refusals = 0
        self._in_flight_by_credential: dict[bytes, int] = {}
        # Called with each request as it arrives (before the delay), e.g. to see what else is in flight.
        self.on_arrival: Callable[[RecordedRequest], None] | None = None
        # Requests held unanswered until their event is set (``hold``): a test orders two reads by that.
        self._holds: list[tuple[str, str, asyncio.Event]] = []
        # A test aid for worlds of tens of thousands of repositories (off by default): GET answers are
        # kept per token and URL until the world changes through the fake's methods (``forget_lists``).
        # A real host renders its pages on many machines at once; one fake process renders one at a
        # time, so without this a benchmark would mostly measure the fake.
        self.fast_lists = False
        self.answers: dict[tuple[str, str, str], Response] = {}
        self.router = Router()
        self._faults: deque[Fault] = deque()
        self._clock_offset = 0.0
        self._add_control_routes()
        self.app = Starlette(
            routes=[Route("/{path:path}", self._endpoint, methods=_METHODS)],
            middleware=[
                Middleware(IdentifyingMiddleware, name=type(self).__name__),
                Middleware(HostMiddleware, fake=self),
            ],
        )

    # --- clock -----------------------------------------------------------------------------------

    def now(self) -> float:
        return wall_clock() + self._clock_offset

    def advance_time(self, seconds: float) -> None:
        """Move the fake's clock forward: codes, tokens and rate-limit windows expire without sleeping."""
        with self.lock:
            self._clock_offset += seconds

    # --- request log -----------------------------------------------------------------------------

    def count(self, method: str | None = None, path_prefix: str = "") -> int:
        """How many requests matched ``method`` (``None``: any) and started with ``path_prefix``."""
        with self.lock:
            return sum(
                1
                for r in self.requests
                if (method is None or r.method == method.upper()) and r.path.startswith(path_prefix)
            )

    def forget_lists(self) -> None:
        """The world changed: what ``fast_lists`` kept is computed again."""
        self.answers.clear()

    def kept_answer(self, token: str, call: Call, compute: Callable[[], Response]) -> Response:
        """``compute()``, or with ``fast_lists`` the answer kept for this token, path and query."""
        if not self.fast_lists or call.method != "GET":
            return compute()
        # Kept gzip-compressed for a client that accepts it, as both hosts send their API answers
        # (Content-Encoding: gzip in tests/fixtures/github/user-repos.page1.codecov-2020.json and
        # tests/fixtures/gitlab/user.oauth-token.codecov-2020.json): a page of 100 repositories is
        # about 100 KB of JSON and a tenth of that on the wire.
        gzipped = "gzip" in call.headers.get("accept-encoding", "")
        key = (token, call.request.url.path, call.request.url.query, gzipped)
        kept = self.answers.get(key)
        if kept is None:
            kept = compute()
            if kept.status_code != 200:
                return kept
            if gzipped:
                headers = {k: v for k, v in kept.headers.items() if k.lower() != "content-length"}
                headers["Content-Encoding"] = "gzip"
                headers["Vary"] = "Accept-Encoding"
                kept = Response(gzip.compress(bytes(kept.body), mtime=0), kept.status_code, headers=headers)
            self.answers[key] = kept
        # A copy: the envelope adds headers (ETag, rate limits) to what it sends.
        return Response(kept.body, kept.status_code, headers=dict(kept.headers))

    def clear_requests(self) -> None:
        with self.lock:
            self.requests.clear()
            self.max_in_flight = self.in_flight

    # --- faults ----------------------------------------------------------------------------------

    def fail_next(
        self,
        status: int = 500,
        count: int = 1,
        *,
        path_prefix: str = "",
        headers: dict[str, str] | None = None,
        body: Any = None,
        exact: bool = False,
        query_contains: str = "",
    ) -> None:
        """The next ``count`` requests answer ``status`` (with optional headers/JSON body, e.g. a secondary
        limit); ``exact``: only requests for the path ``path_prefix`` itself; ``query_contains``: only
        requests whose query string contains it."""
        fault = Fault(
            "fail",
            status=status,
            path_prefix=path_prefix,
            headers=headers or {},
            body=body,
            exact=exact,
            query_contains=query_contains,
        )
        self._queue(count, fault)

    def hang_next(self, seconds: float, count: int = 1, *, path_prefix: str = "") -> None:
        self._queue(count, Fault("hang", seconds=seconds, path_prefix=path_prefix))

    def reset_next_connection(self, count: int = 1, *, path_prefix: str = "") -> None:
        self._queue(count, Fault("reset", path_prefix=path_prefix))

    def invalid_json_next(self, count: int = 1, *, path_prefix: str = "") -> None:
        self._queue(count, Fault("invalid_json", path_prefix=path_prefix))

    def truncate_next(self, count: int = 1, *, path_prefix: str = "") -> None:
        self._queue(count, Fault("truncate", path_prefix=path_prefix))

    def hold(self, *, path_prefix: str = "", query_contains: str = "") -> asyncio.Event:
        """Requests below ``path_prefix`` whose query contains ``query_contains`` wait, unanswered, until
        the returned event is set: a test makes one read come before another by that, not by timing."""
        released = asyncio.Event()
        with self.lock:
            self._holds.append((path_prefix, query_contains, released))
        return released

    def clear_faults(self) -> None:
        with self.lock:
            self._faults.clear()

    def _queue(self, count: int, fault: Fault) -> None:
        with self.lock:
            self._faults.extend(Fault(**vars(fault)) for _ in range(count))

    def _take_fault(self, path: str, query: str = "") -> Fault | None:
        with self.lock:
            for fault in self._faults:
                matches = path == fault.path_prefix if fault.exact else path.startswith(fault.path_prefix)
                if matches and fault.query_contains in query:
                    self._faults.remove(fault)
                    return fault
        return None

    # --- dispatch --------------------------------------------------------------------------------

    async def _endpoint(self, request: Request) -> Response:
        segments = route_segments(request.scope)
        body = await request.body()
        found = self.router.resolve(request.method, segments)
        with self.lock:
            if found is None:
                return self.not_found(Call(request, {}, body))
            handler, params = found
            return handler(Call(request, params, body))

    def concurrency_refusal(self) -> Response:
        """The answer to a request over ``concurrency_limit``; a host with such a limit overrides it."""
        return json_response({"message": "Too Many Requests"}, 429, {"Retry-After": "60"})

    def not_found(self, call: Call) -> Response:
        return json_response({"message": "Not Found"}, 404)

    def fault_response(self, fault: Fault) -> Response:
        if fault.body is not None:
            return json_response(fault.body, fault.status, fault.headers)
        if fault.status >= 502:
            html = f"<html><body><h1>{fault.status} Bad Gateway</h1></body></html>"
            return Response(html, fault.status, fault.headers, media_type="text/html")
        return json_response({"message": "Server Error"}, fault.status, fault.headers)

    # --- control ---------------------------------------------------------------------------------

    def state_summary(self) -> dict[str, Any]:
        return {
            "requests": len(self.requests),
            "refresh_count": self.refresh_count,
            "revocations": [list(item) for item in self.revocations],
        }

    def seed(self, data: dict[str, Any]) -> None:
        raise NotImplementedError

    def _add_control_routes(self) -> None:
        prefix = f"/{CONTROL_PREFIX}"
        self.router.add("GET", f"{prefix}/state", lambda call: json_response(self.state_summary()))
        self.router.add("POST", f"{prefix}/faults", self._control_fault)
        self.router.add("POST", f"{prefix}/config", self._control_config)
        self.router.add("POST", f"{prefix}/seed", self._control_seed)
        self.router.add("POST", f"{prefix}/clear", self._control_clear)

    def _control_fault(self, call: Call) -> Response:
        spec = call.json()
        count = int(spec.pop("count", 1))
        self._queue(count, Fault(**spec))
        return json_response({"queued": count})

    def _control_config(self, call: Call) -> Response:
        changes: dict[str, Any] = call.json()
        unknown = set(changes) - self.CONFIGURABLE
        if unknown:
            return json_response({"message": f"not configurable: {sorted(unknown)}"}, 400)
        for name, value in changes.items():
            setattr(self, name, value)
        return json_response({name: getattr(self, name) for name in changes})

    def _control_seed(self, call: Call) -> Response:
        self.seed(call.json())
        return json_response({"seeded": True})

    def _control_clear(self, call: Call) -> Response:
        self.requests.clear()
        self._faults.clear()
        return json_response({"cleared": True})


class IdentifyingMiddleware:
    """Marks every answer (faults and control routes too) as coming from a fake: ``FAKE_HOST_HEADER``."""

    def __init__(self, app: ASGIApp, name: str) -> None:
        self.app = app
        self.value = name.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def marking_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), (FAKE_HOST_HEADER.lower().encode(), self.value)]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, marking_send)


class HostMiddleware:
    """Logs every request, adds ``fake.delay`` and applies queued faults."""

    def __init__(self, app: ASGIApp, fake: FakeHost) -> None:
        self.app = app
        self.fake = fake

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        segments = route_segments(scope)
        if segments[:1] == [CONTROL_PREFIX]:
            await self.app(scope, receive, send)
            return
        path = "/" + "/".join(segments)
        status = 0

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        entry = RecordedRequest(scope["method"], path, scope.get("query_string", b"").decode(), 0)
        writes = scope["method"] in ("POST", "PUT", "PATCH", "DELETE")
        credential = dict(scope.get("headers", [])).get(b"authorization", b"")
        with self.fake.lock:  # logged in arrival order; the status is filled in when the answer starts
            index = len(self.fake.requests)
            concurrent = self.fake._in_flight_by_credential.get(credential, 0) + 1
            self.fake._in_flight_by_credential[credential] = concurrent
            limit = self.fake.concurrency_limit
            refused = bool(credential) and limit is not None and concurrent > limit
            if refused:  # a refused request takes no place among those in flight
                self.fake.concurrency_refusals += 1
                self.fake._in_flight_by_credential[credential] = concurrent - 1
            self.fake.requests.append(entry)
            self.fake.in_flight += 1
            self.fake.max_in_flight = max(self.fake.max_in_flight, self.fake.in_flight)
            if writes:
                self.fake.writes_in_flight += 1
                self.fake.max_writes_in_flight = max(
                    self.fake.max_writes_in_flight, self.fake.writes_in_flight
                )
        if self.fake.on_arrival is not None:
            self.fake.on_arrival(entry)
        try:
            for prefix, query, released in list(self.fake._holds):
                if path.startswith(prefix) and query in entry.query:
                    await released.wait()
            if self.fake.delay > 0:
                await asyncio.sleep(self.fake.delay)
            fault = None if refused else self.fake._take_fault(path, entry.query)
            if refused:
                await self.fake.concurrency_refusal()(scope, receive, recording_send)
            elif fault is None:
                await self.app(scope, receive, recording_send)
            else:
                await self._inject(fault, scope, receive, recording_send)
        finally:
            with self.fake.lock:
                self.fake.in_flight -= 1
                left = self.fake._in_flight_by_credential.get(credential, 0) - (0 if refused else 1)
                if left > 0:
                    self.fake._in_flight_by_credential[credential] = left
                else:
                    self.fake._in_flight_by_credential.pop(credential, None)
                if writes:
                    self.fake.writes_in_flight -= 1
                if index < len(self.fake.requests) and self.fake.requests[index] is entry:
                    self.fake.requests[index] = entry._replace(status=status)

    async def _inject(self, fault: Fault, scope: Scope, receive: Receive, send: Send) -> None:
        abort: Callable[[], None] | None = scope.get("extensions", {}).get(ABORT_EXTENSION)
        if fault.kind == "hang":
            # The request is read first and handled after the pause even if the client has gone
            # meanwhile: a host that received a request may act on it although its answer never
            # arrives, and the client cannot tell (a refresh token spent without the new one arriving).
            body, more = b"", True
            while more:
                message = await receive()
                body += message.get("body", b"")
                more = message["type"] == "http.request" and message.get("more_body", False)
            replayed = False

            async def replay() -> Message:
                nonlocal replayed
                if replayed:
                    return await receive()
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}

            await asyncio.sleep(fault.seconds)
            await self.app(scope, replay, send)
        elif fault.kind == "fail":
            await self.fake.fault_response(fault)(scope, receive, send)
        elif fault.kind == "invalid_json":
            page = b"<!DOCTYPE html><html><body><h1>Unicorn!</h1></body></html>"
            await Response(page, 200, media_type="application/json; charset=utf-8")(scope, receive, send)
        elif fault.kind == "reset":
            if abort is None:
                raise httpx.ReadError("[Errno 104] Connection reset by peer")
            abort()
            await asyncio.sleep(0.05)  # let the server notice before the app returns
        else:
            await self._truncate(scope, receive, send, abort)

    async def _truncate(
        self, scope: Scope, receive: Receive, send: Send, abort: Callable[[], None] | None
    ) -> None:
        messages: list[Message] = []

        async def capture(message: Message) -> None:
            messages.append(message)

        await self.app(scope, receive, capture)
        start = messages[0]
        body = b"".join(m.get("body", b"") for m in messages[1:])
        if abort is None:
            raise httpx.RemoteProtocolError(
                f"peer closed connection without sending complete message body "
                f"(received {len(body) // 2} bytes, expected {len(body)})"
            )
        await send(start)
        await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
        abort()
        await asyncio.sleep(0.05)
