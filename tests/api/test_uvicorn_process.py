"""The real thing: `python -m app serve` in its own process, spoken to by a real GraphQL client."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from gql import Client, gql
from gql.transport.exceptions import TransportQueryError
from gql.transport.httpx import HTTPXAsyncTransport

from tests.harness import ROOT, children_of, serve, service_environment

pytestmark = pytest.mark.uvicorn
# Linux's shortest delayed ACK is 40 ms.
DELAYED_ACK_SECONDS = 0.04


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    env = service_environment(DATA_DIR=str(tmp_path / "data"), APP_ENV="development")
    with serve(env) as served:
        yield served.url, served.process, tmp_path / "data"


def dev_token(data_dir: Path, user: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTH_", "ENCRYPTION_"))}
    result = subprocess.run(
        [sys.executable, "-m", "app", "dev-token", "--user", user],
        cwd=ROOT, env=env | {"DATA_DIR": str(data_dir)}, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return result.stdout.strip()


async def test_served_api_answers_a_real_graphql_client_and_stops_cleanly(
    server: tuple[str, subprocess.Popen[bytes], Path],
) -> None:
    url, process, data_dir = server
    token = dev_token(data_dir, "alice")
    transport = HTTPXAsyncTransport(url=f"{url}/graphql", headers={"Authorization": f"Bearer {token}"})
    async with Client(transport=transport) as session:
        result = await session.execute(gql("{ integrations { id provider } }"))
    assert result == {"integrations": []}

    anonymous = HTTPXAsyncTransport(url=f"{url}/graphql")
    async with Client(transport=anonymous) as session:
        with pytest.raises(TransportQueryError) as caught:
            await session.execute(gql("{ integrations { id } }"))
    assert caught.value.errors is not None
    assert caught.value.errors[0]["extensions"]["code"] == "UNAUTHENTICATED"

    database_children = children_of(process.pid)
    assert database_children, "the embedded database should run as a child process"
    process.send_signal(signal.SIGINT)  # what Ctrl-C sends
    assert process.wait(timeout=30) == 0
    time.sleep(0.2)
    for pid in database_children:
        assert (
            not Path(f"/proc/{pid}").exists() or "Z" in (Path(f"/proc/{pid}/stat").read_text().split()[2])
        ), "embedded database left running"
    assert (data_dir / "db").is_dir(), "embedded database files live under DATA_DIR"


def test_several_workers_answer_small_requests_without_waiting_for_delayed_acks(tmp_path: Path) -> None:
    """``serve --workers 2`` turns Nagle's algorithm off on the connections its workers accept.

    uvicorn's own listening socket for several workers is created with protocol 0, and asyncio sets
    TCP_NODELAY only on accepted sockets whose protocol says TCP: each response, written as headers then
    body, then waited for the client's delayed ACK (about 40 ms on Linux) — on every request. Counted,
    not timed: with Nagle on, every one of these requests takes 40 ms or more; without it a loaded
    machine still answers most of them in a few.
    """
    env = service_environment(DATA_DIR=str(tmp_path / "data"), APP_ENV="development")
    with serve(env, args=("--workers", "2")) as served, httpx.Client(base_url=served.url, timeout=10) as http:
        http.get("/healthz")  # opens the keep-alive connection every request below reuses
        slow = 0
        for _ in range(20):
            started = time.perf_counter()
            assert http.get("/healthz").status_code == 200
            slow += time.perf_counter() - started >= DELAYED_ACK_SECONDS
    assert slow < 10, f"{slow} of 20 requests waited for a delayed ACK"
