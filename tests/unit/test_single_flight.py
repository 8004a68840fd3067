"""Single flight: callers of the same key share one piece of work, its result and its failure."""

from __future__ import annotations

import asyncio

import pytest

from app.services.single_flight import SingleFlight


async def test_concurrent_callers_of_one_key_share_one_run() -> None:
    flights: SingleFlight[str, int] = SingleFlight()
    runs = 0

    async def work() -> int:
        nonlocal runs
        runs += 1
        await asyncio.sleep(0.02)
        return 42

    results = await asyncio.gather(*(flights.run("k", work) for _ in range(5)))
    assert results == [42] * 5 and runs == 1
    assert not flights.running("k")


async def test_every_caller_gets_the_failure() -> None:
    flights: SingleFlight[str, int] = SingleFlight()

    async def work() -> int:
        await asyncio.sleep(0.01)
        raise ValueError("nope")

    results = await asyncio.gather(*(flights.run("k", work) for _ in range(3)), return_exceptions=True)
    assert all(isinstance(r, ValueError) for r in results)


async def test_a_caller_that_gives_up_does_not_cancel_the_work_for_the_others() -> None:
    flights: SingleFlight[str, int] = SingleFlight()

    async def work() -> int:
        await asyncio.sleep(0.05)
        return 7

    impatient = asyncio.ensure_future(flights.run("k", work))
    patient = asyncio.ensure_future(flights.run("k", work))
    await asyncio.sleep(0.01)
    impatient.cancel()
    assert await patient == 7
    with pytest.raises(asyncio.CancelledError):
        await impatient


async def test_callers_arriving_while_the_tail_runs_join_the_same_flight() -> None:
    flights: SingleFlight[str, int] = SingleFlight()
    runs = 0
    saved = asyncio.Event()

    async def work() -> int:
        nonlocal runs
        runs += 1
        return runs

    async def save(value: int) -> None:
        await asyncio.sleep(0.03)
        saved.set()

    assert await flights.run("k", work, after=save) == 1
    assert not saved.is_set()  # the first caller did not wait for the tail
    assert await flights.run("k", work, after=save) == 1  # joined: the tail is still running
    await saved.wait()
    await asyncio.sleep(0)
    assert await flights.run("k", work, after=save) == 2
