"""What both fake hosts share to deliver webhooks: an outbox, the attempts it made, and who sends them.

The fakes never send by themselves from inside a request (their handlers run in whatever thread and
event loop serves them). A delivery — a push, a ping on creation, a redelivery the service asked for —
is put in the fake's ``outbox``; the test sends what is there with its own client, on its own loop:

    await fake.outbox.flush(client)              # send everything queued now, and what that queues
    async with fake.outbox.pumping(client):      # send in the background as deliveries are queued
        ...

``client`` is an ``httpx.AsyncClient`` that reaches the service (``httpx.ASGITransport`` in process, or
plain HTTP to a served process). Each attempt is recorded (status 0: no answer — a timeout or a refused
connection, as GitHub logs it) and handed back to the host (``Outgoing.record``), which keeps it in the
hook's delivery log the way it shows it in its API.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass(frozen=True)
class Attempt:
    url: str
    delivery_id: str
    status: int  # 0: no answer
    seconds: float
    redelivery: bool


@dataclass
class Outgoing:
    """One delivery attempt to make: where, what, and what to do with the outcome."""

    url: str
    headers: dict[str, str]
    body: bytes
    delivery_id: str
    redelivery: bool = False
    record: Callable[[Attempt], None] = field(default=lambda attempt: None)


class Outbox:
    """Deliveries waiting to be sent, filled from any thread, sent by the test's own client."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: deque[Outgoing] = deque()
        self._wake: Callable[[], None] | None = None
        self.attempts: list[Attempt] = []
        self.timeout = 10.0  # GitHub gives a receiver 10 seconds

    def put(self, outgoing: Outgoing) -> None:
        with self._lock:
            self._queue.append(outgoing)
            wake = self._wake
        if wake is not None:
            wake()

    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def take_all(self) -> list[Outgoing]:
        """Everything queued, taken out of the queue (to send it in one's own way, or not at all)."""
        with self._lock:
            taken = list(self._queue)
            self._queue.clear()
        return taken

    def _take(self) -> Outgoing | None:
        with self._lock:
            return self._queue.popleft() if self._queue else None

    async def send(self, client: httpx.AsyncClient, outgoing: Outgoing) -> Attempt:
        started = time.perf_counter()
        try:
            response = await client.post(
                outgoing.url, content=outgoing.body, headers=outgoing.headers, timeout=self.timeout
            )
            status = response.status_code
        except httpx.HTTPError:
            status = 0
        attempt = Attempt(
            outgoing.url, outgoing.delivery_id, status, time.perf_counter() - started, outgoing.redelivery
        )
        with self._lock:
            self.attempts.append(attempt)
        outgoing.record(attempt)
        return attempt

    async def flush(self, client: httpx.AsyncClient) -> list[Attempt]:
        """Send everything queued, one after another, until the queue is empty; the attempts made."""
        made = []
        while (outgoing := self._take()) is not None:
            made.append(await self.send(client, outgoing))
        return made

    @contextlib.asynccontextmanager
    async def pumping(self, client: httpx.AsyncClient, *, concurrency: int = 4) -> AsyncIterator[None]:
        """Send deliveries in the background as they are queued (woken from any thread), until the block
        ends; what is queued at the end is sent before leaving."""
        loop = asyncio.get_running_loop()
        ready = asyncio.Event()
        stopping = False
        with self._lock:
            self._wake = lambda: loop.call_soon_threadsafe(ready.set)
            if self._queue:
                ready.set()

        async def worker() -> None:
            while True:
                outgoing = self._take()
                if outgoing is not None:
                    await self.send(client, outgoing)
                    continue
                if stopping:
                    return
                ready.clear()
                if self.pending():
                    continue
                await ready.wait()

        workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
        try:
            yield
        finally:
            stopping = True
            with self._lock:
                self._wake = None
            ready.set()
            await asyncio.gather(*workers)


def header_map(headers: dict[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in headers.items()}
