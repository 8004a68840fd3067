"""The floor for a warm picker page: a bare Strawberry app that answers the same document with the same
data from memory (no caller, no database, no cache), served the same way (ASGI, in process).

Strawberry resolves every field of every node on each request; what a warm page of the service costs
beyond that is its own work (the caller's JWT, the integration and listing reads, the page cut).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import httpx
import strawberry
from strawberry.asgi import GraphQL


@strawberry.type
class BareRepository:
    id: strawberry.ID
    name: str
    full_name: str
    private: bool
    archived: bool
    default_branch: str | None
    pushed_at: datetime | None
    viewer_can_administer: bool


@strawberry.type
class BareEdge:
    cursor: str
    node: BareRepository


@strawberry.type
class BarePageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class BareConnection:
    total_count: int
    edges: list[BareEdge]
    page_info: BarePageInfo


def bare_app(answer: dict[str, Any]) -> GraphQL[None, None]:
    """A Strawberry app whose ``integration(id) { repositories(first, refresh) }`` is ``answer``."""
    found = answer["data"]["integration"]["repositories"]
    connection = BareConnection(
        total_count=found["totalCount"],
        edges=[
            BareEdge(
                cursor=edge["cursor"],
                node=BareRepository(
                    id=strawberry.ID(edge["node"]["id"]),
                    name=edge["node"]["name"],
                    full_name=edge["node"]["fullName"],
                    private=edge["node"]["private"],
                    archived=edge["node"]["archived"],
                    default_branch=edge["node"]["defaultBranch"],
                    pushed_at=datetime.fromisoformat(edge["node"]["pushedAt"])
                    if edge["node"]["pushedAt"]
                    else None,
                    viewer_can_administer=edge["node"]["viewerCanAdminister"],
                ),
            )
            for edge in found["edges"]
        ],
        page_info=BarePageInfo(
            has_next_page=found["pageInfo"]["hasNextPage"], end_cursor=found["pageInfo"]["endCursor"]
        ),
    )

    _ANSWERS["connection"] = connection
    return GraphQL(strawberry.Schema(query=Query), graphql_ide=None)


_ANSWERS: dict[str, BareConnection] = {}


@strawberry.type
class BareIntegration:
    @strawberry.field
    def repositories(self, first: int = 30, refresh: bool = False) -> BareConnection:
        return _ANSWERS["connection"]


@strawberry.type
class Query:
    @strawberry.field
    def integration(self, id: strawberry.ID) -> BareIntegration:
        return BareIntegration()


async def throughput(send: Callable[[], Awaitable[httpx.Response]], seconds: float) -> float:
    """Requests per second of ``send`` one after another for ``seconds`` (each must answer 200)."""
    for _ in range(20):  # warm up: parse caches, connection pools
        assert (await send()).status_code == 200
    done = 0
    started = time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        response = await send()
        assert response.status_code == 200 and b'"errors"' not in response.content, response.text
        done += 1
    return done / elapsed
