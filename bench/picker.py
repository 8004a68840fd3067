"""Benchmark of the repository picker: ``.venv/bin/python -m bench.picker`` (not a test).

What runs:

- the fake GitHub and fake GitLab (``tests/fakes``), each a real uvicorn server in its own process on
  loopback, adding ``--delay`` seconds (default 0.1) to every request, with accounts of 100, 1,000
  and 5,000 repositories;
- this service as built by ``create_app`` (its own HTTP client, the embedded database), running in
  process through ``tests.harness.running_app`` (the harness the tests use), queried over ASGI with
  ``integration(id) { repositories(first: 30) { ... } }``;
- PyGithub and python-gitlab listing the same accounts (the ``bench`` dependency group: ``make bench``).

For each host and size it reports the wall time of the query cold (nothing cached), warm (within
``REPOSITORY_CACHE_SECONDS``) and revalidated (``refresh: true``: every page asked with its ETag), the
upstream requests each made, and the *ideal*: the fewest round trips the host's pagination allows
(cold: page 1, then every other page at once — two rounds, one for a single page; warm: none;
revalidated: every page at once, one round) times the delay, as a ratio. The serial clients' time
is the same listing walked page after page.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from app.composition import Services
from app.graphql.types.node import to_global_id
from app.net.client import MAX_CONCURRENT_PAGES
from app.net.pagination import PER_PAGE
from app.security.auth import issue_development_token
from app.settings import EncryptionKey, Secret, Settings
from app.storage.mongo import EmbeddedMongo
from tests.harness import fake_host_process, running_app

SIZES = (100, 1000, 5000)
QUERY = """query Picker($id: ID!, $refresh: Boolean!) {
  integration(id: $id) {
    repositories(first: 30, refresh: $refresh) {
      totalCount
      edges { cursor node { id name fullName private archived defaultBranch pushedAt } }
      pageInfo { hasNextPage endCursor }
    }
  }
}"""
CONNECT = """mutation Connect($input: ConnectGitTokenInput!) {
  connectGitToken(input: $input) { __typename ... on Integration { id } ... on Error { message } }
}"""
REQUIRED_GITLAB_SCOPES = ["api", "read_repository", "write_repository"]


def github_token(size: int) -> str:
    return f"ghp_bench{size}x".ljust(40, "0")


def gitlab_token(size: int) -> str:
    return f"glpat-bench{size}x".ljust(26, "0")


def github_world(sizes: tuple[int, ...]) -> dict[str, Any]:
    return {
        "users": [f"gh{size}" for size in sizes],
        "repositories": [
            {"owner": f"gh{size}", "count": size, "archived_every": 10, "branches_per_repo": 1}
            for size in sizes
        ],
        "classic_tokens": [
            {"token": github_token(size), "user": f"gh{size}", "scopes": ["repo", "admin:repo_hook"]}
            for size in sizes
        ],
    }


def gitlab_world(sizes: tuple[int, ...]) -> dict[str, Any]:
    return {
        "users": [f"gl{size}" for size in sizes],
        "projects": [{"namespace": f"gl{size}", "count": size} for size in sizes],
        "personal_tokens": [
            {"token": gitlab_token(size), "user": f"gl{size}", "scopes": REQUIRED_GITLAB_SCOPES}
            for size in sizes
        ],
    }


async def requests_made(http: httpx.AsyncClient, base: str) -> int:
    state = (await http.get(f"{base}/_fake/state")).json()
    return int(state["requests"])


@dataclass
class Row:
    host: str
    size: int
    case: str
    seconds: float
    upstream: int
    ideal_seconds: float
    ideal_requests: int
    serial_seconds: float | None = None
    floor_seconds: float | None = None

    def cells(self) -> list[str]:
        ratio = f"{self.seconds / self.ideal_seconds:.2f}x" if self.ideal_seconds else "-"
        serial = (
            f"{self.serial_seconds * 1000:,.0f} ms ({self.seconds / self.serial_seconds:.2f})"
            if self.serial_seconds
            else ""
        )
        return [
            self.host,
            f"{self.size:,}",
            self.case,
            f"{self.seconds * 1000:,.1f} ms",
            f"{self.upstream} ({self.ideal_requests})",
            f"{self.ideal_seconds * 1000:,.0f} ms",
            ratio,
            f"{self.floor_seconds * 1000:,.0f} ms" if self.floor_seconds is not None else "-",
            serial,
        ]


HEADER = [
    "host",
    "repos",
    "listing",
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

    def __init__(self, http: httpx.AsyncClient, settings: Settings) -> None:
        self.http = http
        self.headers = {"Authorization": f"Bearer {issue_development_token(settings, 'bench-user')}"}

    async def execute(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables}, headers=self.headers
        )
        body: dict[str, Any] = response.json()
        if body.get("errors"):
            raise RuntimeError(json.dumps(body["errors"]))
        return body

    async def connect(self, provider: str, token: str) -> str:
        body = await self.execute(CONNECT, {"input": {"provider": provider, "token": token}})
        result = body["data"]["connectGitToken"]
        if result["__typename"] != "Integration":
            raise RuntimeError(result)
        return str(result["id"])

    async def timed_listing(self, integration_id: str, *, refresh: bool) -> tuple[float, int]:
        started = time.perf_counter()
        body = await self.execute(QUERY, {"id": integration_id, "refresh": refresh})
        elapsed = time.perf_counter() - started
        return elapsed, int(body["data"]["integration"]["repositories"]["totalCount"])


def serial_github(base: str, token: str) -> float:
    from github import Auth, Github

    started = time.perf_counter()
    client = Github(base_url=base, auth=Auth.Token(token), per_page=PER_PAGE, retry=None)
    count = sum(1 for _ in client.get_user().get_repos(affiliation="owner,collaborator,organization_member"))
    elapsed = time.perf_counter() - started
    client.close()
    assert count > 0
    return elapsed


def serial_gitlab(base: str, token: str) -> float:
    import gitlab

    started = time.perf_counter()
    client = gitlab.Gitlab(base, private_token=token, per_page=PER_PAGE)
    projects = client.projects.list(membership=True, min_access_level=40, get_all=True)
    elapsed = time.perf_counter() - started
    assert projects
    return elapsed


async def host_floor(base: str, provider: str, token: str, pages: int) -> tuple[float, float]:
    """What the fewest round trips cost against this host, measured with bare requests and no work:
    (cold: page 1 then all others at once; revalidation: all pages at once with their ETags)."""
    if provider == "GITHUB":
        url, params, headers = (
            f"{base}/user/repos",
            {"affiliation": "owner,collaborator,organization_member"},
            {"Authorization": f"Bearer {token}"},
        )
    else:
        url, params, headers = (
            f"{base}/api/v4/projects",
            {"membership": "true", "min_access_level": "40"},
            {"PRIVATE-TOKEN": token},
        )
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=200)) as http:

        async def page(number: int, etag: str | None = None) -> httpx.Response:
            extra = {"If-None-Match": etag} if etag else {}
            return await http.get(
                url, params={**params, "per_page": PER_PAGE, "page": number}, headers={**headers, **extra}
            )

        started = time.perf_counter()
        first = await page(1)
        rest = await asyncio.gather(*(page(n) for n in range(2, pages + 1)))
        cold = time.perf_counter() - started
        etags = [r.headers.get("etag") for r in [first, *rest]]
        started = time.perf_counter()
        await asyncio.gather(*(page(n, etags[n - 1]) for n in range(1, pages + 1)))
        return cold, time.perf_counter() - started


def ideal_rounds_cold(pages: int) -> int:
    return 1 if pages == 1 else 2


async def run(args: argparse.Namespace) -> list[Row]:
    rows: list[Row] = []
    hosts = (
        ("GitHub", "github", "GITHUB", github_world, github_token, serial_github),
        ("GitLab", "gitlab", "GITLAB", gitlab_world, gitlab_token, serial_gitlab),
    )
    with tempfile.TemporaryDirectory() as tmp, EmbeddedMongo(":memory:") as mongo:
        for host, kind, provider, world, token_of, serial in hosts:
            for size in args.sizes:
                # One fake per account: the fakes filter their whole world on every request, so a
                # shared world would charge the 100-repository account for the 5,000 others.
                with fake_host_process(kind, world((size,)), Path(tmp), delay=args.delay) as (base, _):
                    settings = Settings(
                        mongodb_uri=Secret(mongo.uri),
                        mongodb_database=f"bench_{kind}_{size}",
                        data_dir=Path(tmp),
                        encryption_keys=(
                            EncryptionKey("bench", Secret(base64.b64encode(b"k" * 32).decode())),
                        ),
                        auth_jwt_secret=Secret("bench-secret-" + "x" * 40),
                        github_url=base,
                        github_api_url=base,
                        gitlab_url=base,
                        repository_cache_seconds=3600,
                        log_level="WARNING",
                    )
                    async with (
                        running_app(settings) as app,
                        httpx.AsyncClient(
                            transport=httpx.ASGITransport(app=app), base_url="http://picker", timeout=120
                        ) as http,
                        httpx.AsyncClient(timeout=30) as control,
                    ):
                        picker = Picker(http, settings)
                        measured = await measure(
                            args,
                            picker,
                            app.services,
                            control,
                            host,
                            base,
                            provider,
                            token_of(size),
                            size,
                            serial,
                        )
                    rows += measured
                    print(table(measured), file=sys.stderr)
    return rows


async def measure(
    args: argparse.Namespace,
    picker: Picker,
    services: Services,
    control: httpx.AsyncClient,
    host: str,
    base: str,
    provider: str,
    token: str,
    size: int,
    serial: Any,
) -> list[Row]:
    global_id = await picker.connect(provider, token)
    local_id = base64.urlsafe_b64decode(global_id + "=" * (-len(global_id) % 4)).decode().partition(":")[2]
    assert to_global_id("Integration", local_id) == global_id
    pages = max(1, math.ceil(size / PER_PAGE))
    delay = args.delay

    async def sample(*, refresh: bool, forget: bool) -> tuple[float, int]:
        if forget:
            await services.listings.delete_for_integration(local_id)
        before = await requests_made(control, base)
        seconds, total = await picker.timed_listing(global_id, refresh=refresh)
        assert total == size, (total, size)
        return seconds, await requests_made(control, base) - before

    cold = [await sample(refresh=False, forget=True) for _ in range(args.runs)]
    warm = [await sample(refresh=False, forget=False) for _ in range(args.runs * 3)]
    revalidated = [await sample(refresh=True, forget=False) for _ in range(args.runs)]
    serial_times = [await asyncio.to_thread(serial, base, token) for _ in range(args.serial_runs)]
    serial_seconds = statistics.median(serial_times)
    floors = [await host_floor(base, provider, token, pages) for _ in range(args.runs)]
    cold_floor = statistics.median(f[0] for f in floors)
    revalidation_floor = statistics.median(f[1] for f in floors)

    def row(
        case: str,
        samples: list[tuple[float, int]],
        ideal_rounds: int,
        ideal_requests: int,
        with_serial: bool,
        floor: float | None,
    ) -> Row:
        return Row(
            host=host,
            size=size,
            case=case,
            seconds=statistics.median(s for s, _ in samples),
            upstream=max(n for _, n in samples),
            ideal_seconds=ideal_rounds * delay,
            ideal_requests=ideal_requests,
            serial_seconds=serial_seconds if with_serial else None,
            floor_seconds=floor,
        )

    return [
        row("cold", cold, ideal_rounds_cold(pages), pages, True, cold_floor),
        row("warm", warm, 0, 0, False, None),
        row("revalidated (304s)", revalidated, 1, pages, False, revalidation_floor),
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.picker", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--delay", type=float, default=0.1, help="seconds each fake host adds to every request"
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--runs", type=int, default=3, help="samples per cold / revalidated case (median)")
    parser.add_argument("--serial-runs", type=int, default=1, help="samples of the serial clients (median)")
    args = parser.parse_args(argv)
    rows = asyncio.run(run(args))
    print(f"delay {args.delay * 1000:.0f} ms per request; {MAX_CONCURRENT_PAGES} pages at a time; medians\n")
    print(table(rows))


if __name__ == "__main__":
    main()
