"""Per-request accounting of upstream work: who the request is for, and how much it asked of Git hosts.

``RequestLogMiddleware`` starts an account for each HTTP request it serves (``start_upstream_count``);
the caller's authentication names its user (``attribute_to``). The account is one mutable object in a
context variable, so the tasks a request spawns (DataLoader batches, a shared listing) copy the
variable and still add to the same account. ``HostHTTP`` counts every attempt in it (the request's
log line reports the count, tests assert on it) and takes a slot of the user's ``ConcurrencyCap``
for each request it sends.

The budget of work a request may *start* is estimated before it runs (``app.graphql.cost``); this
module bounds what runs at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol


@dataclass
class UpstreamAccount:
    """One request's upstream requests so far, and the user they are made for (None until known)."""

    count: int = 0
    user: str | None = None


_account: contextvars.ContextVar[UpstreamAccount | None] = contextvars.ContextVar(
    "upstream_account", default=None
)


def start_upstream_count() -> UpstreamAccount:
    """Start an account for the current task and those it spawns."""
    account = UpstreamAccount()
    _account.set(account)
    return account


def attribute_to(user: str) -> None:
    """The current request acts for ``user``: its upstream requests count against the user's cap."""
    account = _account.get()
    if account is not None:
        account.user = user


def count_upstream_request() -> None:
    """One more upstream request for the current request, if one is being counted."""
    account = _account.get()
    if account is not None:
        account.count += 1


class UserBusyError(Exception):
    """The user's requests in flight stayed at the cap for as long as a request may wait."""


@dataclass
class _UserSlots:
    slots: asyncio.Semaphore
    holders: int = 0  # requests holding or waiting for a slot: the entry goes when none are left
    held: int = 0


class ConcurrencyCap:
    """At most ``per_user`` upstream requests of one user in flight in this process.

    GitHub documents a limit of 100 concurrent requests per user (its secondary rate limit) and
    answers more with 403s for everyone on the token; one GraphQL request over many integrations could
    otherwise start hundreds. A request that cannot get a slot within ``wait_seconds`` fails
    (``UserBusyError``) instead of queueing without end. Requests of no known user (work outside a
    request) are not capped. Entries exist only while a user has requests in flight.
    """

    def __init__(self, per_user: int, wait_seconds: float) -> None:
        self.per_user = per_user
        self._wait_seconds = wait_seconds
        self._users: dict[str, _UserSlots] = {}

    def in_flight(self, user: str) -> int:
        """How many slots ``user`` holds right now (tests, metrics)."""
        entry = self._users.get(user)
        return 0 if entry is None else entry.held

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the current user's slots for the duration of the block."""
        account = _account.get()
        user = account.user if account is not None else None
        if user is None:
            yield
            return
        entry = self._users.get(user)
        if entry is None:
            entry = self._users[user] = _UserSlots(asyncio.Semaphore(self.per_user))
        entry.holders += 1
        try:
            try:
                async with asyncio.timeout(self._wait_seconds):
                    await entry.slots.acquire()
            except TimeoutError:
                raise UserBusyError(user) from None
            entry.held += 1
            try:
                yield
            finally:
                entry.held -= 1
                entry.slots.release()
        finally:
            entry.holders -= 1
            if entry.holders == 0 and self._users.get(user) is entry:
                del self._users[user]


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
