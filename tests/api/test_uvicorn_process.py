"""The real thing: `python -m app serve` in its own process, spoken to by a real GraphQL client."""

from __future__ import annotations

import os
import signal
import socket
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

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.uvicorn


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"server exited early: {process.stderr.read().decode() if process.stderr else ''}"
            )
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("server did not become ready")


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONGODB_", "AUTH_", "ENCRYPTION_"))}
    env |= {"DATA_DIR": str(tmp_path / "data"), "PORT": str(port), "APP_ENV": "development"}
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "serve"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, process)
        yield url, process, tmp_path / "data"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


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
