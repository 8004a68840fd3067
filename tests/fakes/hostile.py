"""A hostile "Git host" on 127.0.0.1: raw sockets, so it can misbehave below HTTP.

Whatever is asked, it answers with one of the behaviours below, each reproduced against the service
in issue 11 (a self-hosted "GitLab" is whatever address a user types, so nothing stops it doing this):

- ``drip``: a valid answer, one byte every ``interval`` seconds, headers included ("a self-hosted GitLab
  dripping one byte every 3 s held a connect for over 60 s with HTTP_TIMEOUT_SECONDS=5": each read
  finishes within the read timeout, the whole never does);
- ``huge``: a JSON answer of ``size`` bytes (300 MB took a worker from 68 to 377 MB), with or without
  ``Content-Length`` (``declare_length``), written lazily so that what was sent can be counted;
- ``gzip_bomb``: a small ``Content-Encoding: gzip`` body that inflates to ``size`` bytes;
- ``nested``: JSON nested 100,000 deep (Python's parser ends in ``RecursionError``), as a 200 or as the
  refusal ``status`` names.

``bytes_sent`` and ``connections`` say what it managed to do. It runs in a thread with its own event
loop, like a host elsewhere would: a busy service cannot slow it down.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

Behaviour = Literal["drip", "huge", "gzip_bomb", "nested"]
CHUNK = 64 * 1024


@dataclass
class HostileHost:
    behaviour: Behaviour
    interval: float = 0.3  # drip: seconds between bytes
    size: int = 300 * 1024 * 1024  # huge, gzip_bomb: bytes of body (inflated, for the bomb)
    declare_length: bool = False  # huge: send Content-Length
    status: str = "200 OK"  # nested: the status line's code and reason (a refusal is read for its reason too)
    bytes_sent: int = 0
    connections: int = 0
    open_connections: int = 0

    def _answer_head(self, body_length: int | None, *extra: str) -> bytes:
        lines = [f"HTTP/1.1 {self.status}", "Content-Type: application/json", "Connection: close", *extra]
        if body_length is not None:
            lines.append(f"Content-Length: {body_length}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open_connections += 1
        try:
            with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
                await reader.readuntil(b"\r\n\r\n")  # the request's head; GETs have no body
                await getattr(self, f"_{self.behaviour}")(writer)
        finally:
            self.open_connections -= 1
            writer.close()

    async def _send(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        await writer.drain()
        self.bytes_sent += len(data)

    async def _drip(self, writer: asyncio.StreamWriter) -> None:
        body = b'{"id": 1, "username": "drip", "name": "' + b"x" * 200 + b'"}'
        for byte in self._answer_head(len(body)) + body:
            await self._send(writer, bytes([byte]))
            await asyncio.sleep(self.interval)

    async def _huge(self, writer: asyncio.StreamWriter) -> None:
        await self._send(writer, self._answer_head(self.size if self.declare_length else None) + b"[")
        chunk = b'"' + b"x" * (CHUNK - 3) + b'",'
        while self.bytes_sent < self.size:
            await self._send(writer, chunk)

    async def _gzip_bomb(self, writer: asyncio.StreamWriter) -> None:
        body = _bomb(self.size)
        await self._send(writer, self._answer_head(len(body), "Content-Encoding: gzip") + body)

    async def _nested(self, writer: asyncio.StreamWriter) -> None:
        body = b"[" * 100_000 + b"]" * 100_000
        await self._send(writer, self._answer_head(len(body)) + body)


_bombs: dict[int, bytes] = {}


def _bomb(size: int) -> bytes:
    if size not in _bombs:
        _bombs[size] = gzip.compress(b"\0" * size, compresslevel=9)
    return _bombs[size]


@contextlib.contextmanager
def serve_hostile(host: HostileHost) -> Iterator[str]:
    """Run ``host`` on 127.0.0.1 in a thread; yields its base URL (``http://127.0.0.1:PORT``)."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    address: list[str] = []
    stop = asyncio.Event()

    if host.behaviour == "gzip_bomb":
        _bomb(host.size)  # compressed before the host starts, not while the service waits for it

    async def main() -> None:
        server = await asyncio.start_server(host._serve, "127.0.0.1", 0)
        address.append(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
        started.set()
        await stop.wait()
        server.close()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:  # connections still dripping or streaming
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    if not started.wait(10):
        raise RuntimeError("the hostile host did not start")
    try:
        yield address[0]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()
