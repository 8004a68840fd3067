"""What tests and benchmarks (``bench/``) share to run the service and its surroundings, all on loopback.

In process:
- ``running_app(settings, seams)``: ``create_app`` with its lifespan running, as an ASGI app whose
  requests carry the lifespan state (``request.state.services``) as a real server would give them;
  ``.services`` is what the lifespan built (to wait for background work, or to read its database).

Processes:
- ``serve(env)``: ``python -m app serve`` with exactly ``env``, until it answers ``/readyz``.
- ``fake_host_process(kind, world, workdir)``: ``python -m tests.fakes`` seeded with ``world``.
- ``free_port``, ``stop_process``, ``children_of``, ``command_line``, ``wait_until_ready``.

The embedded database for a whole run is ``app.storage.mongo.EmbeddedMongo(":memory:")``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
from starlette.types import Receive, Scope, Send

from app.composition import Seams, Services
from app.main import create_app
from app.settings.model import Settings

ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = "127.0.0.1"


# --- in process ---------------------------------------------------------------------------------------


class ServedApp:
    """The app with its lifespan running: an ASGI app whose requests carry the lifespan state."""

    def __init__(self, app: Any, state: Mapping[str, Any]) -> None:
        self.app = app
        self.state = dict(state)

    @property
    def services(self) -> Services:
        services: Services = self.state["services"]
        return services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            # What uvicorn does: every request gets a shallow copy of the lifespan's state.
            scope = {**scope, "state": dict(self.state)}
        await self.app(scope, receive, send)


@contextlib.asynccontextmanager
async def running_app(settings: Settings, seams: Seams | None = None) -> AsyncIterator[ServedApp]:
    app = create_app(settings, seams)
    async with app.router.lifespan_context(app) as state:
        yield ServedApp(app, state or {})


async def settle(app: ServedApp) -> None:
    """Wait until the app's shared listings and branch reads have landed, their saves included."""
    await app.services.catalog.drain()
    await app.services.branches.drain()


# --- processes ----------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def stop_process(process: subprocess.Popen[Any], sig: int = signal.SIGTERM, timeout: float = 30) -> int:
    """Ask ``process`` to stop with ``sig``; kill it when it has not after ``timeout``. Its exit status."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    return int(process.returncode)


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
    return sorted(found)


def command_line(pid: int) -> list[str]:
    try:
        return (Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0"))[:-1]
    except OSError:
        return []


def wait_until_ready(url: str, process: subprocess.Popen[Any], timeout: float = 60) -> None:
    """Until ``url/readyz`` answers 200; fails with what the process wrote when it exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stderr.read() if process.stderr else b""
            text = output.decode(errors="replace") if isinstance(output, bytes) else str(output)
            raise AssertionError(f"server exited early: {text}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("server did not become ready")


@dataclass
class ServedProcess:
    """``python -m app serve`` running on ``url``."""

    process: subprocess.Popen[bytes]
    url: str
    port: int


@contextlib.contextmanager
def serve(
    env: Mapping[str, str],
    *,
    port: int | None = None,
    args: tuple[str, ...] = (),
    stdout: int | IO[bytes] | None = subprocess.DEVNULL,
    stderr: int | IO[bytes] | None = subprocess.PIPE,
    wait: bool = True,
    timeout: float = 60,
    new_session: bool = False,
) -> Iterator[ServedProcess]:
    """``python -m app serve`` with exactly ``env`` (plus ``PORT``), stopped (SIGTERM, then kill) on exit.

    ``wait``: return once ``/readyz`` answers (several workers: the caller waits in its own way).
    """
    port = port or free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", *args],
        cwd=ROOT,
        env={**env, "PORT": str(port)},
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        start_new_session=new_session,
    )
    url = f"http://{LOOPBACK}:{port}"
    try:
        if wait:
            wait_until_ready(url, process, timeout)
        yield ServedProcess(process, url, port)
    finally:
        stop_process(process, timeout=40)


@contextlib.contextmanager
def fake_host_process(
    kind: str, world: dict[str, Any], workdir: Path, *, delay: float = 0.0
) -> Iterator[tuple[str, int]]:
    """``python -m tests.fakes`` seeded with ``world``, in its own process; yields its base URL and pid."""
    seed = workdir / f"{kind}.json"
    seed.write_text(json.dumps(world))
    command = [sys.executable, "-m", "tests.fakes", kind, "--port", "0", "--seed-file", str(seed)]
    if delay:
        command += ["--delay", str(delay)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if not line.startswith(f"http://{LOOPBACK}:"):
            raise RuntimeError(f"the fake {kind} did not start: {line!r}")
        yield line, process.pid
    finally:
        stop_process(process, timeout=15)


def service_environment(**values: str) -> dict[str, str]:
    """This process's environment without any of the service's own variables, plus ``values``."""
    own = (
        "MONGODB_",
        "AUTH_",
        "ENCRYPTION_",
        "GITHUB_",
        "GITLAB_",
        "GIT_",
        "PROMETHEUS_",
        "prometheus_",
        "OTEL_",
    )
    return {k: v for k, v in os.environ.items() if not k.startswith(own)} | values
