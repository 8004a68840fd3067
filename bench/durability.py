"""What durable writes cost: ``.venv/bin/python -m bench.durability`` (figures in docs/performance.md).

The embedded database runs on disk (a temporary directory on this machine's disk), in three set-ups:

- **before** — every write ``w: 1`` and no ``--sync-on-commit``: how it was before issue 17 (a SIGKILL
  of the database lost acknowledged writes);
- **j:true** — the service's write concerns (``Durability``: must-survive writes ``w: "majority",
  j: true``, the repository cache ``w: 1``) without ``--sync-on-commit``;
- **now** — the same write concerns with ``--sync-on-commit``, as ``serve`` runs it.

Measured in each:

1. **the disk** — ``fsync`` of a 4 KB append in the data directory: what a synced commit waits for;
2. **connects** through the API (``tests.harness.running_app`` over ASGI; a fake GitHub in its own process, one
   classic token per account, so every connect inserts a new integration): one caller after another
   (median and p95 latency), and ``--concurrency`` callers at once (connects per second);
3. **repository-cache writes** (``ListingStore.store``, what the picker does after answering): a
   fresh listing of 100 / 1,000 / 5,000 repositories (1 / 10 / 50 pages), and its revalidation (every
   page answered 304: the ETag and expiry of each page rewritten).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
from pymongo.write_concern import WriteConcern

from app.domain.models import Repository
from app.hosts.base import Listing
from app.net.pagination import PageRecord
from app.security.auth import issue_development_token
from app.settings.model import Settings
from app.settings.values import EncryptionKey, Secret
from app.storage.durability import Durability
from app.storage.listings import ListingStore
from app.storage.mongo import Database, EmbeddedMongo
from tests.harness import fake_host_process, running_app

SIZES = (100, 1_000, 5_000)
JWT_SECRET = "bench-secret-" + "x" * 40
CONNECT = """
mutation($token: String!) {
  connectGitToken(input: {provider: GITHUB, token: $token}) { __typename ... on Integration { id } }
}
"""


@dataclass(frozen=True)
class Setup:
    name: str
    sync_on_commit: bool
    every_write: WriteConcern | None  # None: the service's own write concerns


SETUPS = (
    Setup("before", sync_on_commit=False, every_write=WriteConcern(w=1, j=False)),
    Setup("j:true", sync_on_commit=False, every_write=None),
    Setup("now", sync_on_commit=True, every_write=None),
)


@contextlib.contextmanager
def write_concerns(setup: Setup) -> Iterator[None]:
    """Every ``Durability`` gives ``setup.every_write`` (the "before" set-up); else nothing changes."""
    if setup.every_write is None:
        yield
        return
    with mock.patch.object(Durability, "write_concern", property(lambda self: setup.every_write)):
        yield


def token(n: int) -> str:
    return "ghp_" + f"Bench{n:05d}".ljust(36, "0")


def github_world(accounts: int) -> dict[str, Any]:
    logins = [f"bench{n}" for n in range(accounts)]
    return {
        "config": {"rate_limit_enabled": False},
        "users": logins,
        "classic_tokens": [
            {"token": token(n), "user": login, "scopes": ["repo", "admin:repo_hook"]}
            for n, login in enumerate(logins)
        ],
    }


def fsync_ms(directory: Path, samples: int = 200) -> float:
    path = directory / "fsync-probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        times = []
        for _ in range(samples):
            os.write(fd, b"x" * 4096)
            started = time.perf_counter()
            os.fsync(fd)
            times.append(time.perf_counter() - started)
    finally:
        os.close(fd)
        path.unlink()
    return statistics.median(times) * 1000


# --- connects ----------------------------------------------------------------------------------------


async def connects(
    settings: Settings, numbers: Iterator[int], sequential: int, concurrent: int, concurrency: int
) -> tuple[list[float], float]:
    """Latencies (ms) of ``sequential`` connects one at a time; connects per second of ``concurrent``
    connects made by ``concurrency`` callers at once."""
    bearer = issue_development_token(settings, "bench")
    async with (
        running_app(settings) as app,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://bench",
            headers={"Authorization": f"Bearer {bearer}"},
            timeout=60,
        ) as http,
    ):

        async def connect() -> float:
            started = time.perf_counter()
            response = await http.post(
                "/graphql", json={"query": CONNECT, "variables": {"token": token(next(numbers))}}
            )
            took = time.perf_counter() - started
            result = response.json()["data"]["connectGitToken"]
            assert result["__typename"] == "Integration", response.text
            return took

        for _ in range(5):  # warm-up: first requests compile documents, open connections
            await connect()
        latencies = sorted([await connect() for _ in range(sequential)])
        started = time.perf_counter()
        per_caller = concurrent // concurrency

        async def caller() -> None:
            for _ in range(per_caller):
                await connect()

        await asyncio.gather(*(caller() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return [latency * 1000 for latency in latencies], per_caller * concurrency / elapsed


async def single_writes(database: Database, count: int) -> list[float]:
    """ms per ``insert_one`` of a 1.5 KB document into a ``MUST_SURVIVE`` collection, one after another."""
    collection = database.collection("writes", Durability.MUST_SURVIVE)
    document = {"owner": "bench", "secrets": {"accessToken": "x" * 700, "refreshToken": "y" * 700}}
    times = []
    for _ in range(count):
        started = time.perf_counter()
        await collection.insert_one(dict(document))
        times.append((time.perf_counter() - started) * 1000)
    return times


# --- repository cache ---------------------------------------------------------------------------------


def listing(size: int) -> Listing:
    pages = []
    for number in range(1, (size + 99) // 100 + 1):
        repositories = tuple(
            Repository(
                id=str(i),
                name=f"repo-{i}",
                full_name=f"bench/repo-{i}",
                owner="bench",
                private=i % 3 == 0,
                web_url=f"https://github.com/bench/repo-{i}",
                clone_url=f"https://github.com/bench/repo-{i}.git",
                default_branch="main",
                pushed_at=datetime(2026, 1, 1, tzinfo=UTC),
            )
            for i in range((number - 1) * 100, min(number * 100, size))
        )
        pages.append(PageRecord("/user/repos", number, f'W/"{size}-{number}"', repositories))
    return Listing(pages=tuple(pages))


async def cache_writes(database: Database, runs: int) -> dict[int, tuple[list[float], list[float]]]:
    """Per size: ms of storing a fresh listing, and of storing its revalidation (all 304s), ``runs`` each."""
    cache = ListingStore(database)
    found = {}
    for size in SIZES:
        fresh, revalidated = [], []
        full = listing(size)
        unchanged = replace(full, pages=tuple(replace(p, fetched=False) for p in full.pages))
        for run in range(runs):
            integration = f"bench-{size}-{run}"
            started = time.perf_counter()
            stored = await cache.store(integration, "all", "s", full, datetime.now(UTC), None)
            fresh.append(time.perf_counter() - started)
            started = time.perf_counter()
            await cache.store(integration, "all", "s", unchanged, datetime.now(UTC), stored)
            revalidated.append(time.perf_counter() - started)
        found[size] = ([t * 1000 for t in fresh], [t * 1000 for t in revalidated])
    return found


# --- the run -----------------------------------------------------------------------------------------


@dataclass
class Samples:
    """Everything measured for one set-up, over all passes."""

    fsync: list[float] = field(default_factory=list)
    write: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    per_second: list[float] = field(default_factory=list)
    fresh: dict[int, list[float]] = field(default_factory=lambda: {size: [] for size in SIZES})
    revalidated: dict[int, list[float]] = field(default_factory=lambda: {size: [] for size in SIZES})


async def measure(setup: Setup, args: argparse.Namespace, github_url: str, directory: Path) -> Samples:
    samples = Samples()
    data_dir = directory / setup.name
    accounts = iter(range(args.accounts))
    with write_concerns(setup), EmbeddedMongo(data_dir / "db", sync_on_commit=setup.sync_on_commit) as mongo:
        settings = Settings(
            mongodb_uri=Secret(mongo.uri),
            mongodb_database="bench",
            data_dir=data_dir,
            encryption_keys=(EncryptionKey("b", Secret(base64.b64encode(b"k" * 32).decode())),),
            auth_jwt_secret=Secret(JWT_SECRET),
            github_url=github_url,
            github_api_url=github_url,
            log_level="WARNING",
        )
        samples.fsync.append(fsync_ms(data_dir))
        database = Database(mongo.uri, "bench_writes")
        try:
            samples.write += await single_writes(database, args.writes)
        finally:
            await database.close()
        latencies, per_second = await connects(
            settings, accounts, args.sequential, args.concurrent, args.concurrency
        )
        samples.latencies += latencies
        samples.per_second.append(per_second)
        database = Database(mongo.uri, "bench_cache")
        await database.ensure_indexes()  # each page is found by its unique (integration, key) index
        try:
            for size, (fresh, revalidated) in (await cache_writes(database, args.runs)).items():
                samples.fresh[size] += fresh
                samples.revalidated[size] += revalidated
        finally:
            await database.close()
    return samples


async def run(args: argparse.Namespace) -> dict[str, Samples]:
    """``--passes`` passes over the set-ups, every other one in reverse order (the machine is shared:
    whatever else runs meanwhile should not always fall on the same set-up)."""
    results = {setup.name: Samples() for setup in SETUPS}
    args.accounts = 5 + args.sequential + args.concurrent
    with (
        tempfile.TemporaryDirectory(dir=args.directory) as tmp,
        fake_host_process("github", github_world(args.accounts), Path(tmp)) as (github_url, _),
    ):
        for number in range(args.passes):
            for setup in SETUPS if number % 2 == 0 else tuple(reversed(SETUPS)):
                measured = await measure(setup, args, github_url, Path(tmp) / f"pass{number}")
                merged = results[setup.name]
                merged.fsync += measured.fsync
                merged.write += measured.write
                merged.latencies += measured.latencies
                merged.per_second += measured.per_second
                for size in SIZES:
                    merged.fresh[size] += measured.fresh[size]
                    merged.revalidated[size] += measured.revalidated[size]
                print(f"pass {number + 1}: {setup.name} measured", file=sys.stderr)
    return results


def table(results: dict[str, Samples], args: argparse.Namespace) -> str:
    names = [setup.name for setup in SETUPS]

    def row(label: str, cell: Callable[[Samples], str]) -> str:
        return f"| {label} | " + " | ".join(cell(results[name]) for name in names) + " |"

    def p95(values: list[float]) -> float:
        return sorted(values)[max(0, int(len(values) * 0.95) - 1)]

    median = statistics.median
    lines = [
        "| | " + " | ".join(f"**{name}**" for name in names) + " |",
        "|---|" + "---:|" * len(names),
        row("`fsync` of 4 KB on this disk (median)", lambda r: f"{median(r.fsync):.2f} ms"),
        row(
            "one must-survive write (an integration-sized insert), median",
            lambda r: f"{median(r.write):.2f} ms",
        ),
        row(
            f"connect, one at a time: median (p95) of {args.sequential * args.passes}",
            lambda r: f"{median(r.latencies):.1f} ms ({p95(r.latencies):.1f})",
        ),
        row(
            f"connects per second, {args.concurrency} callers at once",
            lambda r: f"{median(r.per_second):.0f}",
        ),
    ]
    for size in SIZES:
        pages = (size + 99) // 100
        fresh = {name: median(results[name].fresh[size]) for name in names}
        revalidated = {name: median(results[name].revalidated[size]) for name in names}
        plural = "s" if pages > 1 else ""
        lines.append(
            f"| cache: store a fresh listing of {size:,} ({pages} page{plural}) | "
            + " | ".join(f"{fresh[name]:.1f} ms" for name in names)
            + " |"
        )
        lines.append(
            f"| cache: store its revalidation ({pages} answered 304) | "
            + " | ".join(f"{revalidated[name]:.1f} ms" for name in names)
            + " |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.durability", description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=500, help="single must-survive writes (latency)")
    parser.add_argument("--sequential", type=int, default=100, help="connects one at a time (latency)")
    parser.add_argument("--concurrent", type=int, default=200, help="connects for the throughput")
    parser.add_argument("--concurrency", type=int, default=10, help="callers at once for the throughput")
    parser.add_argument("--runs", type=int, default=5, help="samples per cache write and pass (median)")
    parser.add_argument("--passes", type=int, default=2, help="passes over the three set-ups")
    parser.add_argument("--directory", type=Path, default=None, help="where the database files go")
    args = parser.parse_args(argv)
    results = asyncio.run(run(args))
    print(f"{args.passes} passes; the database on {args.directory or tempfile.gettempdir()}\n")
    print(table(results, args))


if __name__ == "__main__":
    main()
