"""The webhook run of docs/reliability.md (``python -m bench.webhooks``) on a budget that fits every test run.

200 deliveries, 20 at a time, 10% sent twice and 5% badly signed, against ``python -m app serve`` and its
database in their own processes, with the database stopped for 1.5 s in the middle. No timing is
asserted (a busy CI machine is slow, not wrong); what must hold is what the full run must show: every
good delivery stored exactly once — those answered 503 during the outage through the catch-up, which
had the fake host send them again — numbered without a gap, not one badly signed delivery stored, and
no error in the service's log.
"""

from __future__ import annotations

import pytest

from bench.webhooks import markdown, parse_args, run

pytestmark = pytest.mark.uvicorn


async def test_a_short_webhook_run_with_a_database_outage_stores_every_good_delivery_once() -> None:
    report = await run(parse_args(["--quick"]))
    print(markdown(report))  # shown when the test fails

    statuses = {status for _, status, _ in report.answers}
    assert 503 in statuses, "the outage happened while deliveries came in"
    assert {200, 401} <= statuses
    assert report.missing == set(), "every good delivery was stored"
    assert report.stored_twice == 0 and report.bad_stored == set()
    assert report.sequences == list(range(1, len(report.good) + 1))
    assert report.redeliveries > 0, "what was answered 503 came back through the catch-up"
    assert report.log_errors == []
    assert report.ok
