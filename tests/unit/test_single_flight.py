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


async def test_work_is_cancelled_when_its_last_caller_gives_up() -> None:
    flights: SingleFlight[str, int] = SingleFlight()
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def work() -> int:
        started.set()
        try:
            await asyncio.sleep(30)  # a long walk of a slow host
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return 1

    first = asyncio.ensure_future(flights.run("k", work))
    second = asyncio.ensure_future(flights.run("k", work))
    await started.wait()
    first.cancel()
    await asyncio.sleep(0.01)
    assert not cancelled.is_set()  # someone still waits
    second.cancel()
    await asyncio.wait_for(cancelled.wait(), 5)
    await flights.drain()
    assert not flights.running("k")


async def test_a_tail_still_runs_when_every_caller_has_its_result() -> None:
    flights: SingleFlight[str, int] = SingleFlight()
    saved = asyncio.Event()

    async def save(value: int) -> None:
        await asyncio.sleep(0.02)
        saved.set()

    async def work() -> int:
        return 3

    assert await flights.run("k", work, after=save) == 3
    await asyncio.wait_for(saved.wait(), 5)


async def test_drain_with_a_timeout_cancels_what_still_runs() -> None:
    flights: SingleFlight[str, int] = SingleFlight()
    started = asyncio.Event()

    async def work() -> int:
        started.set()
        await asyncio.sleep(30)
        return 1

    async def patient_caller() -> None:
        with pytest.raises(asyncio.CancelledError):
            await flights.run("k", work)

    caller = asyncio.ensure_future(patient_caller())
    await started.wait()
    await flights.drain(cancel_after=0.05)
    assert not flights.running("k")
    await asyncio.wait_for(caller, 5)
