"""Transports that wrap transports: the bounds every answer from a Git host is read within.

A host is not trusted to behave: it may drip one byte every few seconds (each read then finishes
within httpx's per-read timeout, and the whole answer takes for ever), send 300 MB, or hold
connections so long that nothing is left for anyone else (issue 11). Composed the way httpx composes
transports, outermost first (``app.net.transport.guarded_client`` builds the stack):

    RefuseFakeHosts       production only: an answer marked as a test fake's is refused (``make demo``)
    BodyLimitTransport    at most ``max_bytes`` of body, decompressed by us (``app.net.decoding``)
      └─ OriginRouter         configured hosts → their pool; hosts users typed → a pool of their own
           └─ PoolGate            at most as many requests as the pool has connections; a bounded wait
                └─ DeadlineTransport  one deadline for the call itself: connecting, sending, waiting, every byte
                     └─ the guarded httpx.AsyncHTTPTransport (app.net.transport)

Waiting for a connection is bounded by the gate, not by the deadline: on a busy worker a request
that waited its turn still gets its whole deadline to talk to the host.

Each bound fails with an ``httpx.TransportError`` subclass below, so whoever uses the client
(``app.net.client.HostHTTP``, the JWKS fetch) handles it like any transport failure.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from typing import TypeVar

import httpx

from app.net.decoding import BodyReader, CorruptBody, TooLarge, UnsupportedEncoding

T = TypeVar("T")
Origin = tuple[str, str, int]  # scheme, host, port
_DEFAULT_PORTS = {"http": 80, "https": 443}


class DeadlineExceeded(httpx.TimeoutException):
    """The whole call (connect, send, wait, read the body) took longer than its deadline."""


class PoolBusy(httpx.PoolTimeout):
    """Every connection of the pool stayed in use for as long as a request may wait for one."""


class AnswerTooLarge(httpx.TransportError):
    """The host's answer is longer than the service reads."""

    def __init__(self, message: str, *, request: httpx.Request, limit: int) -> None:
        super().__init__(message, request=request)
        self.limit = limit


class FakeHostRefused(httpx.TransportError):
    """The answer came from one of the fake Git hosts of the tests and ``make demo``, in production."""


class UnreadableEncoding(httpx.DecodingError):
    """The host compressed its answer in a way the service did not ask for."""


def origin_of(url: httpx.URL | str) -> Origin:
    """``(scheme, host, port)`` with the scheme's default port filled in."""
    url = httpx.URL(url)
    return url.scheme, url.host.lower(), url.port or _DEFAULT_PORTS.get(url.scheme, 0)


def _body(response: httpx.Response) -> httpx.AsyncByteStream:
    stream = response.stream
    if not isinstance(stream, httpx.AsyncByteStream):
        raise TypeError("an async transport answered with a synchronous body")
    return stream


def _wrapped(
    response: httpx.Response, stream: httpx.AsyncByteStream, *, drop: Collection[str] = ()
) -> httpx.Response:
    headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in drop]
    return httpx.Response(
        response.status_code, headers=headers, stream=stream, extensions=response.extensions
    )


class _Stream(httpx.AsyncByteStream):
    """A response body read through ``pull``; ``on_close`` runs once, however the reading ends."""

    def __init__(
        self,
        inner: httpx.AsyncByteStream,
        pull: Callable[[AsyncIterator[bytes]], AsyncIterator[bytes]],
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self._inner = inner
        self._pull = pull
        self._on_close = on_close

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._pull(self._inner.__aiter__()):
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            if self._on_close is not None:
                on_close, self._on_close = self._on_close, None
                on_close()


def _unchanged(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    return chunks


class DeadlineTransport(httpx.AsyncBaseTransport):
    """One deadline of ``seconds`` for each call, from sending until the last byte of the body."""

    def __init__(self, inner: httpx.AsyncBaseTransport, seconds: float) -> None:
        self._inner = inner
        self._seconds = seconds

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        deadline = asyncio.get_running_loop().time() + self._seconds

        async def within(step: Awaitable[T]) -> T:
            try:
                async with asyncio.timeout_at(deadline):
                    return await step
            except TimeoutError:
                raise DeadlineExceeded(
                    f"no complete answer within {self._seconds:g} seconds", request=request
                ) from None

        response = await within(self._inner.handle_async_request(request))

        async def pull(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
            while True:
                try:
                    chunk = await within(chunks.__anext__())
                except StopAsyncIteration:
                    return
                yield chunk

        return _wrapped(response, _Stream(_body(response), pull))

    async def aclose(self) -> None:
        await self._inner.aclose()


class BodyLimitTransport(httpx.AsyncBaseTransport):
    """Reads at most ``max_bytes`` of each body (after decompression) and refuses the rest."""

    def __init__(self, inner: httpx.AsyncBaseTransport, max_bytes: int) -> None:
        self._inner = inner
        self._max_bytes = max_bytes

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        try:
            reader = BodyReader(response.headers.get("content-encoding"), self._max_bytes)
            declared = response.headers.get("content-length", "").strip()
            if not reader.decodes and declared.isdigit() and int(declared) > self._max_bytes:
                raise TooLarge
        except (TooLarge, UnsupportedEncoding) as exc:
            await response.aclose()
            raise self._refusal(exc, request) from None

        async def pull(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
            try:
                async for chunk in chunks:
                    if decoded := reader.feed(chunk):
                        yield decoded
                if rest := reader.finish():
                    yield rest
            except TooLarge as exc:
                raise self._refusal(exc, request) from None
            except CorruptBody:
                raise httpx.DecodingError("the compressed answer is corrupt", request=request) from None

        # Decoded here: the length and encoding the host announced no longer describe these bytes.
        drop = ("content-encoding", "content-length") if reader.decodes else ()
        return _wrapped(response, _Stream(_body(response), pull), drop=drop)

    def _refusal(self, exc: Exception, request: httpx.Request) -> httpx.RequestError:
        if isinstance(exc, UnsupportedEncoding):
            return UnreadableEncoding(f"answer encoded as {exc}, which was not asked for", request=request)
        return AnswerTooLarge(
            f"answer longer than {self._max_bytes} bytes", request=request, limit=self._max_bytes
        )

    async def aclose(self) -> None:
        await self._inner.aclose()


# The fake GitHub and GitLab of tests/fakes mark every answer with this header (the same name is written
# there: app/ imports nothing from tests/). Production refuses such an answer: a demo configuration
# copied into production, or a fake reached through a proxy, must not become the service's Git host.
FAKE_HOST_HEADER = "X-Fake-Git-Host"


class RefuseFakeHosts(httpx.AsyncBaseTransport):
    """Refuses every answer that carries ``FAKE_HOST_HEADER`` (``APP_ENV=production``)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        if FAKE_HOST_HEADER in response.headers:
            await response.aclose()
            raise FakeHostRefused(
                f"{request.url.host} answered as a fake Git host (tests, make demo), which APP_ENV=production "
                "does not use",
                request=request,
            )
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


class PoolGate(httpx.AsyncBaseTransport):
    """Lets at most ``slots`` requests into ``inner`` at once; the others wait at most ``wait_seconds``.

    With ``slots`` equal to the pool's connections, httpcore never keeps a queue of its own: a long
    queue there costs CPU on every released connection (issue 11 saw a worker spin in it). A slot is
    held until the answer's body is closed, because only then does its connection return to the pool.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport, slots: int, wait_seconds: float) -> None:
        self._inner = inner
        self._slots = asyncio.Semaphore(slots)
        self._wait_seconds = wait_seconds

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            async with asyncio.timeout(self._wait_seconds):
                await self._slots.acquire()
        except TimeoutError:
            raise PoolBusy(
                f"no connection free within {self._wait_seconds:g} seconds", request=request
            ) from None
        try:
            response = await self._inner.handle_async_request(request)
        except BaseException:
            self._slots.release()
            raise

        return _wrapped(response, _Stream(_body(response), _unchanged, on_close=self._slots.release))

    async def aclose(self) -> None:
        await self._inner.aclose()


class OriginRouter(httpx.AsyncBaseTransport):
    """Requests to the ``configured`` origins go to ``configured_transport``; all others to ``other``.

    Hosts users typed (self-hosted GitLab) then share a pool of their own, so however slowly they
    answer they cannot take the connections the configured hosts (github.com, ``GITLAB_URL``) need.
    """

    def __init__(
        self,
        configured: Collection[Origin],
        configured_transport: httpx.AsyncBaseTransport,
        other: httpx.AsyncBaseTransport,
    ) -> None:
        self._configured = frozenset(configured)
        self._configured_transport = configured_transport
        self._other = other

    def routes_to_configured(self, url: httpx.URL | str) -> bool:
        """Whether requests to ``url`` use the configured hosts' pool."""
        return origin_of(url) in self._configured

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        transport = self._configured_transport if self.routes_to_configured(request.url) else self._other
        return await transport.handle_async_request(request)

    async def aclose(self) -> None:
        try:
            await self._configured_transport.aclose()
        finally:
            await self._other.aclose()
