"""MongoDB through PyMongo's asyncio API, and the embedded SecantusDB server for development and tests.

Only ``storage/`` imports pymongo. Database failures that may pass (the server is down, stepping
down, a network hiccup) are translated into ``ServiceUnavailableError`` by ``unavailable_on_failure``
so callers see one clear public error; anything else is a bug and stays internal.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from pymongo import ASCENDING, AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import (
    ConnectionFailure,
    ExecutionTimeout,
    OperationFailure,
    PyMongoError,
    WriteConcernError,
)

from app.domain.errors import ServiceUnavailableError

log = logging.getLogger(__name__)

Document = dict[str, Any]
P = ParamSpec("P")
T = TypeVar("T")

# Server error codes that mean "not now" rather than "this is wrong".
_TRANSIENT_CODES = frozenset({6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436})


def is_transient(exc: PyMongoError) -> bool:
    if isinstance(exc, ConnectionFailure | ExecutionTimeout | WriteConcernError):
        return True
    return isinstance(exc, OperationFailure) and exc.code in _TRANSIENT_CODES


def unavailable_on_failure(func: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Turn a transient database failure inside ``func`` into ``ServiceUnavailableError``."""

    @wraps(func)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await func(*args, **kwargs)
        except PyMongoError as exc:
            if is_transient(exc):
                log.warning("database unavailable: %s", type(exc).__name__)
                raise ServiceUnavailableError() from exc
            raise

    return wrapper


class Database:
    """One client for the process; collections are reached through the repositories."""

    def __init__(self, uri: str, name: str, *, timeout_ms: int = 5000) -> None:
        self.client: AsyncMongoClient[Document] = AsyncMongoClient(
            uri,
            serverSelectionTimeoutMS=timeout_ms,
            connectTimeoutMS=timeout_ms,
            socketTimeoutMS=max(timeout_ms * 4, 20_000),
            tz_aware=True,
            appname="git-integrations",
        )
        self.db: AsyncDatabase[Document] = self.client[name]

    async def ping(self) -> bool:
        try:
            await self.client.admin.command("ping")
        except PyMongoError:
            return False
        return True

    @unavailable_on_failure
    async def ensure_indexes(self) -> None:
        integrations = self.db["integrations"]
        await integrations.create_index(
            [("owner", ASCENDING), ("provider", ASCENDING), ("host", ASCENDING), ("accountId", ASCENDING)],
            unique=True,
            name="owner_account_unique",
        )
        await integrations.create_index(
            [("owner", ASCENDING), ("createdAt", ASCENDING)], name="owner_created"
        )
        states = self.db["oauth_states"]
        await states.create_index([("state", ASCENDING)], unique=True, name="state_unique")
        # Clean-up only: validity is checked in the query, the TTL monitor may run late.
        await states.create_index([("expiresAt", ASCENDING)], expireAfterSeconds=3600, name="expired_cleanup")
        cache = self.db["repository_cache"]
        await cache.create_index(
            [("integrationId", ASCENDING), ("key", ASCENDING)], unique=True, name="entry_unique"
        )
        # Clean-up of listings nobody asked for in a while (see storage.repository_cache).
        await cache.create_index([("expireAt", ASCENDING)], expireAfterSeconds=0, name="unused_cleanup")

    async def close(self) -> None:
        await self.client.close()


@contextlib.asynccontextmanager
async def open_database(uri: str, name: str) -> AsyncIterator[Database]:
    database = Database(uri, name)
    try:
        await database.ensure_indexes()
        yield database
    finally:
        await database.close()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    # Linux: if this process is killed outright, the database child gets SIGTERM instead of lingering.
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class EmbeddedMongo:
    """SecantusDB as a child process on a free loopback port.

    ``storage`` is a directory (data survives restarts) or ``":memory:"`` (tests). The child runs in
    its own session so a Ctrl-C in the terminal reaches only this process, which then stops the
    child cleanly in ``stop()``; on Linux the child also dies if this process is killed.
    """

    def __init__(self, storage: str | Path, *, startup_timeout: float = 30.0) -> None:
        self.storage = str(storage)
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.port: int | None = None

    @property
    def uri(self) -> str:
        assert self.port is not None, "EmbeddedMongo is not started"
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    def start(self, *, test_commands: bool = False) -> str:
        if self.storage != ":memory:":
            Path(self.storage).mkdir(parents=True, exist_ok=True)
        for _ in range(3):  # the free port may be taken between choosing and binding it
            port = _free_port()
            args = [
                sys.executable, "-m", "secantus", "--host", "127.0.0.1", "--port", str(port),
                "--storage-path", self.storage, "--log-level", "WARNING",
            ]  # fmt: skip
            if test_commands:
                args.append("--enable-test-commands")
            process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
            if self._wait_until_listening(process, port):
                self.process, self.port = process, port
                log.info("embedded database started", extra={"port": port, "storage": self.storage})
                return self.uri
            self._terminate(process)
        raise RuntimeError(f"the embedded database (SecantusDB) did not start; storage {self.storage}")

    def _wait_until_listening(self, process: subprocess.Popen[bytes], port: int) -> bool:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                return False
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        if self.process is not None:
            self._terminate(self.process)
            log.info("embedded database stopped", extra={"port": self.port})
            self.process = None

    @staticmethod
    def _terminate(process: subprocess.Popen[bytes]) -> None:
        if process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def __enter__(self) -> EmbeddedMongo:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def embedded_storage_path(data_dir: Path) -> Path:
    return data_dir / "db"


__all__ = ["Database", "Document", "EmbeddedMongo", "embedded_storage_path", "open_database"]
