"""Real processes to kill, and the loop that proves acknowledged writes survive the kill.

No failure here is simulated: ``DatabaseProcess`` is the embedded SecantusDB on disk in its own process,
``ServiceProcess`` is ``python -m app serve``, ``app_command`` any other ``python -m app`` command; each
is stopped with a real signal (``SIGKILL``: nothing runs after it, no file is closed, no buffer flushed).

``acknowledged_writes_survive`` drives the proof. Several writers write one after another through the
real API; after ``acknowledged_per_round`` writes were acknowledged, ``kill`` runs while writes are in
flight, ``recover`` starts again what was killed (on the same files), and every write acknowledged before
or during the kill must be found by ``stored``. A write that failed was not acknowledged and may be
either stored or not (the user saw an error and tries again).

A kill test for another kind of write (webhook deliveries, say) needs only its own ``write`` and ``stored``::

    async def test_acknowledged_deliveries_survive_sigkill_of_the_database(tmp_path: Path) -> None:
        with DatabaseProcess(tmp_path / "db") as database, ServiceProcess(
            service_env(tmp_path, MONGODB_URI=database.uri), tmp_path / "serve.log"
        ) as service:
            async def deliver(n: int) -> str | None:     # the delivery id once the service answered 2xx
                ...
            async def stored() -> set[str]:                # the delivery ids the API (or the database) has
                ...
            report = await acknowledged_writes_survive(
                write=deliver, stored=stored, kill=database.kill,
                recover=lambda: (database.restart(), service.wait_ready()),
            )
        assert report.acknowledged and not report.lost, report

``tests/reliability/test_process_kills.py`` has the connects, the key rotation and the token refresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from app.security.auth import issue_development_token
from app.settings.model import Settings
from app.settings.values import Secret
from app.storage.mongo import EmbeddedMongo
from tests.conftest import JWT_SECRET, KEY_A
from tests.harness import ROOT, children_of, command_line, free_port, service_environment


def is_gone(pid: int) -> bool:
    """The process has exited (a zombie nobody reaped yet counts as gone: it holds no files)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


def wait_until_gone(pid: int, timeout: float = 30) -> float:
    """Wait for ``pid`` to exit; how long it took."""
    started = time.monotonic()
    while not is_gone(pid):
        assert time.monotonic() - started < timeout, f"process {pid} still running after {timeout} s"
        time.sleep(0.01)
    return time.monotonic() - started


def embedded_database(parent: int, timeout: float = 30) -> tuple[int, str]:
    """The embedded database child that ``parent`` started, once it runs SecantusDB: its pid and URI."""
    deadline = time.monotonic() + timeout
    while True:
        for pid in children_of(parent):
            # Right after fork the child still shows its parent's command line: wait for the exec.
            arguments = command_line(pid)
            if "secantus" in arguments and "--port" in arguments:
                port = arguments[arguments.index("--port") + 1]
                return pid, f"mongodb://127.0.0.1:{port}/?directConnection=true"
        assert time.monotonic() < deadline, f"process {parent} started no embedded database"
        time.sleep(0.01)


def service_env(data_dir: Path, **variables: str) -> dict[str, str]:
    """The environment of a ``python -m app`` child (``tests.harness.service_environment``) with the
    tests' JWT secret and encryption key, ``DATA_DIR`` and ``variables``."""
    defaults = {
        "DATA_DIR": str(data_dir),
        "AUTH_JWT_SECRET": JWT_SECRET,
        "ENCRYPTION_KEYS": f"a:{KEY_A}",
        "GIT_HOST_ALLOWLIST": "127.0.0.1",
    }
    return service_environment(**(defaults | variables))


def app_command(*args: str, env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """``python -m app <args>`` started (not awaited), its output in ``log_path``."""
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "app", *args], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )


def sigkill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
    process.wait()


class DatabaseProcess:
    """The embedded database with its files in ``path``, in its own process, on a port that stays put."""

    def __init__(self, path: Path) -> None:
        self.embedded = EmbeddedMongo(path)
        self.kills = 0

    @property
    def uri(self) -> str:
        return self.embedded.uri

    def start(self) -> None:
        self.embedded.start(port=self.embedded.port)

    def kill(self) -> None:
        """SIGKILL: whatever the server had not written to disk is gone."""
        assert self.embedded.process is not None, "the database is not running"
        sigkill(self.embedded.process)
        self.embedded.process = None
        self.kills += 1

    def restart(self) -> None:
        """Start again on the same files and port (clients already point there)."""
        self.start()

    def __enter__(self) -> DatabaseProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.embedded.process is not None:
            sigkill(self.embedded.process)  # its files are the test's tmp_path: no need to close them
            self.embedded.process = None


class ServiceProcess:
    """``python -m app serve`` on a fixed port, its output appended to ``log_path``.

    Without ``MONGODB_URI`` in ``env`` it starts its own embedded database under ``DATA_DIR``, a child
    process (``database_pid``); ``restart`` waits until a killed service's database child is gone, as
    the new one needs its files.
    """

    def __init__(self, env: dict[str, str], log_path: Path, *, port: int | None = None) -> None:
        self.port = port or free_port()
        self.env = env | {"PORT": str(self.port)}
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.database_pid: int | None = None
        self._database_uri: str | None = None
        self.kills = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = app_command("serve", env=self.env, log_path=self.log_path)
        self.wait_ready()
        if "MONGODB_URI" not in self.env:
            self.database_pid, self._database_uri = embedded_database(self.process.pid)

    def wait_ready(self, timeout: float = 60) -> None:
        """Until ``/readyz`` answers 200: the service runs and reaches its database."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited early:\n{self.log()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            assert time.monotonic() < deadline, f"serve did not become ready:\n{self.log()[-3000:]}"
            time.sleep(0.05)

    def database_uri(self) -> str:
        """The URI of the embedded database this service started (from the child's command line)."""
        assert self._database_uri is not None, "this service was given MONGODB_URI"
        return self._database_uri

    def kill(self) -> None:
        """SIGKILL the service only: its database child, if any, gets the parent-death signal."""
        assert self.process is not None
        sigkill(self.process)
        self.kills += 1

    def kill_with_database(self) -> None:
        """SIGKILL the service and its database child at the same moment, like the OOM killer of a container."""
        assert self.process is not None and self.database_pid is not None
        os.kill(self.database_pid, signal.SIGKILL)
        self.kill()

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM, as an orchestrator stops a container; the exit status."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def restart(self) -> None:
        if self.database_pid is not None:
            wait_until_gone(self.database_pid)
        self.start()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> ServiceProcess:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.process is not None:
            sigkill(self.process)
        if self.database_pid is not None and not is_gone(self.database_pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.database_pid, signal.SIGKILL)


class GraphQLCaller:
    """POSTs GraphQL documents to a served process as ``user`` (a JWT signed with the tests' secret)."""

    def __init__(self, http: httpx.AsyncClient, url: str, user: str = "alice") -> None:
        self.http = http
        self.url = url
        bearer = issue_development_token(Settings(auth_jwt_secret=Secret(JWT_SECRET)), user)
        self.headers = {"Authorization": f"Bearer {bearer}"}

    async def execute(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self.http.post(
            f"{self.url}/graphql", json={"query": query, "variables": variables or {}}, headers=self.headers
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


def unavailable(body: dict[str, Any]) -> bool:
    """The service said the database could not answer: a write that was not acknowledged."""
    return any(e.get("extensions", {}).get("code") == "SERVICE_UNAVAILABLE" for e in body.get("errors") or [])


@dataclass
class KillReport:
    """What ``acknowledged_writes_survive`` saw, for the assertion and for docs/reliability.md."""

    kills: int = 0
    acknowledged: list[str] = field(default_factory=list)
    acknowledged_during_kill: int = 0  # answered after the kill signal was sent
    not_acknowledged: int = 0  # failed writes: the caller saw an error
    lost: list[str] = field(default_factory=list)

    def line(self, what: str) -> str:
        return (
            f"{what}: {self.kills} kills, {len(self.acknowledged)} acknowledged writes "
            f"({self.acknowledged_during_kill} answered while the kill landed), "
            f"{self.not_acknowledged} refused, {len(self.lost)} lost"
        )


async def acknowledged_writes_survive(
    *,
    write: Callable[[int], Awaitable[str | None]],
    stored: Callable[[], Awaitable[set[str]]],
    kill: Callable[[], object],
    recover: Callable[[], object],
    rounds: int = 5,
    writers: int = 3,
    acknowledged_per_round: int = 6,
) -> KillReport:
    """Kill ``rounds`` times while ``writers`` write concurrently; check ``stored`` after each recovery.

    ``write(n)`` makes the n-th write (n counts up across rounds, so each write can be distinct) and
    returns its id when the service acknowledged it, None when the service answered with an error or
    the connection broke. ``kill`` and ``recover`` are blocking; ``recover`` runs in a thread so that
    writes in flight meanwhile keep going (they may be acknowledged by a restarted process, and then
    count like any other).
    """
    report = KillReport()
    numbers = itertools.count()
    for _ in range(rounds):
        await _kill_while_writing(report, numbers, write, kill, recover, writers, acknowledged_per_round)
        found = await stored()
        report.lost.extend(ack for ack in report.acknowledged if ack not in found and ack not in report.lost)
    return report


async def _kill_while_writing(
    report: KillReport,
    numbers: Iterator[int],
    write: Callable[[int], Awaitable[str | None]],
    kill: Callable[[], object],
    recover: Callable[[], object],
    writers: int,
    acknowledged_per_round: int,
) -> None:
    """One round: write until ``acknowledged_per_round`` more were acknowledged, kill, recover."""
    acknowledged_before = len(report.acknowledged)
    killed = asyncio.Event()
    recovery: list[asyncio.Future[object]] = []

    async def writer() -> None:
        while not killed.is_set():
            result = await write(next(numbers))
            if result is None:
                report.not_acknowledged += 1
                continue
            report.acknowledged.append(result)
            if killed.is_set():
                report.acknowledged_during_kill += 1
            elif len(report.acknowledged) - acknowledged_before >= acknowledged_per_round:
                killed.set()
                kill()  # while the other writers' requests are in flight
                report.kills += 1
                recovery.append(asyncio.ensure_future(asyncio.to_thread(recover)))

    await asyncio.gather(*(writer() for _ in range(writers)))
    await asyncio.gather(*recovery)


@contextlib.contextmanager
def database_client(uri: str) -> Iterator[Any]:
    """A plain PyMongo client to look at what is on disk (the test's own, not the service's)."""
    from pymongo import MongoClient

    client: Any = MongoClient(uri, serverSelectionTimeoutMS=10_000, tz_aware=True)
    try:
        yield client
    finally:
        client.close()
