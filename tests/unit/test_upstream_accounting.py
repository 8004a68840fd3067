"""The per-request account and the per-user cap on upstream requests in flight (app/net/accounting.py)."""

from __future__ import annotations

import asyncio
import contextvars

import pytest

from app.net.accounting import (
    ConcurrencyCap,
    UserBusyError,
    attribute_to,
    count_upstream_request,
    start_upstream_count,
)


def in_request(user: str | None) -> contextvars.Context:
    """A context like a request's: an account, attributed to ``user`` once known."""
    context = contextvars.copy_context()

    def start() -> None:
        start_upstream_count()
        if user is not None:
            attribute_to(user)

    context.run(start)
    return context


async def test_tasks_a_request_spawns_count_in_its_account() -> None:
    async def request() -> int:
        account = start_upstream_count()

        async def page() -> None:
            count_upstream_request()

        await asyncio.gather(*(asyncio.create_task(page()) for _ in range(3)))
        attribute_to("alice")  # known only once the caller is authenticated: still the same account
        return account.count if account.user == "alice" else -1

    assert await asyncio.create_task(request()) == 3


async def test_one_user_never_has_more_requests_in_flight_than_the_cap() -> None:
    cap = ConcurrencyCap(per_user=3, wait_seconds=5)
    in_flight = most = 0

    async def upstream_request() -> None:
        nonlocal in_flight, most
        async with cap.slot():
            in_flight += 1
            most = max(most, in_flight)
            await asyncio.sleep(0.01)
            in_flight -= 1

    context = in_request("alice")
    await asyncio.gather(*(asyncio.create_task(upstream_request(), context=context) for _ in range(20)))

    assert most == 3
    assert cap.in_flight("alice") == 0


async def test_a_request_that_cannot_get_a_slot_in_time_fails_and_other_users_are_not_held_up() -> None:
    cap = ConcurrencyCap(per_user=1, wait_seconds=0.1)
    release = asyncio.Event()

    async def hold() -> None:
        async with cap.slot():
            await release.wait()

    async def one() -> str:
        async with cap.slot():
            return "done"

    holder = asyncio.create_task(hold(), context=in_request("alice"))
    await asyncio.sleep(0.01)
    assert cap.in_flight("alice") == 1

    with pytest.raises(UserBusyError):
        await asyncio.create_task(one(), context=in_request("alice"))
    assert await asyncio.create_task(one(), context=in_request("bob")) == "done"

    release.set()
    await holder
    assert await asyncio.create_task(one(), context=in_request("alice")) == "done"


async def test_work_outside_a_request_or_before_its_user_is_known_is_not_capped() -> None:
    cap = ConcurrencyCap(per_user=1, wait_seconds=0.05)
    release = asyncio.Event()

    async def hold() -> None:
        async with cap.slot():
            await release.wait()

    holders = [asyncio.create_task(hold(), context=in_request(None)) for _ in range(5)]
    await asyncio.sleep(0.01)
    release.set()
    await asyncio.gather(*holders)
