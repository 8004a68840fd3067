"""Webhook deliveries under load, with the database gone in the middle: ``.venv/bin/python -m bench.webhooks``.

What runs, all on 127.0.0.1:

- the embedded database (SecantusDB, ``--sync-on-commit``, files in a temporary directory) as its own
  process, so that it can be stopped and started again on the same files and port mid-run;
- this service as operators run it: ``python -m app serve`` (``tests.harness.serve``) with
  ``MONGODB_URI`` pointing at that database, ``PUBLIC_URL`` at itself and ``DELIVERY_CATCH_UP_SECONDS=1``;
- the fake GitHub in this process (a uvicorn thread); its outbox sends the deliveries with this
  process's HTTP client and logs every attempt in the hook's delivery log, which the service reads when
  it catches up (and the redeliveries it asks for are sent the same way).

The run: alice connects a token and links a repository (GitHub pings the new hook). Then ``--deliveries``
deliveries, ``--concurrency`` at a time, in random order: pushes signed with the hook's secret; a
``--duplicates`` share of them sent again (the same GUID, as a redelivery or a replay would be); a
``--bad`` share signed with another secret. After ``--outage-at`` of them were sent the database is
stopped (SIGTERM) for ``--outage-seconds`` while deliveries keep coming (the receivers answer 503 and the
host logs them as failed), then started again. When every delivery was sent, the service has
``--settle`` seconds to catch up through the host's delivery log.

Checked (exit 1 otherwise): every good delivery stored exactly once (by delivery id), numbered 1..N
without a gap; not one of the badly signed ones stored; no error in the service's log. Reported: the
answer times (p50/p95/p99/max) of every answer and of those outside the outage, by status; how many
were answered 503; how long the catch-up took after the database was back; deliveries per second.
``--quick``: 200 deliveries at 20 concurrent with a 1.5-second outage (tests/reliability/test_webhook_load_quick.py).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from pymongo import AsyncMongoClient

from app.graphql.types.node import from_global_id
from app.graphql.types.repository import repository_global_id
from app.security.auth import issue_development_token
from app.settings.model import Settings
from app.settings.values import Secret
from app.storage.mongo import EmbeddedMongo
from tests.fakes import scenarios
from tests.fakes._github_deploy import sign
from tests.fakes._webhooks import Outgoing
from tests.fakes.github import FakeGitHub
from tests.fakes.server import run_in_thread
from tests.harness import free_port, serve, service_environment

JWT_SECRET = "webhook-run-secret-" + "x" * 40
ENCRYPTION_KEY = base64.b64encode(b"W" * 32).decode()
DATABASE = "webhooks"
REPOSITORY = "octocat/repo-0002"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.webhooks", description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--duplicates", type=float, default=0.10, help="share sent twice")
    parser.add_argument("--bad", type=float, default=0.05, help="share signed with another secret")
    parser.add_argument("--outage-at", type=float, default=0.4, help="share sent before the database stops")
    parser.add_argument("--outage-seconds", type=float, default=3.0)
    parser.add_argument("--settle", type=float, default=120.0, help="seconds allowed for the catch-up")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="200 deliveries, 20 at a time, 1.5 s outage")
    args = parser.parse_args(argv)
    if args.quick:
        args.deliveries, args.concurrency, args.outage_seconds, args.settle = 200, 20, 1.5, 60.0
    return args


@dataclass
class Report:
    deliveries: int = 0
    good: set[str] = field(default_factory=set)
    bad: set[str] = field(default_factory=set)
    duplicates: int = 0
    answers: list[tuple[float, int, bool]] = field(default_factory=list)  # seconds, status, refused (503)
    seconds: float = 0.0
    outage: tuple[float, float] = (0.0, 0.0)
    caught_up_after: float | None = (
        None  # seconds from the database's return to the last good delivery stored
    )
    stored: list[str] = field(default_factory=list)
    sequences: list[int] = field(default_factory=list)
    redeliveries: int = 0
    log_errors: list[str] = field(default_factory=list)
    served: list[tuple[float, int]] = field(default_factory=list)  # the service's own (seconds, status)

    @property
    def missing(self) -> set[str]:
        return self.good - set(self.stored)

    @property
    def stored_twice(self) -> int:
        return len(self.stored) - len(set(self.stored))

    @property
    def bad_stored(self) -> set[str]:
        return self.bad & set(self.stored)

    @property
    def ok(self) -> bool:
        gapless = self.sequences == list(range(1, len(self.sequences) + 1))
        return not (self.missing or self.stored_twice or self.bad_stored or self.log_errors) and gapless


def percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def markdown(report: Report) -> str:
    def row(name: str, values: list[float]) -> str:
        cells = [percentile(values, p) * 1000 for p in (0.5, 0.95, 0.99)] + [max(values, default=0) * 1000]
        return f"| {name} | {len(values)} | " + " | ".join(f"{c:.1f}" for c in cells) + " |"

    statuses = Counter(status for _, status, _ in report.answers)
    lines = [
        f"{report.deliveries} deliveries ({len(report.good)} distinct good ones, {report.duplicates} sent twice, "
        f"{len(report.bad)} badly signed) in {report.seconds:.1f} s ({report.deliveries / max(report.seconds, 1e-9):.0f}/s); "
        f"database down for {report.outage[1] - report.outage[0]:.1f} s",
        "",
        "| answers | count | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---|---|---|---|---|",
        row("all", [s for s, _, _ in report.answers]),
        row("all but the 503s", [s for s, _, refused in report.answers if not refused]),
    ]
    for status in sorted(statuses):
        lines.append(row(f"HTTP {status}", [s for s, code, _ in report.answers if code == status]))
    lines += [
        "",
        "As the service measured them (its request log: from the request's start to its answer):",
        "",
        "| answers | count | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---|---|---|---|---|",
        row("all", [s for s, _ in report.served]),
    ]
    for status in sorted({code for _, code in report.served}):
        lines.append(row(f"HTTP {status}", [s for s, code in report.served if code == status]))
    lines += [
        "",
        f"- stored: {len(set(report.stored))} of {len(report.good)} good deliveries, {report.stored_twice} twice, "
        f"{len(report.bad_stored)} badly signed; sequence numbers 1..{len(report.sequences)}"
        f"{' without a gap' if report.sequences == list(range(1, len(report.sequences) + 1)) else ' WITH GAPS'}",
        f"- answered 503 (database away): {statuses.get(503, 0)}; redelivered by the catch-up: {report.redeliveries}; "
        + (
            f"every good delivery stored {report.caught_up_after:.1f} s after the database was back"
            if report.caught_up_after is not None
            else "NOT CAUGHT UP"
        ),
        f"- errors in the service's log: {len(report.log_errors)}",
        f"- {'OK' if report.ok else 'FAILED'}",
    ]
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> Report:
    rng = random.Random(args.seed)
    report = Report()
    fake = scenarios.default_github(FakeGitHub(), repositories=4)
    with tempfile.TemporaryDirectory(prefix="webhook-run-") as tmp, run_in_thread(fake.app) as github_url:
        database = EmbeddedMongo(Path(tmp) / "db")
        database.start()
        port = free_port()
        service_url = f"http://127.0.0.1:{port}"
        env = service_environment(
            DATA_DIR=str(Path(tmp) / "data"), MONGODB_URI=database.uri, MONGODB_DATABASE=DATABASE,
            AUTH_JWT_SECRET=JWT_SECRET, ENCRYPTION_KEYS=f"w:{ENCRYPTION_KEY}", GIT_HOST_ALLOWLIST="127.0.0.1",
            GITHUB_URL=github_url, GITHUB_API_URL=github_url, PUBLIC_URL=service_url,
            DELIVERY_CATCH_UP_SECONDS="1", LOG_LEVEL="INFO",
        )  # fmt: skip
        log_path = Path(tmp) / "serve.log"
        try:
            with log_path.open("wb") as log, serve(env, port=port, stderr=log):
                await _deliver(args, rng, report, fake, database, service_url)
        finally:
            database.stop()
        lines = log_path.read_text(errors="replace").splitlines()
        report.log_errors = [line for line in lines if '"level": "error"' in line]
        report.served = _served(lines)
    return report


async def _deliver(
    args: argparse.Namespace,
    rng: random.Random,
    report: Report,
    fake: FakeGitHub,
    database: EmbeddedMongo,
    service_url: str,
) -> None:
    bearer = issue_development_token(Settings(auth_jwt_secret=Secret(JWT_SECRET)), "alice")
    limits = httpx.Limits(max_connections=args.concurrency + 10)
    async with httpx.AsyncClient(base_url=service_url, timeout=30, limits=limits) as http:
        link_id = await _link(http, bearer)
        hook = fake.repository(REPOSITORY).hooks[0]
        await fake.outbox.flush(http)  # the ping
        plan = _plan(args, rng, report, fake)
        mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database.uri, tz_aware=True)
        gate = asyncio.Semaphore(args.concurrency)
        sent = 0
        outage_task: asyncio.Task[None] | None = None
        back_at = 0.0
        started = time.monotonic()

        async def outage() -> None:
            nonlocal back_at
            down_at = time.monotonic()
            await asyncio.to_thread(database.stop)
            await asyncio.sleep(args.outage_seconds)
            await asyncio.to_thread(database.start, port=database.port)
            back_at = time.monotonic()
            report.outage = (down_at - started, back_at - started)

        async def send(outgoing: Outgoing) -> None:
            nonlocal sent, outage_task
            async with gate:
                attempt = await fake.outbox.send(http, outgoing)
                sent += 1
                report.answers.append((attempt.seconds, attempt.status, attempt.status == 503))
                if outage_task is None and sent >= args.outage_at * len(plan):
                    outage_task = asyncio.create_task(outage())

        async with fake.outbox.pumping(http, concurrency=8):  # the redeliveries the catch-up asks for
            await asyncio.gather(*(send(outgoing) for outgoing in plan))
            if outage_task is not None:
                await outage_task
            report.seconds = time.monotonic() - started
            events = mongo[DATABASE]["repository_events"]
            deadline = time.monotonic() + args.settle
            while time.monotonic() < deadline:
                stored = {
                    doc["deliveryId"] async for doc in events.find({"linkId": link_id}, {"deliveryId": 1})
                }
                if report.good <= stored:
                    report.caught_up_after = time.monotonic() - (back_at or started)
                    break
                await asyncio.sleep(0.2)
        cursor = mongo[DATABASE]["repository_events"].find({"linkId": link_id}).sort("sequence", 1)
        docs = [doc async for doc in cursor]
        report.stored = [doc["deliveryId"] for doc in docs]
        report.sequences = [int(doc["sequence"]) for doc in docs]
        report.redeliveries = sum(1 for d in hook.deliveries if d["redelivery"])
        await mongo.close()


async def _link(http: httpx.AsyncClient, bearer: str) -> str:
    headers = {"Authorization": f"Bearer {bearer}"}

    async def graphql(query: str, variables: dict[str, Any]) -> Any:
        response = await http.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
        body = response.json()
        assert "errors" not in body, body
        return body["data"]

    connected = await graphql(
        "mutation($t: String!) { connectGitToken(input: {provider: GITHUB, token: $t}) { ... on Integration { id } } }",
        {"t": scenarios.GITHUB_CLASSIC_TOKEN},
    )
    integration = from_global_id(connected["connectGitToken"]["id"])
    assert integration is not None
    linked = await graphql(
        "mutation($r: ID!) { linkRepository(input: {repositoryId: $r}) { __typename ... on RepositoryLink { webhookUrl } } }",
        {"r": repository_global_id(integration[1], REPOSITORY)},
    )
    return str(linked["linkRepository"]["webhookUrl"]).rsplit("/", 1)[1]


def _plan(args: argparse.Namespace, rng: random.Random, report: Report, fake: FakeGitHub) -> list[Outgoing]:
    """Every delivery to send: good pushes (logged by the fake), duplicates of some, badly signed ones."""
    total = args.deliveries
    bad, duplicates = round(total * args.bad), round(total * args.duplicates)
    for n in range(total - bad - duplicates):
        fake.push(REPOSITORY, message=f"commit {n}")
    good = fake.outbox.take_all()
    report.good = {o.delivery_id for o in good}
    again = [_copy(o, redelivery=True) for o in rng.sample(good, duplicates)]
    wrong = []
    for n in range(bad):
        # Forged by someone else, not sent by the host: nothing of it is in the host's delivery log.
        fake.push(REPOSITORY, message=f"forged {n}")
        [pushed] = fake.outbox.take_all()
        headers = pushed.headers | sign("not the secret", pushed.body)
        wrong.append(Outgoing(pushed.url, headers, pushed.body, pushed.delivery_id))
    report.bad = {o.delivery_id for o in wrong}
    report.duplicates, report.deliveries = duplicates, total
    plan = good + again + wrong
    rng.shuffle(plan)
    return plan


def _served(lines: list[str]) -> list[tuple[float, int]]:
    """(seconds, status) of every webhook request in the service's request log."""
    served = []
    for line in lines:
        if '"/webhooks/' not in line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if str(entry.get("path", "")).startswith("/webhooks/") and "duration_ms" in entry:
            served.append((float(entry["duration_ms"]) / 1000, int(entry.get("status", 0))))
    return served


def _copy(outgoing: Outgoing, *, redelivery: bool) -> Outgoing:
    return Outgoing(
        outgoing.url, dict(outgoing.headers), outgoing.body, outgoing.delivery_id, redelivery, outgoing.record
    )


def main(argv: list[str] | None = None) -> int:
    report = asyncio.run(run(parse_args(argv)))
    print(markdown(report))
    return 0 if report.ok else 1


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
