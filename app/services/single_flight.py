"""Single flight: concurrent callers asking for the same thing share one piece of work.

Two requests for the repositories of one integration (two tabs, a double click, a page of
integrations in one GraphQL query and a ``node`` lookup) would otherwise each walk every page of
the host's listing. The first caller starts the work; everyone who asks for the same key while it
runs awaits the same result (or the same error).

Work may have a tail (``after``: saving the result) that callers need not wait for. The flight
stays open until the tail is done, so a caller arriving meanwhile still joins it instead of
starting the work again before the result is saved.

Work nobody waits for any more is cancelled: when the last caller gives up (its client went away, or
the server is shutting down), a walk of the host that only it wanted stops instead of running on.
One caller giving up while others wait leaves the work running for them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass
class _Flight(Generic[V]):
    result: asyncio.Future[V]
    task: asyncio.Task[None]
    waiting: int = 0  # callers awaiting the result right now


class SingleFlight(Generic[K, V]):
    """One running task per key, shared by all callers of ``run`` with that key."""

    def __init__(self) -> None:
        self._flights: dict[K, _Flight[V]] = {}

    def running(self, key: K) -> bool:
        """Whether work for ``key`` is in flight (its tail included)."""
        return key in self._flights

    async def drain(self, cancel_after: float | None = None) -> None:
        """Wait until every flight, tails included, has landed (shutdown, tests).

        ``cancel_after``: at most this long; then whatever still runs is cancelled (and awaited).
        """
        try:
            async with asyncio.timeout(cancel_after):
                while self._flights:
                    await asyncio.gather(
                        *(f.task for f in list(self._flights.values())), return_exceptions=True
                    )
        except TimeoutError:
            tasks = [f.task for f in self._flights.values()]
            logger.warning("cancelling %d shared piece(s) of work still running at shutdown", len(tasks))
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def run(
        self,
        key: K,
        work: Callable[[], Awaitable[V]],
        *,
        after: Callable[[V], Awaitable[None]] | None = None,
    ) -> V:
        """The result of ``work()``, or of the same key's work already running.

        The work runs as its own task: a caller that gives up (a cancelled request) does not cancel
        it for the others, and its result still reaches ``after``; when the last caller gives up
        before the result is there, the work is cancelled. A failure of ``after`` is logged, not
        raised: the callers already have their result.
        """
        flight = self._flights.get(key)
        if flight is None:
            result: asyncio.Future[V] = asyncio.get_running_loop().create_future()
            task = asyncio.ensure_future(self._fly(work, after, result))
            flight = _Flight(result, task)
            self._flights[key] = flight
            task.add_done_callback(lambda _: self._land(key, flight))
        flight.waiting += 1
        try:
            return await asyncio.shield(flight.result)
        finally:
            flight.waiting -= 1
            if flight.waiting == 0 and not flight.result.done():
                flight.task.cancel()  # every caller gave up: nobody wants the work any more

    @staticmethod
    async def _fly(
        work: Callable[[], Awaitable[V]],
        after: Callable[[V], Awaitable[None]] | None,
        result: asyncio.Future[V],
    ) -> None:
        try:
            value = await work()
        except Exception as exc:
            result.set_exception(exc)
            return
        except BaseException:
            result.cancel()  # cancelled (shutdown): nobody may wait forever
            raise
        result.set_result(value)
        if after is not None:
            try:
                await after(value)
            except Exception:
                logger.exception("the tail of a shared piece of work failed")

    def _land(self, key: K, flight: _Flight[V]) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]
        if flight.result.done() and not flight.result.cancelled():
            flight.result.exception()  # retrieved here too, in case every caller gave up waiting
