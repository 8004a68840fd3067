"""Nothing the host logged as failed stays lost: the catch-up reads the hosts' delivery logs and has the
failed deliveries sent again — after a database outage, after the whole service was away, and on every
link check — with bounded work, and marks a link BROKEN when its hook is gone.

The database fails on purpose through SecantusDB's ``configureFailPoint`` (scoped to the service's own
client); "the service was away" is a delivery the fake host could not connect for (logged with status 0,
as GitHub logs a refused connection).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from app.services import catch_up
from app.settings.model import Settings
from app.settings.values import Secret
from app.storage.mongo import EmbeddedMongo
from tests.deploy_support import (
    GITHUB_REPOSITORY,
    GITHUB_TOKEN,
    GITLAB_PROJECT,
    GITLAB_TOKEN,
    World,
    deploy_world,
    gitlab_project_id,
)

APP_NAME = "git-integrations"


@pytest.fixture(scope="module")
def failpoint_server() -> Iterator[EmbeddedMongo]:
    embedded = EmbeddedMongo(":memory:")
    embedded.start(test_commands=True)
    try:
        yield embedded
    finally:
        embedded.stop()


@contextlib.asynccontextmanager
async def failing(server: EmbeddedMongo, commands: list[str], **data: Any) -> AsyncIterator[None]:
    admin: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(server.uri)
    try:
        await admin.admin.command(
            {
                "configureFailPoint": "failCommand",
                "mode": "alwaysOn",
                "data": {"failCommands": commands, "appName": APP_NAME, **(data or {"errorCode": 6})},
            }
        )
        yield
    finally:
        await admin.admin.command({"configureFailPoint": "failCommand", "mode": "off"})
        await admin.close()


@pytest.fixture
async def world(settings: Settings, failpoint_server: EmbeddedMongo) -> AsyncIterator[World]:
    async with deploy_world(replace(settings, mongodb_uri=Secret(failpoint_server.uri))) as opened:
        yield opened


async def github_link(world: World) -> dict[str, Any]:
    integration = await world.connect("GITHUB", GITHUB_TOKEN)
    link = await world.link(integration, GITHUB_REPOSITORY)
    assert link["__typename"] == "RepositoryLink", link
    await world.deliver(world.github)  # the ping
    return link


async def stored_ids(world: World, link: dict[str, Any]) -> list[str]:
    events = await world.events(link["id"], first=100)
    return [edge["node"]["deliveryId"] for edge in events["events"]["edges"]]


def unreachable() -> httpx.AsyncClient:
    """A client for the fake host that cannot connect: the service is down."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    return httpx.AsyncClient(transport=httpx.MockTransport(refuse))


async def test_deliveries_answered_503_during_an_outage_are_redelivered_once_the_database_is_back(
    world: World, failpoint_server: EmbeddedMongo
) -> None:
    link = await github_link(world)
    async with failing(failpoint_server, ["insert"]):
        guids = [g for _ in range(3) for g in world.github.push(GITHUB_REPOSITORY)]
        attempts = await world.deliver(world.github)
        await world.app.services.events.drain()  # the writes given up on are over
    assert [a.status for a in attempts] == [503, 503, 503]
    assert await stored_ids(world, link) == []

    looked = await world.app.services.catch_up.tick()
    redeliveries = await world.deliver(world.github)

    assert looked == 1
    assert sorted(a.delivery_id for a in redeliveries) == sorted(guids)
    assert all(a.redelivery and a.status == 200 for a in redeliveries)
    assert sorted(await stored_ids(world, link)) == sorted(guids)
    assert await world.app.services.catch_up.tick() == 0, "the mark is cleared: nothing is due"
    assert world.github.outbox.pending() == 0


async def test_a_receiver_answers_503_within_a_second_while_the_database_hangs(
    world: World, failpoint_server: EmbeddedMongo
) -> None:
    link = await github_link(world)
    world.github.push(GITHUB_REPOSITORY)

    async with failing(failpoint_server, ["find"], blockConnection=True, blockTimeMS=5000):
        started = time.monotonic()
        [attempt] = await world.deliver(world.github)
        seconds = time.monotonic() - started

    assert attempt.status == 503 and seconds < 1.5
    assert await stored_ids(world, link) == []


async def test_deliveries_nobody_answered_are_caught_up_when_the_service_starts_after_a_gap(
    settings: Settings, failpoint_server: EmbeddedMongo
) -> None:
    configured = replace(settings, mongodb_uri=Secret(failpoint_server.uri))
    async with deploy_world(configured) as world:
        link = await github_link(world)
        await world.app.services.catch_up.tick()  # this process has served deliveries
        guids = world.github.push(GITHUB_REPOSITORY) + world.github.push(GITHUB_REPOSITORY, tag="v1")
        async with unreachable() as down:
            attempts = await world.github.outbox.flush(down)  # every replica is down
        assert [a.status for a in attempts] == [0, 0]
        markers = world.app.services.database.db["service_markers"]
        await markers.update_one(
            {"_id": "deliveries"}, {"$set": {"aliveAt": world.app.services.clock() - timedelta(minutes=10)}}
        )
    async with deploy_world(configured, github=world.github, gitlab=world.gitlab) as restarted:
        assert await restarted.app.services.catch_up.tick() == 1
        await restarted.deliver(world.github)
        assert sorted(await stored_ids(restarted, link)) == sorted(guids)


async def test_linking_again_catches_up(world: World) -> None:
    link = await github_link(world)
    guids = world.github.push(GITHUB_REPOSITORY)
    async with unreachable() as down:
        await world.github.outbox.flush(down)

    again = await world.link(await world.connect("GITHUB", GITHUB_TOKEN), GITHUB_REPOSITORY)
    assert await world.app.services.catch_up.tick() == 1
    redeliveries = await world.deliver(world.github)

    assert again["id"] == link["id"]
    assert [a.delivery_id for a in redeliveries] == guids
    assert await stored_ids(world, link) == guids


async def test_a_hook_deleted_at_the_host_is_found_by_the_catch_up_and_the_link_shows_broken(
    world: World, failpoint_server: EmbeddedMongo
) -> None:
    link = await github_link(world)
    async with failing(failpoint_server, ["insert"]):
        world.github.push(GITHUB_REPOSITORY)
        await world.deliver(world.github)
        await world.app.services.events.drain()
    world.github.repository(GITHUB_REPOSITORY).hooks.clear()

    await world.app.services.catch_up.tick()

    [found] = (await world.alice.data("{ repositoryLinks { status statusMessage } }"))["repositoryLinks"]
    assert found["status"] == "BROKEN" and "deleted" in found["statusMessage"]
    repaired = await world.link(await world.connect("GITHUB", GITHUB_TOKEN), GITHUB_REPOSITORY)
    assert repaired["status"] == "ACTIVE" and repaired["id"] == link["id"]


async def test_gitlab_deliveries_are_resent_from_the_hook_events(world: World) -> None:
    integration = await world.connect("GITLAB", GITLAB_TOKEN)
    link = await world.link(integration, gitlab_project_id(world, GITLAB_PROJECT))
    keys = world.gitlab.push(GITLAB_PROJECT)
    async with unreachable() as down:
        await world.gitlab.outbox.flush(down)

    await world.link(integration, gitlab_project_id(world, GITLAB_PROJECT))
    await world.app.services.catch_up.tick()
    resent = await world.deliver(world.gitlab)

    assert [a.status for a in resent] == [200]
    assert await stored_ids(world, link) == keys


async def test_one_look_is_bounded_and_deliveries_tried_too_often_are_given_up(world: World) -> None:
    link = await github_link(world)
    for _ in range(catch_up.MAX_REDELIVERIES + 10):  # more than one look redelivers
        world.github.push(GITHUB_REPOSITORY)
    async with unreachable() as down:
        await world.github.outbox.flush(down)
        hook = world.github.repository(GITHUB_REPOSITORY).hooks[0]
        tried_often = hook.deliveries[-1]
        for _ in range(catch_up.MAX_ATTEMPTS - 1):  # the host tried this one four times already
            world.github.enqueue(
                world.github.repository(GITHUB_REPOSITORY), hook, "push", tried_often["_request"]["body"],
                tried_often["guid"], redelivery=True,
            )  # fmt: skip
        await world.github.outbox.flush(down)
    await world.link(await world.connect("GITHUB", GITHUB_TOKEN), GITHUB_REPOSITORY)
    world.github.clear_requests()

    assert await world.app.services.catch_up.tick() == 1

    assert world.github.count("POST", f"/repos/{GITHUB_REPOSITORY}/hooks") == catch_up.MAX_REDELIVERIES
    log_reads = world.github.count("GET", f"/repos/{GITHUB_REPOSITORY}/hooks/{hook.id}/deliveries")
    assert 1 <= log_reads <= catch_up.LOG_PAGES
    queued = {o.delivery_id for o in world.github.outbox.take_all()}
    assert len(queued) == catch_up.MAX_REDELIVERIES and tried_often["guid"] not in queued
    [doc] = [
        d
        async for d in world.app.services.database.db["repository_links"].find(
            {"_id": link["webhookUrl"].rsplit("/", 1)[1]}
        )
    ]
    assert doc["catchUp"]["attempts"] == 0, "the rest waits for the next look, which is no failure"
    assert doc["catchUp"]["dueAt"] > world.app.services.clock()

    # The next look (made due now) asks for the rest only: the first hundred may still be on their way.
    links = world.app.services.database.db["repository_links"]
    await links.update_one({"_id": doc["_id"]}, {"$set": {"catchUp.dueAt": world.app.services.clock()}})
    assert await world.app.services.catch_up.tick() == 1
    again = {o.delivery_id for o in world.github.outbox.take_all()}
    assert len(again) == 9 and not again & queued


async def test_a_host_that_cannot_be_asked_is_asked_again_later_with_back_off(
    world: World, failpoint_server: EmbeddedMongo
) -> None:
    await github_link(world)
    async with failing(failpoint_server, ["insert"]):
        world.github.push(GITHUB_REPOSITORY)
        await world.deliver(world.github)
        await world.app.services.events.drain()
    world.github.fail_next(503, count=20, path_prefix="/repos")

    await world.app.services.catch_up.tick()

    [doc] = [d async for d in world.app.services.database.db["repository_links"].find({})]
    assert doc["catchUp"]["attempts"] == 1
    assert doc["catchUp"]["dueAt"] > world.app.services.clock()
    assert "catchUpLease" not in doc
    world.github.clear_faults()
