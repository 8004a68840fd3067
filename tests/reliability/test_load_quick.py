"""The load run of docs/reliability.md (``python -m bench.load``), on a budget that fits every test run.

20 clients for 5 seconds against ``python -m app serve --workers 2``, the embedded database and the
fake hosts, all real processes on loopback. No timing is asserted (a busy CI machine is slow, not
wrong); what must hold is what the full run must show: not one error of any kind, both workers alive
throughout, nothing logged as an error, and the database holding exactly what the clients' own
models say they should have left, each integration with the token that was connected.
"""

from __future__ import annotations

import pytest

from bench.load import OP_COLD, OP_CONNECT, OP_DISCONNECT, OP_INTEGRATIONS, OP_WARM, markdown, parse_args, run

pytestmark = pytest.mark.uvicorn


async def test_a_short_load_run_has_no_errors_and_leaves_exactly_what_the_clients_expect() -> None:
    report = await run(parse_args(["--quick", "--clients", "20", "--duration", "5"]))
    print(markdown(report))  # shown when the test fails

    stats = report.stats
    assert stats.requests > 0
    assert dict(stats.http_errors) == {}
    assert dict(stats.graphql_errors) == {}
    assert dict(stats.unexpected) == {}
    assert dict(stats.wrong) == {}, stats.examples
    for operation in (OP_INTEGRATIONS, OP_WARM, OP_COLD, *OP_CONNECT.values(), OP_DISCONNECT):
        assert stats.latencies[operation], f"the mix never ran {operation}"
    assert not report.workers_replaced
    assert report.server_log_errors == []
    assert report.database.ok, report.database.summary()
    assert report.database.found == report.database.expected > 0
    assert report.server_exit == 0
    assert report.ok
