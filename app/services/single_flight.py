"""Single flight: concurrent callers asking for the same thing share one piece of work.

Two requests for the repositories of one integration (two tabs, a double click, a page of
integrations in one GraphQL query and a ``node`` lookup) would otherwise each walk every page of
the host's listing. The first caller starts the work; everyone who asks for the same key while it
runs awaits the same result (or the same error).

Work may have a tail (``after``: saving the result) that callers need not wait for. The flight
stays open until the tail is done, so a caller arriving meanwhile still joins it instead of
starting the work again before the result is saved.
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


class SingleFlight(Generic[K, V]):
    """One running task per key, shared by all callers of ``run`` with that key."""

    def __init__(self) -> None:
        self._flights: dict[K, _Flight[V]] = {}

    def running(self, key: K) -> bool:
        """Whether work for ``key`` is in flight (its tail included)."""
        return key in self._flights

    async def drain(self) -> None:
        """Wait until every flight, tails included, has landed (shutdown, tests)."""
        while self._flights:
            await asyncio.gather(*(f.task for f in list(self._flights.values())), return_exceptions=True)

    async def run(
        self,
        key: K,
        work: Callable[[], Awaitable[V]],
        *,
        after: Callable[[V], Awaitable[None]] | None = None,
    ) -> V:
        """The result of ``work()``, or of the same key's work already running.

        The work runs as its own task: a caller that gives up (a cancelled request) does not cancel
        it for the others, and its result still reaches ``after``. A failure of ``after`` is logged,
        not raised: the callers already have their result.
        """
        flight = self._flights.get(key)
        if flight is None:
            result: asyncio.Future[V] = asyncio.get_running_loop().create_future()
            task = asyncio.ensure_future(self._fly(work, after, result))
            flight = _Flight(result, task)
            self._flights[key] = flight
            task.add_done_callback(lambda _: self._land(key, flight))
        return await asyncio.shield(flight.result)

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
