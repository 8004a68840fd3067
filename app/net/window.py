"""``PageWindow``: how many pages of one listing are in flight at once, adapting to how the host answers.

A listing starts with ``PagePolicy.first_window`` pages in flight. Every answer that comes back clean
(anything but a rate limit) opens the window by one page, so it doubles with each round of answers —
TCP's slow start — up to ``PagePolicy.max_window``. A rate-limit answer (GitHub's secondary limits:
403 or 429 with ``Retry-After``; GitLab's 429) halves it at once, as TCP does on a loss:
- once per burst: the other refusals of pages sent before that halving say the same thing again
  (a burst of seven refusals would otherwise divide the window by 128, down to one page);
- and from then on it grows by one page per window of clean answers, not one per answer: slow
  start would take it back past the host's limit within a round, so it would be refused every
  round, and a page asked again (behind all the others) would meet the widest window each time
  until its retries ran out.
When the host asks for a pause no
longer than ``PagePolicy.inline_wait_seconds`` the page is asked again after it; otherwise the
window closes for good: pages not yet sent are not sent, and the walk fails with the host's
``RateLimitedError`` (how long to wait included).

The ceiling stays within what GitHub documents: "No more than 100 concurrent requests are allowed"
(REST API, "Rate limits for the REST API", "About secondary rate limits"); its default of 40 is
also the service's per-user cap on concurrent upstream requests (``MAX_CONCURRENT_UPSTREAM_PER_USER``)
so one listing never queues behind that cap by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from app.domain.errors import RateLimitedError


@dataclass
class Ticket:
    """One page's place in the window: ``clean`` once the host answered it without throttling,
    ``throttled`` when it answered with a rate limit; ``halvings`` as the window stood when it was sent."""

    halvings: int
    clean: bool = False
    throttled: bool = False


class PageWindow:
    """The pages of one listing in flight (see the module docstring)."""

    def __init__(self, start: int, ceiling: int) -> None:
        self.ceiling = max(1, ceiling)
        self.limit = max(1, min(start, self.ceiling))
        self.in_flight = 0
        self.peak = 0  # the most pages that were in flight at once (tests, benchmarks)
        self.halvings = 0
        self._slow_start = True  # until the first rate limit
        self._clean_since_growth = 0
        self._changed = asyncio.Condition()
        self._closed: RateLimitedError | None = None

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[Ticket]:
        """Wait for room in the window and hold it for one request; raises once the window closed."""
        async with self._changed:
            await self._changed.wait_for(lambda: self._closed is not None or self.in_flight < self.limit)
            if self._closed is not None:
                # A copy per page: one exception object raised in many tasks would pile up tracebacks.
                raise RateLimitedError(self._closed.message, self._closed.retry_after_seconds)
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        ticket = Ticket(self.halvings)
        try:
            yield ticket
        finally:
            async with self._changed:
                self.in_flight -= 1
                if ticket.clean:
                    self._grow()
                elif ticket.throttled and ticket.halvings == self.halvings:
                    self.limit = max(1, self.limit // 2)  # before anyone waiting sees the room
                    self.halvings += 1
                    self._slow_start = False
                    self._clean_since_growth = 0
                self._changed.notify_all()

    def _grow(self) -> None:
        if not self._slow_start:
            self._clean_since_growth += 1
            if self._clean_since_growth < self.limit:
                return
            self._clean_since_growth = 0
        self.limit = min(self.ceiling, self.limit + 1)

    async def close(self, error: RateLimitedError) -> None:
        """The host asked for a longer pause than a request may wait: send nothing more."""
        async with self._changed:
            self._closed = error
            self._changed.notify_all()


__all__ = ["PageWindow", "Ticket"]
