"""The hosts of ``bench.picker``: the fakes' worlds, the serial clients it compares with, the host floor."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from app.net.pagination import PER_PAGE

REQUIRED_GITLAB_SCOPES = ["api", "read_repository", "write_repository"]
BRANCH_REPOSITORY = "ghbranches/big"
# 5,000 branches: 2,500 under release/ (the prefix searched), 2,500 others.
BRANCH_NAMES = [f"release/{n:04d}" for n in range(1, 2501)] + [
    f"feature/{n:04d}-work" for n in range(1, 2501)
]
PROTECTED = ["release/0001", "release/0002"]


def github_token(size: int) -> str:
    return f"ghp_bench{size}x".ljust(40, "0")


def gitlab_token(size: int) -> str:
    return f"glpat-bench{size}x".ljust(26, "0")


def github_world(size: int) -> dict[str, Any]:
    return {
        "config": {"fast_lists": True},
        "users": [f"gh{size}"],
        "repositories": [{"owner": f"gh{size}", "count": size, "archived_every": 10, "branches_per_repo": 1}],
        "classic_tokens": [
            {"token": github_token(size), "user": f"gh{size}", "scopes": ["repo", "admin:repo_hook"]}
        ],
    }


def gitlab_world(size: int) -> dict[str, Any]:
    return {
        "config": {"fast_lists": True},
        "users": [f"gl{size}"],
        "projects": [{"namespace": f"gl{size}", "count": size, "branches_per_project": 1}],
        "personal_tokens": [
            {"token": gitlab_token(size), "user": f"gl{size}", "scopes": REQUIRED_GITLAB_SCOPES}
        ],
    }


def branch_world(kind: str) -> dict[str, Any]:
    """One repository of 5,000 branches (``BRANCH_REPOSITORY``, ``glbranches/big`` on GitLab)."""
    if kind == "github":
        owner = BRANCH_REPOSITORY.split("/")[0]
        return {
            "users": [owner],
            "repositories": [{"owner": owner, "name": "big", "protected": ["main"]}],
            "branches": [{"repository": BRANCH_REPOSITORY, "names": BRANCH_NAMES, "protected": PROTECTED}],
            "classic_tokens": [
                {"token": github_token(0), "user": owner, "scopes": ["repo", "admin:repo_hook"]}
            ],
        }
    return {
        "users": ["glbranches"],
        "projects": [{"namespace": "glbranches", "name": "big"}],
        "branches": [{"project": "glbranches/big", "names": BRANCH_NAMES, "protected": PROTECTED}],
        "personal_tokens": [
            {"token": gitlab_token(0), "user": "glbranches", "scopes": REQUIRED_GITLAB_SCOPES}
        ],
    }


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
            {"affiliation": "owner,collaborator,organization_member", "sort": "full_name"},
            {"Authorization": f"Bearer {token}"},
        )
    else:
        url, params, headers = (
            f"{base}/api/v4/projects",
            {"membership": "true", "min_access_level": "40", "order_by": "id", "sort": "asc"},
            {"PRIVATE-TOKEN": token},
        )
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=200)) as http:

        async def page(number: int, etag: str | None = None) -> httpx.Response:
            extra = {"If-None-Match": etag} if etag else {}
            return await http.get(
                url, params={**params, "per_page": PER_PAGE, "page": number}, headers={**headers, **extra}
            )

        # Twice, the second counted: the fake renders each page once (``fast_lists``) and the first
        # pass would charge that rendering to the floor, which the service's later samples never pay.
        for _ in range(2):
            started = time.perf_counter()
            first = await page(1)
            rest = await asyncio.gather(*(page(n) for n in range(2, pages + 1)))
            cold = time.perf_counter() - started
            etags = [r.headers.get("etag") for r in [first, *rest]]
            started = time.perf_counter()
            await asyncio.gather(*(page(n, etags[n - 1]) for n in range(1, pages + 1)))
            revalidated = time.perf_counter() - started
        return cold, revalidated
