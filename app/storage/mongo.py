"""MongoDB through PyMongo's asyncio API, and the embedded SecantusDB server for development and tests.

Only ``storage/`` imports pymongo. Database failures that may pass (the server is down, stepping
down, a network hiccup) are translated into ``ServiceUnavailableError`` by ``unavailable_on_failure``
so callers see one clear public error; anything else is a bug and stays internal. Collections are
opened with a ``Durability`` (``storage.durability``): what their acknowledged writes are promised.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import logging
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from functools import wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from pymongo import ASCENDING, AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import (
    BulkWriteError,
    ConnectionFailure,
    CursorNotFound,
    ExecutionTimeout,
    OperationFailure,
    PyMongoError,
    WriteConcernError,
)
from pymongo.monitoring import CommandListener

from app.domain.errors import ServiceUnavailableError
from app.storage.durability import Durability

log = logging.getLogger(__name__)

Document = dict[str, Any]
P = ParamSpec("P")
T = TypeVar("T")

# Server error codes that mean "not now" rather than "this is wrong": the SDAM "not primary",
# "node is recovering" and "shutting down" codes, and the retryable network and time-limit codes.
_TRANSIENT_CODES = frozenset(
    {
        6,  # HostUnreachable
        7,  # HostNotFound
        50,  # MaxTimeMSExpired
        89,  # NetworkTimeout
        91,  # ShutdownInProgress
        134,  # ReadConcernMajorityNotAvailableYet
        189,  # PrimarySteppedDown
        202,  # NetworkInterfaceExceededTimeLimit
        262,  # ExceededTimeLimit
        9001,  # SocketException
        10058,  # LegacyNotPrimary
        10107,  # NotWritablePrimary
        11600,  # InterruptedAtShutdown
        11602,  # InterruptedDueToReplStateChange
        13435,  # NotPrimaryNoSecondaryOk
        13436,  # NotPrimaryOrSecondary
    }
)
# Labels the server or the driver puts on errors that the same operation may get past later.
_TRANSIENT_LABELS = (
    "RetryableWriteError",
    "TransientTransactionError",
    "SystemOverloadedError",
    "RetryableError",
)


def is_transient(exc: PyMongoError) -> bool:
    """Whether ``exc`` means "the database cannot answer right now" rather than "this is a bug".

    Every ``ConnectionFailure`` (``AutoReconnect``, ``NotPrimaryError``, ``NetworkTimeout``,
    ``ServerSelectionTimeoutError``, ``WaitQueueTimeoutError``), time limits (server side, and the
    driver's own timeouts), write concern failures, a cursor the server forgot (it restarted), the
    codes and labels above, and a bulk write that failed for one of these reasons.
    """
    if isinstance(exc, ConnectionFailure | ExecutionTimeout | WriteConcernError | CursorNotFound):
        return True
    if exc.timeout or any(exc.has_error_label(label) for label in _TRANSIENT_LABELS):
        return True
    if isinstance(exc, BulkWriteError):
        details = exc.details
        return bool(details.get("writeConcernErrors")) or any(
            error.get("code") in _TRANSIENT_CODES for error in details.get("writeErrors") or []
        )
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


# How long an operation waits for a usable server before the request fails with
# SERVICE_UNAVAILABLE: short, because a caller is waiting (and /readyz must answer within the
# readiness probe's 3 seconds); the client simply asks again.
SERVER_SELECTION_TIMEOUT_MS = 2000


class Database:
    """One client for the process; collections are reached through the repositories.

    Each repository opens its collection with ``collection(name, durability)``. The client's default
    write concern is ``MUST_SURVIVE`` as well, so that whatever is written without a level (index
    builds, a collection reached through ``db`` directly) is durable rather than quietly cheaper.

    The server is monitored by polling (``serverMonitoringMode="poll"``). After a "not primary" or
    "shutting down" answer the driver marks the server Unknown until its monitor looks again; a
    streaming monitor looks only when its awaitable ``hello`` returns (up to
    ``heartbeatFrequencyMS``, 10 s), so every request in between would fail although the server
    answers again. A polling monitor checks at once when asked (at most every 0.5 s).
    """

    def __init__(
        self,
        uri: str,
        name: str,
        *,
        timeout_ms: int = SERVER_SELECTION_TIMEOUT_MS,
        event_listeners: Sequence[CommandListener] = (),
    ) -> None:
        must_survive = Durability.MUST_SURVIVE.write_concern.document
        self.client: AsyncMongoClient[Document] = AsyncMongoClient(
            uri,
            serverSelectionTimeoutMS=timeout_ms,
            connectTimeoutMS=max(timeout_ms, 5000),
            # Also what bounds a write waiting for a majority that cannot be reached (a replica set
            # with most members down): it then fails as SERVICE_UNAVAILABLE, unacknowledged.
            socketTimeoutMS=20_000,
            serverMonitoringMode="poll",
            tz_aware=True,
            appname="git-integrations",
            w=must_survive["w"],
            journal=must_survive["j"],
            event_listeners=list(event_listeners),
        )
        self.db: AsyncDatabase[Document] = self.client[name]

    def collection(self, name: str, durability: Durability) -> AsyncCollection[Document]:
        """The collection ``name``, its writes acknowledged only once they are as safe as ``durability``."""
        return self.db.get_collection(name, write_concern=durability.write_concern)

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
        # Who else connected this account on this host (a disconnect must not revoke their access).
        await integrations.create_index(
            [("provider", ASCENDING), ("host", ASCENDING), ("accountId", ASCENDING)], name="account"
        )
        # MAX_INTEGRATIONS_PER_USER under concurrent connects: one document per slot (storage.integration_slots).
        await integrations.create_index(
            [("owner", ASCENDING), ("slot", ASCENDING)],
            unique=True,
            partialFilterExpression={"slot": {"$exists": True}},
            name="owner_slot_unique",
        )
        states = self.db["oauth_states"]
        await states.create_index([("state", ASCENDING)], unique=True, name="state_unique")
        # Clean-up only: validity is checked in the query, the TTL monitor may run late.
        await states.create_index([("expiresAt", ASCENDING)], expireAfterSeconds=3600, name="expired_cleanup")
        # Codes from GitHub App installation redirects, never to be exchanged (storage.oauth_states).
        await states.create_index([("installationCodes", ASCENDING)], sparse=True, name="installation_codes")
        cache = self.db["repository_cache"]
        await cache.create_index(
            [("integrationId", ASCENDING), ("key", ASCENDING)], unique=True, name="entry_unique"
        )
        # Clean-up of listings nobody asked for in a while (see storage.listings).
        await cache.create_index([("expireAt", ASCENDING)], expireAfterSeconds=0, name="unused_cleanup")
        links = self.db["repository_links"]  # storage.links
        await links.create_index(
            [("owner", ASCENDING), ("integrationId", ASCENDING), ("repositoryId", ASCENDING)],
            unique=True,
            name="link_unique",
        )
        await links.create_index([("owner", ASCENDING), ("createdAt", ASCENDING)], name="owner_created")
        await links.create_index([("integrationId", ASCENDING)], name="integration")
        # Links whose deliveries are to be caught up (services.catch_up), by when.
        await links.create_index([("catchUp.dueAt", ASCENDING)], name="catch_up_due", sparse=True)
        events = self.db["repository_events"]  # storage.events: the two promises are these indexes
        await events.create_index(
            [("linkId", ASCENDING), ("sequence", ASCENDING)], unique=True, name="link_sequence_unique"
        )
        await events.create_index(
            [("linkId", ASCENDING), ("deliveryId", ASCENDING)], unique=True, name="link_delivery_unique"
        )

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
    child cleanly in ``stop()`` (``serve`` does so on SIGTERM too); on Linux the child also dies if
    this process is killed.

    ``--sync-on-commit``: every commit waits until its log record is on disk. Without it SecantusDB
    keeps recent commits in memory, and a SIGKILL of the server lost acknowledged writes (issue 17:
    every write of a run, in the measurements of docs/reliability.md). ``sync_on_commit=False`` is
    only for measuring what the flag costs (bench/durability.py).
    """

    def __init__(
        self, storage: str | Path, *, startup_timeout: float = 30.0, sync_on_commit: bool = True
    ) -> None:
        self.storage = str(storage)
        self.startup_timeout = startup_timeout
        self.sync_on_commit = sync_on_commit
        self.process: subprocess.Popen[bytes] | None = None
        self.port: int | None = None
        self.exit_code: int | None = None  # how the last server ended: 0 after a clean stop()

    @property
    def uri(self) -> str:
        assert self.port is not None, "EmbeddedMongo is not started"
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    def start(self, *, test_commands: bool = False, port: int | None = None) -> str:
        """Start the server and return its URI.

        ``port``: listen there instead of on a free port, so that a restart (``stop`` then ``start``
        with ``port=self.port``) comes back where clients already point. ``test_commands`` enables
        ``configureFailPoint`` (tests only: any client that reaches the port could arm it).
        """
        if importlib.util.find_spec("secantus") is None:
            # The production install leaves SecantusDB out (pyproject.toml: the `embedded` extra).
            raise RuntimeError(
                "MONGODB_URI is not set and the embedded database is not installed: set MONGODB_URI, "
                "or install the `embedded` extra (git-integrations[embedded])"
            )
        if self.storage != ":memory:":
            Path(self.storage).mkdir(parents=True, exist_ok=True)
        # A free port may be taken between choosing and binding it: try another. A fixed one is
        # retried too, in case the previous server's socket is still being released.
        for _ in range(3):
            candidate = _free_port() if port is None else port
            args = [
                sys.executable, "-m", "secantus", "--host", "127.0.0.1", "--port", str(candidate),
                "--storage-path", self.storage, "--log-level", "WARNING",
            ]  # fmt: skip
            if self.sync_on_commit:
                args.append("--sync-on-commit")
            if test_commands:
                args.append("--enable-test-commands")
            process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
            try:
                listening = self._wait_until_listening(process, candidate)
            except BaseException:
                # Interrupted while waiting (SIGTERM, Ctrl-C): do not leave the child behind.
                self._terminate(process)
                raise
            if listening:
                self.process, self.port = process, candidate
                log.info("embedded database started", extra={"port": candidate, "storage": self.storage})
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
        """Ask the server to close its files (a final checkpoint) and wait until it has exited."""
        if self.process is not None:
            self.exit_code = self._terminate(self.process)
            self.process = None
            if self.exit_code == 0:
                log.info("embedded database stopped", extra={"port": self.port, "exit_code": 0})
            else:
                log.warning(
                    "embedded database did not stop cleanly",
                    extra={"port": self.port, "exit_code": self.exit_code},
                )

    @staticmethod
    def _terminate(process: subprocess.Popen[bytes]) -> int:
        """SIGTERM (SecantusDB closes its files and exits 0), SIGKILL after 15 s; the exit status."""
        if process.poll() is not None:
            return process.returncode
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait(timeout=5)

    def __enter__(self) -> EmbeddedMongo:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def embedded_storage_path(data_dir: Path) -> Path:
    return data_dir / "db"


__all__ = ["Database", "Document", "Durability", "EmbeddedMongo", "embedded_storage_path", "open_database"]
