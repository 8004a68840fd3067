"""Load run: ``.venv/bin/python -m bench.load`` (figures in docs/reliability.md; ``--quick`` for a few seconds).

What runs, all on 127.0.0.1:

- the fake GitHub and fake GitLab (``python -m tests.fakes``), each its own process, seeded with three
  accounts per client — a GitHub account reached by a classic token, another by a fine-grained token, a
  GitLab user with a personal token — so every connect creates a real, distinct integration;
- this service as operators run it (``tests.harness.serve``, the harness the tests use):
  ``python -m app serve --workers 2``, which starts the embedded
  database (SecantusDB, files in a temporary ``DATA_DIR``) in the parent process and shares it with both
  uvicorn workers; the script signs its callers' JWTs with the ``AUTH_JWT_SECRET`` it sets;
- ``--clients`` concurrent clients (asyncio + httpx; ``--connections`` connections in all, split over
  ``--pools`` clients), each a distinct user, issuing requests one after another until ``--duration`` seconds have passed or it has
  made ``--requests-per-client`` requests. A third of the clients browse (list the repositories of one
  integration over and over: warm, from the cache), a fifth revalidate (``refresh: true``), the rest churn
  (connect a fresh integration, open its repositories at once — cold, nothing cached — and disconnect).
  Everyone also asks for ``integrations``.

Every client keeps its own model of what it should have (connected minus disconnected) and checks each
answer against it: ``integrations`` must list exactly the model, a listing must count exactly the
repositories seeded for the account. Afterwards the database itself (the embedded server's URI is read
from its command line, a child of the server process) must hold exactly the integrations the clients
should have left, each with the token that was connected (decrypted with ``ENCRYPTION_KEYS``), and no
cached repository list of a disconnected integration.

Reported: requests served, p50/p95/p99 latency per operation and overall, errors in four kinds (HTTP or
transport failures, GraphQL errors, unexpected union members, answers that contradict the model), the
resident memory (``VmRSS``) of each uvicorn worker, the database, the fakes and this process at start,
at each quarter of the run, at the end and at its peak, with their CPU time; the database check; and the
service's own counts from ``/metrics``. Exits 1 when there is any error, a worker was replaced, the server
logged an error or did not exit 0 on SIGTERM, or the database check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import math
import os
import random
import signal
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from app.graphql.types.node import from_global_id
from app.security.auth import issue_development_token
from app.security.crypto import TokenCipher
from app.settings.model import Settings
from app.settings.values import EncryptionKey, Secret
from app.storage.integrations import IntegrationRepository
from app.storage.mongo import Database
from tests.harness import (
    children_of,
    command_line,
    fake_host_process,
    serve,
    service_environment,
    stop_process,
)

JWT_SECRET = "load-run-secret-" + "x" * 40
ENCRYPTION_KEY = base64.b64encode(b"L" * 32).decode()
DATABASE = "load"
USER_PREFIX = "load-user-"
GITHUB_PERMISSIONS = {
    "administration": "write",
    "statuses": "write",
    "contents": "write",
    "webhooks": "write",
}
GITLAB_SCOPES = ["api", "read_repository", "write_repository"]
PAGE_SIZE = 30

INTEGRATIONS = "query Integrations { integrations { id provider tokenKind status account { login } } }"
REPOSITORIES = """query Repositories($id: ID!, $refresh: Boolean!, $after: String) {
  integration(id: $id) {
    repositories(first: 30, refresh: $refresh, after: $after) {
      totalCount
      edges { cursor node { id fullName private defaultBranch pushedAt } }
      pageInfo { hasNextPage endCursor }
    }
  }
}"""
CONNECT = """mutation Connect($input: ConnectGitTokenInput!) {
  connectGitToken(input: $input) {
    __typename
    ... on Integration { id provider tokenKind account { login } }
    ... on Error { code message }
  }
}"""
DISCONNECT = """mutation Disconnect($id: ID!) {
  disconnectGitIntegration(input: {id: $id}) {
    __typename
    ... on DisconnectedIntegration { id hostNotified }
    ... on Error { code message }
  }
}"""

# Operation names as reported.
OP_INTEGRATIONS = "integrations"
OP_WARM = "repositories (warm)"
OP_NEXT = "repositories (next page)"
OP_COLD = "repositories (cold)"
OP_REFRESH = "repositories (refresh)"
OP_CONNECT = {
    "GITHUB_CLASSIC": "connectGitToken (GitHub classic)",
    "GITHUB_FINE_GRAINED": "connectGitToken (GitHub fine-grained)",
    "GITLAB_PERSONAL": "connectGitToken (GitLab personal)",
}
OP_DISCONNECT = "disconnectGitIntegration"
OPERATIONS = (OP_INTEGRATIONS, OP_WARM, OP_NEXT, OP_COLD, OP_REFRESH, *OP_CONNECT.values(), OP_DISCONNECT)


# --- the world the fakes hold ------------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    """One account at a fake host and the token that reaches it."""

    provider: str  # GITHUB | GITLAB
    kind: str  # GITHUB_CLASSIC | GITHUB_FINE_GRAINED | GITLAB_PERSONAL
    login: str
    token: str
    repositories: int


def accounts_of(client: int) -> list[Account]:
    """Three accounts per client; repository counts vary, every 20th classic account needs three pages."""
    classic = 230 if client % 20 == 7 else 3 + (client * 7) % 25
    return [
        Account(
            "GITHUB",
            "GITHUB_CLASSIC",
            f"load{client}-c",
            "ghp_" + f"Load{client}c".ljust(36, "0"),
            classic,
        ),
        Account(
            "GITHUB",
            "GITHUB_FINE_GRAINED",
            f"load{client}-f",
            "github_pat_" + f"Load{client}f".ljust(82, "0"),
            2 + (client * 11) % 20,
        ),
        Account(
            "GITLAB",
            "GITLAB_PERSONAL",
            f"load{client}-l",
            "glpat-" + f"Load{client}l".ljust(20, "0"),
            3 + (client * 5) % 30,
        ),
    ]


def github_world(accounts: list[Account]) -> dict[str, Any]:
    mine = [a for a in accounts if a.provider == "GITHUB"]
    return {
        # One budget for the whole fake would be a rate limit no real token shares: off.
        "config": {"rate_limit_enabled": False},
        "users": [a.login for a in mine],
        "repositories": [
            {"owner": a.login, "count": a.repositories, "archived_every": 10, "branches_per_repo": 1}
            for a in mine
        ],
        "classic_tokens": [
            {"token": a.token, "user": a.login, "scopes": ["repo", "admin:repo_hook"]}
            for a in mine
            if a.kind == "GITHUB_CLASSIC"
        ],
        "fine_grained_tokens": [
            {"token": a.token, "user": a.login, "permissions": GITHUB_PERMISSIONS, "repositories": "all"}
            for a in mine
            if a.kind == "GITHUB_FINE_GRAINED"
        ],
    }


def gitlab_world(accounts: list[Account]) -> dict[str, Any]:
    mine = [a for a in accounts if a.provider == "GITLAB"]
    return {
        "users": [a.login for a in mine],
        "projects": [{"namespace": a.login, "count": a.repositories} for a in mine],
        "personal_tokens": [{"token": a.token, "user": a.login, "scopes": GITLAB_SCOPES} for a in mine],
    }


# --- processes ---------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time of a process so far, or None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int | None:
    """``VmRSS`` of a process, or None when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


@dataclass
class Server:
    """``python -m app serve --workers N`` and what it started: uvicorn workers and the embedded database."""

    process: subprocess.Popen[bytes]
    url: str
    log_path: Path
    workers: list[int]
    database_pid: int
    database_uri: str

    def current_workers(self) -> list[int]:
        if len(self.workers) == 1 and self.workers[0] == self.process.pid:
            return [self.process.pid]
        return [p for p in children_of(self.process.pid) if _is_worker(p)]


def _is_worker(pid: int) -> bool:
    return any("multiprocessing.spawn" in part for part in command_line(pid))


def _database_port(pid: int) -> int | None:
    args = command_line(pid)
    if not any(part == "secantus" for part in args) or "--port" not in args:
        return None
    return int(args[args.index("--port") + 1])


@contextlib.contextmanager
def served_app(
    workers: int, github: str, gitlab: str, workdir: Path, *, cache_seconds: int, timeout: float = 90
) -> Iterator[Server]:
    env = service_environment(
        APP_ENV="development",
        DATA_DIR=str(workdir / "data"),  # the embedded database keeps its files here
        MONGODB_DATABASE=DATABASE,
        AUTH_JWT_SECRET=JWT_SECRET,
        ENCRYPTION_KEYS=f"load:{ENCRYPTION_KEY}",
        GITHUB_URL=github,
        GITHUB_API_URL=github,
        GITLAB_URL=gitlab,
        GIT_HOST_ALLOWLIST="127.0.0.1",
        REPOSITORY_CACHE_SECONDS=str(cache_seconds),
        LOG_LEVEL="WARNING",
        GRAPHIQL="false",
    )
    log_path = workdir / "server.log"
    args = ("--host", "127.0.0.1", "--workers", str(workers))
    with (
        log_path.open("wb") as log,
        serve(env, args=args, stdout=log, stderr=log, wait=False, new_session=True) as served,
    ):
        yield _wait_until_serving(served.process, served.url, log_path, workers, timeout)


def _wait_until_serving(
    process: subprocess.Popen[bytes], url: str, log_path: Path, workers: int, timeout: float
) -> Server:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited early:\n{log_path.read_text()[-4000:]}")
        children = children_of(process.pid)
        found = [p for p in children if _is_worker(p)] if workers > 1 else [process.pid]
        database = [(p, port) for p in children if (port := _database_port(p)) is not None]
        ready = 0
        if len(found) == workers and database:
            # The workers share one socket: ask often enough that both have answered.
            for _ in range(4 * workers):
                with contextlib.suppress(httpx.HTTPError):
                    ready += httpx.get(f"{url}/readyz", timeout=2).status_code == 200
        if ready == 4 * workers:
            pid, port = database[0]
            return Server(
                process, url, log_path, found, pid, f"mongodb://127.0.0.1:{port}/?directConnection=true"
            )
        time.sleep(0.3)
    raise RuntimeError(f"the server did not become ready:\n{log_path.read_text()[-4000:]}")


# --- measurements ------------------------------------------------------------------------------------


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=lambda: {op: [] for op in OPERATIONS})
    http_errors: Counter[str] = field(default_factory=Counter)
    graphql_errors: Counter[str] = field(default_factory=Counter)
    unexpected: Counter[str] = field(default_factory=Counter)
    wrong: Counter[str] = field(default_factory=Counter)
    unanswered: Counter[str] = field(default_factory=Counter)  # transport failures: no latency either
    examples: list[str] = field(default_factory=list)

    def note(self, kind: Counter[str], op: str, example: str) -> None:
        kind[op] += 1
        if len(self.examples) < 20:
            self.examples.append(f"{op}: {example}"[:500])

    @property
    def errors(self) -> int:
        return sum((self.http_errors + self.graphql_errors + self.unexpected + self.wrong).values())

    @property
    def requests(self) -> int:
        return sum(len(v) for v in self.latencies.values()) + sum(self.unanswered.values())


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


@dataclass
class MemorySamples:
    """VmRSS of each watched process over the run: (seconds since start, bytes) per pid."""

    names: dict[int, str]
    samples: dict[int, list[tuple[float, int]]] = field(default_factory=dict)
    cpu: dict[int, list[float]] = field(default_factory=dict)

    def take(self, elapsed: float) -> None:
        for pid in self.names:
            value, cpu = rss_bytes(pid), cpu_seconds(pid)
            if value is not None and cpu is not None:
                self.samples.setdefault(pid, []).append((elapsed, value))
                self.cpu.setdefault(pid, []).append(cpu)

    def cpu_used(self, pid: int) -> float | None:
        """CPU seconds the process spent between the first and the last sample."""
        spent = self.cpu.get(pid)
        return spent[-1] - spent[0] if spent else None

    def at(self, pid: int, when: float) -> int | None:
        earlier = [v for t, v in self.samples.get(pid, []) if t <= when]
        return earlier[-1] if earlier else None

    def first(self, pid: int) -> int | None:
        return self.samples[pid][0][1] if self.samples.get(pid) else None

    def last(self, pid: int) -> int | None:
        return self.samples[pid][-1][1] if self.samples.get(pid) else None

    def peak(self, pid: int) -> int | None:
        return max((v for _, v in self.samples.get(pid, [])), default=None)


# --- clients -----------------------------------------------------------------------------------------

# (integrations, warm listing, refresh listing, connect, disconnect) weights per role.
ROLES: dict[str, tuple[float, float, float, float, float]] = {
    "browse": (2, 9, 0, 0.5, 0.5),
    "refresh": (2, 3, 5, 0.5, 0.5),
    "churn": (2, 2, 0, 3, 3),
}


def role_of(client: int) -> str:
    slot = client % 15
    return "browse" if slot < 5 else "refresh" if slot < 8 else "churn"


@dataclass
class Client:
    index: int
    role: str
    accounts: list[Account]
    headers: dict[str, str]
    rng: random.Random
    connected: dict[str, str] = field(default_factory=dict)  # token -> global id
    cold: set[str] = field(default_factory=set)  # global ids never listed yet
    uncertain: set[str] = field(default_factory=set)  # tokens whose state a failed request left unknown
    cursors: dict[str, str] = field(default_factory=dict)  # global id -> end cursor of the first page
    requests: int = 0

    @property
    def user(self) -> str:
        return f"{USER_PREFIX}{self.index}"

    def account(self, token: str) -> Account:
        return next(a for a in self.accounts if a.token == token)

    def free(self) -> list[Account]:
        """Accounts not connected (and not left unknown by a failed request)."""
        return [a for a in self.accounts if a.token not in self.connected and a.token not in self.uncertain]


class LoadRun:
    def __init__(
        self, pools: list[httpx.AsyncClient], stats: Stats, deadline: float, budget: int, think: float
    ):
        self.pools = pools
        self.stats = stats
        self.deadline = deadline
        self.budget = budget
        self.think = think

    async def call(
        self, client: Client, op: str, query: str, variables: dict[str, Any]
    ) -> dict[str, Any] | None:
        client.requests += 1
        started = time.perf_counter()
        try:
            response = await self.pools[client.index % len(self.pools)].post(
                "/graphql", json={"query": query, "variables": variables}, headers=client.headers
            )
        except httpx.HTTPError as exc:
            self.stats.unanswered[op] += 1
            self.stats.note(self.stats.http_errors, op, f"{type(exc).__name__}: {exc}")
            return None
        self.stats.latencies[op].append(time.perf_counter() - started)
        if response.status_code != 200:
            self.stats.note(self.stats.http_errors, op, f"HTTP {response.status_code}: {response.text[:200]}")
            return None
        try:
            body: dict[str, Any] = response.json()
        except ValueError:
            self.stats.note(self.stats.http_errors, op, f"not JSON: {response.text[:200]}")
            return None
        if body.get("errors"):
            codes = [(e.get("extensions") or {}).get("code") for e in body["errors"]]
            self.stats.note(self.stats.graphql_errors, op, f"{codes} {body['errors'][0].get('message')}")
            return None
        data: dict[str, Any] = body.get("data") or {}
        return data

    def wrong(self, op: str, why: str) -> None:
        self.stats.note(self.stats.wrong, op, why)

    # --- operations ---

    async def integrations(self, client: Client) -> None:
        data = await self.call(client, OP_INTEGRATIONS, INTEGRATIONS, {})
        if data is None:
            return
        seen = {item["id"]: item["account"]["login"] for item in data["integrations"]}
        expected = {gid: client.account(token).login for token, gid in client.connected.items()}
        if client.uncertain:  # only what is known for sure must match
            unknown = {a.login for a in client.accounts if a.token in client.uncertain}
            seen = {k: v for k, v in seen.items() if v not in unknown}
        if seen != expected:
            self.wrong(
                OP_INTEGRATIONS,
                f"{client.user}: listed {sorted(seen.values())}, model {sorted(expected.values())}",
            )

    async def repositories(self, client: Client, *, refresh: bool = False, token: str | None = None) -> None:
        if not client.connected:
            await self.connect(client)
            return
        token = token or client.rng.choice(sorted(client.connected))
        gid = client.connected[token]
        after = None
        if gid in client.cold:
            op = OP_COLD
        elif refresh:
            op = OP_REFRESH
        elif gid in client.cursors and client.rng.random() < 0.25:
            op, after = OP_NEXT, client.cursors[gid]
        else:
            op = OP_WARM
        data = await self.call(client, op, REPOSITORIES, {"id": gid, "refresh": refresh, "after": after})
        if data is None:
            return
        client.cold.discard(gid)
        listing = data["integration"]["repositories"]
        expected = client.account(token).repositories
        shown = min(PAGE_SIZE, expected - (PAGE_SIZE if after else 0))
        if listing["totalCount"] != expected or len(listing["edges"]) != max(0, shown):
            self.wrong(op, f"{client.user}: {listing['totalCount']} / {len(listing['edges'])} for {expected}")
        if listing["pageInfo"]["hasNextPage"] and after is None:
            client.cursors[gid] = listing["pageInfo"]["endCursor"]

    async def connect(self, client: Client, account: Account | None = None) -> None:
        if account is None:
            free = client.free()
            if not free:
                await self.disconnect(client)
                return
            account = client.rng.choice(free)
        op = OP_CONNECT[account.kind]
        data = await self.call(
            client, op, CONNECT, {"input": {"provider": account.provider, "token": account.token}}
        )
        if data is None:
            client.uncertain.add(account.token)
            return
        result = data["connectGitToken"]
        if result["__typename"] != "Integration":
            self.stats.note(self.stats.unexpected, op, f"{result['__typename']}: {result.get('message')}")
            client.uncertain.add(account.token)  # a refusal stores nothing, but say nothing for sure
            return
        if result["id"] in client.connected.values() or result["tokenKind"] != account.kind:
            self.wrong(op, f"{client.user}: {result}")
        if result["account"]["login"].lower() != account.login.lower():
            self.wrong(op, f"{client.user}: connected {result['account']['login']} for {account.login}")
        client.connected[account.token] = result["id"]
        client.cold.add(result["id"])
        if client.rng.random() < 0.8:  # the picker opens right after connecting: cold listing
            await self.repositories(client, token=account.token)

    async def disconnect(self, client: Client) -> None:
        keep = 1 if client.role != "churn" else 0
        if len(client.connected) <= keep:
            await (self.connect(client) if client.free() else self.integrations(client))
            return
        token = client.rng.choice(sorted(client.connected))
        gid = client.connected.pop(token)
        client.cold.discard(gid)
        client.cursors.pop(gid, None)
        data = await self.call(client, OP_DISCONNECT, DISCONNECT, {"id": gid})
        if data is None:
            client.uncertain.add(token)
            return
        result = data["disconnectGitIntegration"]
        if result["__typename"] != "DisconnectedIntegration":
            self.stats.note(
                self.stats.unexpected, OP_DISCONNECT, f"{result['__typename']}: {result.get('message')}"
            )
            client.uncertain.add(token)
        elif result["id"] != gid:
            self.wrong(OP_DISCONNECT, f"{client.user}: disconnected {result['id']}, asked {gid}")

    async def run_client(self, client: Client) -> None:
        weights = ROLES[client.role]
        actions = [
            self.integrations,
            self.repositories,
            lambda c: self.repositories(c, refresh=True),
            self.connect,
            self.disconnect,
        ]
        # Every client starts with one integration (its provider varies from client to client).
        await self.connect(client, client.accounts[client.index % len(client.accounts)])
        while client.requests < self.budget and time.monotonic() < self.deadline:
            action = client.rng.choices(actions, weights)[0]
            await action(client)
            if self.think:
                await asyncio.sleep(client.rng.uniform(0, 2 * self.think))


# --- the database check ------------------------------------------------------------------------------


@dataclass
class DatabaseCheck:
    owners: int = 0
    expected: int = 0
    found: int = 0
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    wrong_token: list[str] = field(default_factory=list)
    uncertain: int = 0
    other_owners: int = 0
    orphan_cache_entries: int = 0

    @property
    def ok(self) -> bool:
        return not (
            self.missing
            or self.unexpected
            or self.wrong_token
            or self.other_owners
            or self.orphan_cache_entries
        )

    def summary(self) -> str:
        verdict = "PASS" if self.ok else "FAIL"
        text = (
            f"{verdict}: {self.found} integrations stored for {self.owners} users, {self.expected} expected "
            f"by the clients' models; missing {len(self.missing)}, unexpected {len(self.unexpected)}, "
            f"token not the one connected {len(self.wrong_token)}, integrations of other owners "
            f"{self.other_owners}"
        )
        if self.uncertain:
            text += f"; {self.uncertain} left out of the comparison (a failed request left them unknown)"
        return text + (
            f"; cached repository documents of disconnected integrations {self.orphan_cache_entries}."
        )


async def check_database(uri: str, clients: list[Client]) -> DatabaseCheck:
    check = DatabaseCheck(owners=len(clients))
    database = Database(uri, DATABASE)
    cipher = TokenCipher((EncryptionKey("load", Secret(ENCRYPTION_KEY)),))
    repository = IntegrationRepository(database, cipher)
    try:
        collection = database.db["integrations"]
        owners = [c.user for c in clients]
        stored: dict[str, set[str]] = {}
        async for doc in collection.find({}, {"owner": 1}):
            if doc["owner"] in owners:
                stored.setdefault(doc["owner"], set()).add(str(doc["_id"]))
            else:
                check.other_owners += 1
        for client in clients:
            uncertain_logins = {a.login for a in client.accounts if a.token in client.uncertain}
            check.uncertain += len(uncertain_logins)
            expected = {}
            for token, gid in client.connected.items():
                decoded = from_global_id(gid)
                expected[decoded[1] if decoded else gid] = token
            found = stored.get(client.user, set())
            check.expected += len(expected)
            check.found += len(found)
            check.missing += [f"{client.user}/{i}" for i in sorted(expected.keys() - found)]
            for local_id in sorted(found - expected.keys()):
                record = await repository.get(client.user, local_id)
                if record is None or record.account.login not in uncertain_logins:
                    check.unexpected.append(f"{client.user}/{local_id}")
            for local_id in sorted(found & expected.keys()):
                pair = await repository.get_with_credentials(client.user, local_id)
                if pair is None or pair[1].access_token != expected[local_id]:
                    check.wrong_token.append(f"{client.user}/{local_id}")
        alive = {i for ids in stored.values() for i in ids}
        async for doc in database.db["repository_cache"].find({}, {"integrationId": 1}):
            if str(doc.get("integrationId")) not in alive:
                check.orphan_cache_entries += 1
    finally:
        await database.close()
    return check


# --- the run -----------------------------------------------------------------------------------------


@dataclass
class Report:
    args: argparse.Namespace
    seconds: float
    stats: Stats
    memory: MemorySamples
    workers: list[int]
    database_pid: int
    workers_replaced: bool
    server_log_errors: list[str]
    database: DatabaseCheck
    server_exit: int | None = None
    metrics: dict[str, Counter[str]] | None = None

    @property
    def ok(self) -> bool:
        return (
            self.stats.errors == 0
            and not self.workers_replaced
            and not self.server_log_errors
            and self.database.ok
            and self.stats.requests > 0
            and self.server_exit in (0, None)
        )


async def run(args: argparse.Namespace) -> Report:
    clients_accounts = [accounts_of(i) for i in range(args.clients)]
    everyone = [a for accounts in clients_accounts for a in accounts]
    with (
        tempfile.TemporaryDirectory(prefix="load-run-") as tmp,
        fake_host_process("github", github_world(everyone), Path(tmp)) as (github, github_pid),
        fake_host_process("gitlab", gitlab_world(everyone), Path(tmp)) as (gitlab, gitlab_pid),
        served_app(args.workers, github, gitlab, Path(tmp), cache_seconds=args.cache_seconds) as server,
    ):
        others = {
            github_pid: "fake GitHub",
            gitlab_pid: "fake GitLab",
            os.getpid(): "load clients (this process)",
        }
        report = await _drive(args, server, clients_accounts, others)
        report.server_exit = stop_process(server.process, signal.SIGTERM, timeout=40)
        report.server_log_errors = _logged_errors(server.log_path)
        return report


def _logged_errors(path: Path) -> list[str]:
    errors = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            level = json.loads(line).get("level")
        except ValueError:
            level = "error" if "Traceback" in line else None
        if level in ("error", "critical"):
            errors.append(line[:400])
    return errors


async def _drive(
    args: argparse.Namespace, server: Server, clients_accounts: list[list[Account]], others: dict[int, str]
) -> Report:
    names = {pid: f"worker {n + 1}" for n, pid in enumerate(server.workers)}
    names[server.database_pid] = "embedded database"
    names |= others
    memory = MemorySamples(names)
    settings = Settings(auth_jwt_secret=Secret(JWT_SECRET))
    clients = [
        Client(
            index=i,
            role=role_of(i),
            accounts=accounts,
            headers={
                "Authorization": "Bearer "
                + issue_development_token(settings, f"{USER_PREFIX}{i}", lifetime_seconds=24 * 3600)
            },
            rng=random.Random(args.seed * 100_003 + i),
        )
        for i, accounts in enumerate(clients_accounts)
    ]
    stats = Stats()
    # Several small pools: httpx's pool does work proportional to its size on every request, so one
    # pool of 200 connections costs the clients more CPU than the service spends answering.
    per_pool = math.ceil(args.connections / args.pools)
    limits = httpx.Limits(max_connections=per_pool, max_keepalive_connections=per_pool)
    started = time.monotonic()
    memory.take(0.0)
    stop_sampling = asyncio.Event()

    async def sample() -> None:
        while not stop_sampling.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop_sampling.wait(), timeout=1.0)
            memory.take(time.monotonic() - started)

    async with contextlib.AsyncExitStack() as stack:
        pools = [
            await stack.enter_async_context(
                httpx.AsyncClient(base_url=server.url, timeout=args.timeout, limits=limits)
            )
            for _ in range(args.pools)
        ]
        load = LoadRun(pools, stats, started + args.duration, args.requests_per_client, args.think)
        sampler = asyncio.create_task(sample())
        await asyncio.gather(*(load.run_client(c) for c in clients))
        seconds = time.monotonic() - started
        stop_sampling.set()
        await sampler
    memory.take(time.monotonic() - started)
    workers_now = server.current_workers()
    await asyncio.sleep(1.0)  # the last listings' cache writes run after their answers
    metrics = await asyncio.to_thread(server_metrics, server.url)
    database = await check_database(server.database_uri, clients)
    return Report(
        args=args,
        seconds=seconds,
        stats=stats,
        memory=memory,
        workers=server.workers,
        database_pid=server.database_pid,
        workers_replaced=sorted(workers_now) != sorted(server.workers),
        server_log_errors=[],
        database=database,
        metrics=metrics,
    )


def server_metrics(url: str) -> dict[str, Counter[str]] | None:
    """The service's own counts from ``GET /metrics`` (None when it has none): requests by outcome,
    repository cache lookups by result, upstream requests by status."""
    try:
        response = httpx.get(f"{url}/metrics", timeout=10)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    wanted = {
        "git_integrations_graphql_requests_total": "outcome",
        "git_integrations_repository_cache_lookups_total": "result",
        "git_integrations_upstream_requests_total": "status",
    }
    found: dict[str, Counter[str]] = {name: Counter() for name in wanted}
    for line in response.text.splitlines():
        name, _, rest = line.partition("{")
        if name not in wanted or "}" not in rest:
            continue
        labels, _, value = rest.rpartition("}")
        pairs = dict(part.split("=", 1) for part in labels.split('",') if "=" in part)
        label = pairs.get(wanted[name], "").strip('"')
        with contextlib.suppress(ValueError):
            found[name][label] += int(float(value.split()[0]))
    return found


# --- the report --------------------------------------------------------------------------------------


def _ms(value: float) -> str:
    return (
        "-" if math.isnan(value) else f"{value * 1000:,.0f} ms" if value >= 0.1 else f"{value * 1000:.1f} ms"
    )


def _mb(value: int | None) -> str:
    return "-" if value is None else f"{value / 1024 / 1024:,.1f} MB"


def _counts(metrics: dict[str, Counter[str]]) -> str:
    def listed(counter: Counter[str]) -> str:
        return ", ".join(f"{key} {value:,}" for key, value in sorted(counter.items())) or "none"

    graphql = metrics["git_integrations_graphql_requests_total"]
    upstream = metrics["git_integrations_upstream_requests_total"]
    return (
        f"{sum(graphql.values()):,} GraphQL requests (by outcome: {listed(graphql)}); repository cache "
        f"lookups: {listed(metrics['git_integrations_repository_cache_lookups_total'])}; "
        f"{sum(upstream.values()):,} requests to the fake hosts (by status: {listed(upstream)})."
    )


def markdown(report: Report) -> str:
    stats, args = report.stats, report.args
    header = ["operation", "requests", "p50", "p95", "p99", "max", "HTTP errors", "GraphQL errors",
              "unexpected union members", "wrong answers"]  # fmt: skip
    lines = [
        f"{args.clients} clients, {args.workers} workers, {report.seconds:.1f} s, "
        f"{stats.requests:,} requests ({stats.requests / report.seconds:,.0f}/s), "
        f"{stats.errors} errors",
        "",
        "| " + " | ".join(header) + " |",
        "|---|" + "---:|" * (len(header) - 1),
    ]

    def row(name: str, values: list[float], ops: tuple[str, ...]) -> str:
        counts = [
            sum(c[op] for op in ops)
            for c in (stats.http_errors, stats.graphql_errors, stats.unexpected, stats.wrong)
        ]
        cells = [name, f"{len(values) + sum(stats.unanswered[op] for op in ops):,}"]
        cells += [_ms(percentile(values, q)) for q in (50, 95, 99)]
        cells += [_ms(max(values)) if values else "-"] + [str(n) for n in counts]
        return "| " + " | ".join(cells) + " |"

    for op in OPERATIONS:
        lines.append(row(f"`{op}`", stats.latencies[op], (op,)))
    everything = [v for values in stats.latencies.values() for v in values]
    lines.append(row("**all**", everything, OPERATIONS))
    lines += [
        "",
        "| process | pid | RSS at start | at 1/4 | at 1/2 | at 3/4 | at the end | peak | CPU time in the run |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    memory = report.memory
    for pid, name in memory.names.items():
        cpu = memory.cpu_used(pid)
        at = [_mb(memory.at(pid, report.seconds * q / 4)) for q in (1, 2, 3)]
        lines.append(
            f"| {name} | {pid} | {_mb(memory.first(pid))} | {' | '.join(at)} | {_mb(memory.last(pid))} | "
            f"{_mb(memory.peak(pid))} | {'-' if cpu is None else f'{cpu:.1f} s'} |"
        )
    lines += ["", f"Database check: {report.database.summary()}"]
    if report.metrics:
        lines += ["", f"The service's own count (`/metrics`): {_counts(report.metrics)}"]
    lines.append(
        f"Workers replaced during the run: {'yes (one died)' if report.workers_replaced else 'none'}; "
        f"errors in the server's log: {len(report.server_log_errors)}; "
        f"the server's exit status after SIGTERM: {report.server_exit}."
    )
    if report.server_log_errors:
        lines.append(f"The server logged {len(report.server_log_errors)} error(s):")
        lines += [f"    {line}" for line in report.server_log_errors[:10]]
    if stats.examples:
        lines += ["", "First errors:"] + [f"    {example}" for example in stats.examples]
    for name, items in (
        ("missing", report.database.missing),
        ("unexpected", report.database.unexpected),
        ("wrong token", report.database.wrong_token),
    ):
        if items:
            lines.append(f"    {name}: {', '.join(items[:10])}")
    lines.append("")
    lines.append("PASS" if report.ok else "FAIL")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds: 20 clients for 5 s unless told")
    parser.add_argument("--clients", type=int, help="concurrent clients, each a distinct user (default 200)")
    parser.add_argument("--duration", type=float, help="seconds of load (default 60)")
    parser.add_argument(
        "--requests-per-client", type=int, help="stop a client after this many requests (default 5000)"
    )
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers (default 2)")
    parser.add_argument(
        "--connections", type=int, help="httpx pool size (default: one per client, at most 200)"
    )
    parser.add_argument("--pools", type=int, help="httpx clients the connections are split over")
    parser.add_argument("--think", type=float, default=0.0, help="mean pause between a client's requests (s)")
    parser.add_argument("--timeout", type=float, default=60.0, help="client timeout per request (s)")
    parser.add_argument(
        "--cache-seconds", type=int, default=60, help="REPOSITORY_CACHE_SECONDS of the service"
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed of the clients' choices")
    args = parser.parse_args(argv)
    quick = args.quick
    args.clients = args.clients or (20 if quick else 200)
    args.duration = args.duration or (5.0 if quick else 60.0)
    args.requests_per_client = args.requests_per_client or (500 if quick else 5000)
    args.connections = args.connections or min(args.clients, 200)
    args.pools = min(args.pools or max(1, args.connections // 10), args.connections)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = asyncio.run(run(args))
    print(markdown(report))
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
