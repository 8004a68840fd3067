"""Benchmark of the repository picker: ``.venv/bin/python -m bench.picker`` (not a test).

What runs:

- the fake GitHub and fake GitLab (``tests/fakes``), each a real uvicorn server in its own process on
  loopback, adding ``--delay`` seconds (default 0.1) to every request: one process per account of
  100, 1,000, 5,000 and 10,000 repositories, and one per host for a repository of 5,000 branches.
  The fakes keep each filtered list between pages (``fast_lists``: a real host does not filter its
  whole world again for every page); pages are rendered in full;
- this service as built by ``create_app`` (its own HTTP client, the embedded database), in process
  through ``tests.harness.running_app``, queried over ASGI;
- PyGithub and python-gitlab listing the same accounts page after page (the ``bench`` dependency
  group: ``make bench``), up to 5,000 repositories;
- a bare Strawberry app answering the warm first page from memory (``bench.floor``).

Cases (medians; the ideal is the fewest round trips the host's pagination allows, times the delay):

- *first page, cold*: ``repositories(first: 30) { totalCount … }``, nothing stored. Ideal: one round
  (the host's newest-first page and its count side by side). Upstream requests include the whole
  list walked in the background meanwhile.
- *whole list, cold*: a search that every repository matches (a search waits for the whole list).
  Ideal: two rounds, page 1 and then every other page at once (one for a single page).
- *warm*: the first page again within ``REPOSITORY_CACHE_SECONDS``. Ideal: no request.
- *revalidated (304s)*: the same search with ``refresh: true``: every stored page asked again with its
  ETag. Ideal: one round.
- branches of a 5,000-branch repository: *prefix search* ``branches(search: "release/", first: 30)``
  and *substring search* ``branches(search: "0042") { totalCount … }``, cold; *warm* the prefix search
  again.
- *warm throughput*: warm first pages one after another for ``--seconds``, beside the bare Strawberry
  app answering the same document (the floor).

The *host floor* is the cold or revalidation pattern measured with bare ``httpx`` requests and no work:
what the fakes themselves cost beyond the delay.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from app.net.client import FIRST_WINDOW, MAX_WINDOW
from app.net.pagination import PER_PAGE
from app.security.auth import issue_development_token
from app.settings.model import Settings
from app.settings.values import EncryptionKey, Secret
from app.storage.mongo import EmbeddedMongo
from bench.floor import bare_app, throughput
from bench.picker_hosts import (
    BRANCH_REPOSITORY,
    branch_world,
    github_token,
    github_world,
    gitlab_token,
    gitlab_world,
    host_floor,
    serial_github,
    serial_gitlab,
)
from tests.harness import ServedApp, fake_host_process, running_app

SIZES = (100, 1000, 5000, 10000)
SERIAL_UP_TO = 5000
FIELDS = (
    "edges { cursor node { id name fullName private archived defaultBranch pushedAt viewerCanAdminister } }"
)
FIRST_PAGE = f"""query First($id: ID!) {{ integration(id: $id) {{
  repositories(first: 30) {{ totalCount {FIELDS} pageInfo {{ hasNextPage endCursor }} }} }} }}"""
SEARCH = f"""query Search($id: ID!, $search: String!, $refresh: Boolean!) {{ integration(id: $id) {{
  repositories(first: 30, search: $search, refresh: $refresh) {{ totalCount {FIELDS} }} }} }}"""
REPOSITORY = """query Repo($id: ID!, $search: String!) { integration(id: $id) {
  repositories(first: 1, search: $search) { edges { node { id } } } } }"""
PREFIX = """query Prefix($id: ID!) { node(id: $id) { ... on Repository {
  branches(search: "release/", first: 30) { edges { node { name protected } } pageInfo { hasNextPage } } } } }"""
SUBSTRING = """query Substring($id: ID!) { node(id: $id) { ... on Repository {
  branches(search: "0042", first: 30) { totalCount edges { node { name protected } } } } } }"""
CONNECT = """mutation Connect($input: ConnectGitTokenInput!) {
  connectGitToken(input: $input) { __typename ... on Integration { id } ... on Error { message } }
}"""


@dataclass
class Row:
    host: str
    size: str
    case: str
    seconds: float
    upstream: int
    ideal_rounds: int
    ideal_requests: int
    delay: float
    serial_seconds: float | None = None
    floor_seconds: float | None = None

    def cells(self) -> list[str]:
        ideal = self.ideal_rounds * self.delay
        ratio = f"{self.seconds / ideal:.2f}x" if ideal else "-"
        serial = (
            f"{self.serial_seconds * 1000:,.0f} ms ({self.seconds / self.serial_seconds:.2f})"
            if self.serial_seconds
            else ""
        )
        return [
            self.host,
            self.size,
            self.case,
            f"{self.seconds * 1000:,.1f} ms",
            f"{self.upstream} ({self.ideal_requests})",
            f"{ideal * 1000:,.0f} ms",
            ratio,
            f"{self.floor_seconds * 1000:,.0f} ms" if self.floor_seconds is not None else "-",
            serial,
        ]


HEADER = [
    "host",
    "size",
    "case",
    "wall time",
    "upstream requests (ideal)",
    "ideal",
    "time / ideal",
    "host floor",
    "serial client (ours / theirs)",
]


def table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    return "\n".join(lines)


class Picker:
    """The service under test, reached over ASGI like a browser would."""

    def __init__(self, app: ServedApp, http: httpx.AsyncClient, settings: Settings) -> None:
        self.app = app
        self.http = http
        self.headers = {"Authorization": f"Bearer {issue_development_token(settings, 'bench-user')}"}

    async def execute(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        response = await self.post(query, variables)
        body: dict[str, Any] = response.json()
        if body.get("errors"):
            raise RuntimeError(json.dumps(body["errors"]))
        return body

    async def post(self, query: str, variables: dict[str, Any]) -> httpx.Response:
        return await self.http.post(
            "/graphql", json={"query": query, "variables": variables}, headers=self.headers
        )

    async def connect(self, provider: str, token: str) -> tuple[str, str]:
        body = await self.execute(CONNECT, {"input": {"provider": provider, "token": token}})
        result = body["data"]["connectGitToken"]
        if result["__typename"] != "Integration":
            raise RuntimeError(result)
        global_id = str(result["id"])
        local = base64.urlsafe_b64decode(global_id + "=" * (-len(global_id) % 4)).decode().partition(":")[2]
        return global_id, local

    async def settle(self) -> None:
        await self.app.services.catalog.drain()
        await self.app.services.branches.drain()

    async def forget(self, integration: str) -> None:
        await self.settle()
        await self.app.services.listings.delete_for_integration(integration)

    async def forget_branches(self, integration: str) -> None:
        """Drop the stored branch lists only: the repository a branch query names stays listed."""
        await self.settle()
        cache = self.app.services.database.db["repository_cache"]
        await cache.delete_many({"integrationId": integration, "kind": "branches"})


async def requests_made(control: httpx.AsyncClient, base: str) -> int:
    state = (await control.get(f"{base}/_fake/state")).json()
    return int(state["requests"])


class Sampler:
    """Times one query and counts what the host saw, background work included."""

    def __init__(self, picker: Picker, control: httpx.AsyncClient, base: str) -> None:
        self.picker, self.control, self.base = picker, control, base

    async def __call__(
        self, query: str, variables: dict[str, Any], check: Callable[[dict[str, Any]], None] | None = None
    ) -> tuple[float, int]:
        before = await requests_made(self.control, self.base)
        started = time.perf_counter()
        body = await self.picker.execute(query, variables)
        elapsed = time.perf_counter() - started
        if check is not None:
            check(body)
        await self.picker.settle()
        return elapsed, await requests_made(self.control, self.base) - before


def settings_for(mongo_uri: str, tmp: str, base: str, name: str) -> Settings:
    return Settings(
        mongodb_uri=Secret(mongo_uri),
        mongodb_database=name,
        data_dir=Path(tmp),
        encryption_keys=(EncryptionKey("bench", Secret(base64.b64encode(b"k" * 32).decode())),),
        auth_jwt_secret=Secret("bench-secret-" + "x" * 40),
        github_url=base,
        github_api_url=base,
        gitlab_url=base,
        repository_cache_seconds=3600,
        log_level="WARNING",
    )


def median_row(
    host: str,
    size: str,
    case: str,
    samples: list[tuple[float, int]],
    rounds: int,
    requests: int,
    delay: float,
    **extra: Any,
) -> Row:
    return Row(
        host,
        size,
        case,
        statistics.median(s for s, _ in samples),
        max(n for _, n in samples),
        rounds,
        requests,
        delay,
        **extra,
    )


async def measure_listing(
    args: argparse.Namespace,
    picker: Picker,
    sample: Sampler,
    host: str,
    kind: str,
    base: str,
    size: int,
) -> tuple[list[Row], dict[str, Any]]:
    provider, token = ("GITHUB", github_token(size)) if kind == "github" else ("GITLAB", gitlab_token(size))
    global_id, local = await picker.connect(provider, token)
    pages, delay, label = max(1, math.ceil(size / PER_PAGE)), args.delay, f"{size:,}"
    everything = "repo" if kind == "github" else "project"  # every name contains it

    def total_is(expected: int) -> Callable[[dict[str, Any]], None]:
        def check(body: dict[str, Any]) -> None:
            assert body["data"]["integration"]["repositories"]["totalCount"] == expected, body

        return check

    first, whole, warm, revalidated = [], [], [], []
    for _ in range(args.runs):
        await picker.forget(local)
        first.append(await sample(FIRST_PAGE, {"id": global_id}, total_is(size)))
    for _ in range(args.runs):
        await picker.forget(local)
        whole.append(
            await sample(SEARCH, {"id": global_id, "search": everything, "refresh": False}, total_is(size))
        )
    await sample(FIRST_PAGE, {"id": global_id})  # the whole list stored (GitLab's search kept its own)
    for _ in range(args.runs * 3):
        warm.append(await sample(FIRST_PAGE, {"id": global_id}, total_is(size)))
    for _ in range(args.runs):
        revalidated.append(await sample(SEARCH, {"id": global_id, "search": everything, "refresh": True}))
    serial = None
    if size <= SERIAL_UP_TO and args.serial_runs:
        run = serial_github if kind == "github" else serial_gitlab
        serial = statistics.median(
            [await asyncio.to_thread(run, base, token) for _ in range(args.serial_runs)]
        )
    floors = [await host_floor(base, provider, token, pages) for _ in range(args.runs)]
    head_requests = 2 if kind == "github" else 1
    rows = [
        median_row(host, label, "first page, cold", first, 1, pages + head_requests, delay),
        median_row(
            host,
            label,
            "whole list, cold",
            whole,
            1 if pages == 1 else 2,
            pages,
            delay,
            serial_seconds=serial,
            floor_seconds=statistics.median(f[0] for f in floors),
        ),
        median_row(host, label, "warm", warm, 0, 0, delay),
        median_row(
            host,
            label,
            "revalidated (304s)",
            revalidated,
            1,
            pages,
            delay,
            floor_seconds=statistics.median(f[1] for f in floors),
        ),
    ]
    answer = await picker.execute(FIRST_PAGE, {"id": global_id})
    return rows, {"id": global_id, "answer": answer}


async def measure_branches(
    args: argparse.Namespace, picker: Picker, sample: Sampler, host: str, kind: str
) -> list[Row]:
    provider, token = ("GITHUB", github_token(0)) if kind == "github" else ("GITLAB", gitlab_token(0))
    global_id, local = await picker.connect(provider, token)
    name = BRANCH_REPOSITORY if kind == "github" else BRANCH_REPOSITORY.replace("gh", "gl")
    found = await picker.execute(REPOSITORY, {"id": global_id, "search": name.split("/")[1]})
    repository = found["data"]["integration"]["repositories"]["edges"][0]["node"]["id"]
    prefix, substring, warm = [], [], []
    for _ in range(args.runs):
        await picker.forget_branches(local)
        prefix.append(await sample(PREFIX, {"id": repository}))
    for _ in range(args.runs):
        await picker.forget_branches(local)
        substring.append(await sample(SUBSTRING, {"id": repository}))
    await sample(PREFIX, {"id": repository})  # stored again (GitLab keeps a list per search)
    for _ in range(args.runs * 3):
        warm.append(await sample(PREFIX, {"id": repository}))
    # GitHub: the prefix's matching refs with ?protected=true, the whole list (matching-refs/heads and
    # ?protected=true) beside them. GitLab: page 1 of its "^release/" search, and beside it the list of
    # every match (2,500 in 25 pages) for the next pages; the substring search: 1 page.
    if kind == "github":
        return [
            median_row(host, "5,000 branches", "prefix search, cold", prefix, 1, 4, args.delay),
            median_row(host, "5,000 branches", "substring search, cold", substring, 1, 2, args.delay),
            median_row(host, "5,000 branches", "warm", warm, 0, 0, args.delay),
        ]
    return [
        median_row(host, "5,000 branches", "prefix search, cold", prefix, 1, 26, args.delay),
        median_row(host, "5,000 branches", "substring search, cold", substring, 1, 1, args.delay),
        median_row(host, "5,000 branches", "warm", warm, 0, 0, args.delay),
    ]


async def warm_throughput(
    args: argparse.Namespace, picker: Picker, target: dict[str, Any]
) -> dict[str, float]:
    async def ours() -> httpx.Response:
        return await picker.post(FIRST_PAGE, {"id": target["id"]})

    bare = bare_app(target["answer"])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=bare), base_url="http://bare") as http:

        async def floor() -> httpx.Response:
            return await http.post("/graphql", json={"query": FIRST_PAGE, "variables": {"id": target["id"]}})

        results = {"bare Strawberry (floor)": await throughput(floor, args.seconds)}
        results["this service, warm (answers kept)"] = await throughput(ours, args.seconds)
        kept = picker.app.state.pop("answers")  # the same, every answer resolved again
        try:
            results["this service, warm, every answer resolved"] = await throughput(ours, args.seconds)
        finally:
            picker.app.state["answers"] = kept
    return results


async def run(args: argparse.Namespace) -> tuple[list[Row], dict[str, float]]:
    rows: list[Row] = []
    rates: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp, EmbeddedMongo(":memory:") as mongo:
        for host, kind in (("GitHub", "github"), ("GitLab", "gitlab")):
            worlds: list[tuple[str, dict[str, Any]]] = [
                (f"{size}", (github_world if kind == "github" else gitlab_world)(size)) for size in args.sizes
            ]
            if args.branches:
                worlds.append(("branches", branch_world(kind)))
            for label, world in worlds:
                # One fake per account: what one account costs the host is not charged to another.
                with fake_host_process(kind, world, Path(tmp), delay=args.delay) as (base, _):
                    settings = settings_for(mongo.uri, tmp, base, f"bench_{kind}_{label}")
                    async with (
                        running_app(settings) as app,
                        httpx.AsyncClient(
                            transport=httpx.ASGITransport(app=app), base_url="http://picker", timeout=300
                        ) as http,
                        httpx.AsyncClient(timeout=30) as control,
                    ):
                        picker = Picker(app, http, settings)
                        sample = Sampler(picker, control, base)
                        if label == "branches":
                            measured = await measure_branches(args, picker, sample, host, kind)
                        else:
                            measured, target = await measure_listing(
                                args, picker, sample, host, kind, base, int(label)
                            )
                            if kind == "github" and int(label) == args.throughput_size and args.seconds:
                                rates = await warm_throughput(args, picker, target)
                    rows += measured
                    print(table(measured), file=sys.stderr)
    return rows, rates


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.picker", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--delay", type=float, default=0.1, help="seconds each fake host adds to every request"
    )
    parser.add_argument("--sizes", type=int, nargs="*", default=list(SIZES), help="none: only branches")
    parser.add_argument("--runs", type=int, default=3, help="samples per cold / revalidated case (median)")
    parser.add_argument("--serial-runs", type=int, default=1, help="samples of the serial clients (median)")
    parser.add_argument("--no-branches", dest="branches", action="store_false", help="skip the branch rows")
    parser.add_argument(
        "--seconds", type=float, default=5.0, help="length of each warm throughput run (0: skip)"
    )
    parser.add_argument("--throughput-size", type=int, default=5000, help="the GitHub account it runs on")
    args = parser.parse_args(argv)
    rows, rates = asyncio.run(run(args))
    print(
        f"delay {args.delay * 1000:.0f} ms per request; {FIRST_WINDOW} pages at a time at first, "
        f"up to {MAX_WINDOW}; medians\n"
    )
    print(table(rows))
    if rates:
        print(f"\nwarm first page, {args.throughput_size:,} repositories, requests one after another:\n")
        print("| server | requests / s |\n|---|---|")
        for server, rate in rates.items():
            print(f"| {server} | {rate:,.0f} |")


if __name__ == "__main__":
    main()
