"""The bounds around every call to a Git host (app/net/transports.py, app/net/decoding.py), one by one.

The inner transports here stream lazily and count what was pulled from them, so a test sees that a
bound stopped reading early rather than reading everything and complaining afterwards. Through the
service, against real sockets: tests/reliability/test_hostile_hosts.py.
"""

from __future__ import annotations

import asyncio
import gzip
import time
import zlib
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from app.net.decoding import BodyReader, TooLarge
from app.net.transports import (
    AnswerTooLarge,
    BodyLimitTransport,
    DeadlineExceeded,
    DeadlineTransport,
    OriginRouter,
    PoolBusy,
    PoolGate,
    UnreadableEncoding,
)

LIMIT = 1024 * 1024


class LazyBody(httpx.AsyncByteStream):
    """``chunks`` chunks of ``size`` bytes, made only when asked for, each after ``pause`` seconds."""

    def __init__(
        self, chunks: int, size: int = 64 * 1024, pause: float = 0.0, data: bytes | None = None
    ) -> None:
        self.chunks, self.size, self.pause, self.data = chunks, size, pause, data
        self.pulled = 0
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self.data is not None:
            for start in range(0, len(self.data), self.size):
                self.pulled += 1
                yield self.data[start : start + self.size]
            return
        for _ in range(self.chunks):
            if self.pause:
                await asyncio.sleep(self.pause)
            self.pulled += 1
            yield b"x" * self.size

    async def aclose(self) -> None:
        self.closed = True


class Answering(httpx.AsyncBaseTransport):
    """Answers every request with a response built by ``make`` (after ``delay`` seconds)."""

    def __init__(self, make: Callable[[], httpx.Response], delay: float = 0.0) -> None:
        self.make, self.delay, self.requests = make, delay, 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        return self.make()


async def read(transport: httpx.AsyncBaseTransport, url: str = "https://git.example.com/api") -> bytes:
    async with httpx.AsyncClient(transport=transport) as client:
        response = await client.get(url)
        return response.content


# --- the cap on bytes ---------------------------------------------------------------------------


async def test_a_300_mb_answer_is_refused_after_reading_little_more_than_the_limit() -> None:
    body = LazyBody(chunks=300 * 16)  # 300 MB in 64 KB chunks, never all in memory
    transport = BodyLimitTransport(Answering(lambda: httpx.Response(200, stream=body)), LIMIT)

    with pytest.raises(AnswerTooLarge) as refused:
        await read(transport)

    assert refused.value.limit == LIMIT
    assert body.pulled * body.size <= LIMIT + body.size  # stopped at the limit, not at 300 MB
    assert body.closed


async def test_an_answer_announcing_more_than_the_limit_is_refused_before_its_body_is_read() -> None:
    body = LazyBody(chunks=10)
    answer = lambda: httpx.Response(200, headers={"Content-Length": str(300 * 1024 * 1024)}, stream=body)  # noqa: E731

    with pytest.raises(AnswerTooLarge):
        await read(BodyLimitTransport(Answering(answer), LIMIT))

    assert body.pulled == 0 and body.closed


async def test_a_gzip_bomb_never_inflates_past_the_limit() -> None:
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024))  # 64 MB of zeros in about 64 KB
    assert len(bomb) < LIMIT
    body = LazyBody(chunks=0, size=4096, data=bomb)
    answer = lambda: httpx.Response(200, headers={"Content-Encoding": "gzip"}, stream=body)  # noqa: E731

    with pytest.raises(AnswerTooLarge):
        await read(BodyLimitTransport(Answering(answer), LIMIT))

    assert body.pulled * body.size < len(bomb)  # refused part way through the compressed body


def test_the_reader_never_hands_out_more_than_the_limit_from_one_small_chunk() -> None:
    reader = BodyReader("gzip", limit=1000)
    tiny = gzip.compress(b"\0" * 10_000_000)  # one chunk of ~10 KB that inflates a thousandfold

    with pytest.raises(TooLarge):
        reader.feed(tiny)


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),  # RFC 9110's zlib-wrapped deflate
        ("deflate", lambda data: zlib.compress(data)[2:-4]),  # the raw deflate some servers send
        ("identity", lambda data: data),
    ],
)
async def test_compressed_answers_within_the_limit_read_as_they_should(
    encoding: str, compress: Callable[[bytes], bytes]
) -> None:
    original = b'{"answer": "' + b"ok " * 50_000 + b'"}'
    body = LazyBody(chunks=0, size=1000, data=compress(original))
    answer = lambda: httpx.Response(200, headers={"Content-Encoding": encoding}, stream=body)  # noqa: E731

    assert await read(BodyLimitTransport(Answering(answer), LIMIT)) == original


async def test_an_encoding_the_service_did_not_ask_for_is_unreadable() -> None:
    answer = lambda: httpx.Response(200, headers={"Content-Encoding": "br"}, content=b"\x1b\x00")  # noqa: E731

    with pytest.raises(UnreadableEncoding):
        await read(BodyLimitTransport(Answering(answer), LIMIT))


async def test_a_corrupt_compressed_answer_is_a_decoding_error() -> None:
    answer = lambda: httpx.Response(200, headers={"Content-Encoding": "gzip"}, content=b"not gzip at all")  # noqa: E731

    with pytest.raises(httpx.DecodingError):
        await read(BodyLimitTransport(Answering(answer), LIMIT))


# --- one deadline per call --------------------------------------------------------------------


async def test_a_body_dripping_in_under_the_read_timeout_still_ends_at_the_deadline() -> None:
    body = LazyBody(chunks=1000, size=1, pause=0.05)  # 50 s in all, each piece well within any read timeout
    transport = DeadlineTransport(Answering(lambda: httpx.Response(200, stream=body)), seconds=0.3)

    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        await read(transport)

    assert time.monotonic() - started < 5  # not the 50 s the drip would take
    assert body.pulled < 1000


async def test_the_deadline_covers_waiting_for_the_answer_too() -> None:
    transport = DeadlineTransport(Answering(lambda: httpx.Response(200), delay=30), seconds=0.2)

    with pytest.raises(DeadlineExceeded):
        await read(transport)


# --- the pools ------------------------------------------------------------------------------------


async def test_the_gate_lets_in_as_many_requests_as_it_has_slots_and_the_next_waits_a_bounded_time() -> None:
    bodies: list[LazyBody] = []

    def answer() -> httpx.Response:
        bodies.append(LazyBody(chunks=1))
        return httpx.Response(200, stream=bodies[-1])

    inner = Answering(answer)
    gate = PoolGate(inner, slots=1, wait_seconds=0.1)
    async with httpx.AsyncClient(transport=gate) as client:
        request = client.build_request("GET", "https://git.example.com/")
        held = await client.send(request, stream=True)  # its connection is in use until it is closed

        with pytest.raises(PoolBusy):
            await client.get("https://git.example.com/")
        assert inner.requests == 1  # the waiting request never reached the pool

        await held.aclose()
        assert (await client.get("https://git.example.com/")).status_code == 200


async def test_a_failed_request_gives_its_slot_back() -> None:
    class Failing(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("refused", request=request)

    gate = PoolGate(Failing(), slots=1, wait_seconds=0.1)
    async with httpx.AsyncClient(transport=gate) as client:
        for _ in range(3):
            with pytest.raises(httpx.ConnectError):
                await client.get("https://git.example.com/")


async def test_configured_origins_and_every_other_host_use_different_pools() -> None:
    configured = Answering(lambda: httpx.Response(200, text="configured"))
    other = Answering(lambda: httpx.Response(200, text="other"))
    router = OriginRouter([("https", "api.github.com", 443)], configured, other)

    assert await read(router, "https://api.github.com/user") == b"configured"
    assert await read(router, "https://API.GITHUB.COM:443/user") == b"configured"
    assert await read(router, "https://gitlab.example.com/api/v4/user") == b"other"
    assert await read(router, "https://api.github.com:8443/user") == b"other"
