"""Per-request accounting of upstream work: how many requests to Git hosts the current request made.

``RequestLogMiddleware`` starts a count for each HTTP request it serves; ``HostHTTP`` adds one for
every attempt, in whichever task the request spawned (context variables are copied into tasks). The
request's log line reports it, and tests assert on it. The per-request upstream budget of the
security work belongs here: the same context, a limit instead of a count.
"""

from __future__ import annotations

import contextvars
from typing import Protocol

_upstream_requests: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar(
    "upstream_requests", default=None
)


def start_upstream_count() -> list[int]:
    """Start counting upstream requests for the current task and those it spawns; ``[count]``."""
    counter = [0]
    _upstream_requests.set(counter)
    return counter


def count_upstream_request() -> None:
    """One more upstream request for the current request, if one is being counted."""
    counter = _upstream_requests.get()
    if counter is not None:
        counter[0] += 1


class UpstreamObserver(Protocol):
    """Who is told about every attempt at a request to a Git host (``app.metrics.Metrics``)."""

    def upstream_request(
        self,
        host: str,
        url: str,
        status: int | None,
        seconds: float,
        rate_limit_remaining: str | None = None,
    ) -> None:
        """``status`` None when no answer came (timeout, refused connection, the guard refused)."""
