"""The receivers: signed deliveries from the fake hosts become events, exactly once; anything else is
answered and stores nothing. The events are read back as the deployer reads them."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from typing import Any

import httpx
import pytest

from app.hosts.github.deliveries import signature
from app.settings.model import Settings
from tests.deploy_support import (
    GITHUB_REPOSITORY,
    GITHUB_TOKEN,
    GITLAB_PROJECT,
    GITLAB_TOKEN,
    World,
    deploy_world,
    gitlab_project_id,
)


def test_the_github_signature_matches_githubs_own_test_vector() -> None:
    # provider-facts.md ("Webhooks and statuses"), from GitHub's "Validating webhook deliveries".
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert signature("It's a Secret to Everybody", b"Hello, World!") == expected


async def linked(world: World, provider: str = "GITHUB", branch: str | None = None) -> dict[str, Any]:
    if provider == "GITHUB":
        integration = await world.connect("GITHUB", GITHUB_TOKEN)
        link = await world.link(integration, GITHUB_REPOSITORY, branch)
    else:
        integration = await world.connect("GITLAB", GITLAB_TOKEN)
        link = await world.link(integration, gitlab_project_id(world, GITLAB_PROJECT), branch)
    assert link["__typename"] == "RepositoryLink", link
    return link


async def stored(world: World, link: dict[str, Any]) -> list[dict[str, Any]]:
    events = await world.events(link["id"], first=100)
    return [edge["node"] for edge in events["events"]["edges"]]


async def raw_events(world: World) -> list[dict[str, Any]]:
    return [doc async for doc in world.app.services.database.db["repository_events"].find({})]


# --- GitHub -------------------------------------------------------------------------------------


async def test_a_signed_push_to_the_linked_branch_is_stored_and_read_by_the_deployer(
    settings: Settings,
) -> None:
    async with deploy_world(settings) as world:
        link = await linked(world)
        [ping] = await world.deliver(world.github)  # GitHub pings a new hook
        assert ping.status == 200

        [guid] = world.github.push(GITHUB_REPOSITORY, message="Fix the login page\n\nDetails.")
        [attempt] = await world.deliver(world.github)

        assert attempt.status == 200
        [event] = await stored(world, link)
        branch = world.github.repository(GITHUB_REPOSITORY).branches["main"]
        assert event["kind"] == "PUSH" and event["ref"] == "refs/heads/main"
        assert event["after"] == branch.sha and event["before"] and event["before"] != branch.sha
        assert event["headCommitMessage"] == "Fix the login page\n\nDetails."
        assert event["pusher"] == "octocat" and event["deliveryId"] == guid and event["sequence"] == 1
        assert (await world.events(link["id"]))["lastEventAt"] == event["receivedAt"]


async def test_pushes_to_other_branches_are_acknowledged_and_not_stored_tags_are_stored(
    settings: Settings,
) -> None:
    async with deploy_world(settings) as world:
        link = await linked(world)
        await world.deliver(world.github)

        world.github.push(GITHUB_REPOSITORY, branch="develop")
        world.github.push(GITHUB_REPOSITORY, tag="v1.2.0")
        other, tag = await world.deliver(world.github)

        assert (other.status, tag.status) == (202, 200)
        [event] = await stored(world, link)
        assert event["kind"] == "TAG_PUSH" and event["ref"] == "refs/tags/v1.2.0"


async def test_a_redelivered_delivery_is_stored_once(settings: Settings) -> None:
    async with deploy_world(settings) as world:
        link = await linked(world)
        await world.deliver(world.github)
        world.github.push(GITHUB_REPOSITORY)
        await world.deliver(world.github)
        repo = world.github.repository(GITHUB_REPOSITORY)
        first = repo.hooks[0].deliveries[-1]

        world.github.enqueue(
            repo, repo.hooks[0], "push", first["_request"]["body"], first["guid"], redelivery=True
        )
        [again] = await world.deliver(world.github)

        assert again.status == 200
        assert len(await stored(world, link)) == 1


# --- GitLab -------------------------------------------------------------------------------------


async def test_gitlab_pushes_and_tag_pushes_are_stored_once_per_idempotency_key(settings: Settings) -> None:
    async with deploy_world(settings) as world:
        link = await linked(world, "GITLAB")
        project = world.gitlab.project(GITLAB_PROJECT)

        [key] = world.gitlab.push(project, message="Ship it")
        world.gitlab.push(project, tag="v2")
        world.gitlab.push(project, branch="feature")
        push, tag, other = await world.deliver(world.gitlab)
        event = project.hooks[0].events[0]["_request"]
        world.gitlab.enqueue(
            project, project.hooks[0], event["event"], event["body"], event["uuid"], event["idempotency_key"]
        )
        [resent] = await world.deliver(world.gitlab)

        assert (push.status, tag.status, other.status, resent.status) == (200, 200, 202, 200)
        events = await stored(world, link)
        assert [(e["kind"], e["deliveryId"]) for e in events] == [
            ("PUSH", key),
            ("TAG_PUSH", events[1]["deliveryId"]),
        ]
        assert events[0]["headCommitMessage"] == "Ship it" and events[0]["pusher"] == "alice"


async def test_an_instance_without_idempotency_keys_is_deduplicated_by_event_uuid(settings: Settings) -> None:
    async with deploy_world(settings) as world:
        link = await linked(world, "GITLAB")
        world.gitlab.version_below_17_4 = True
        project = world.gitlab.project(GITLAB_PROJECT)
        [event_uuid] = world.gitlab.push(project)
        await world.deliver(world.gitlab)
        request = project.hooks[0].events[0]["_request"]
        world.gitlab.enqueue(
            project, project.hooks[0], request["event"], request["body"], request["uuid"], None
        )
        await world.deliver(world.gitlab)

        [event] = await stored(world, link)
        assert event["deliveryId"] == event_uuid


# --- hostile input -------------------------------------------------------------------------------


def github_headers(secret: str | None, body: bytes, **extra: str) -> dict[str, str]:
    headers = {
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": "6f2c0f2e-0000-4000-8000-000000000001",
        "Content-Type": "application/json",
    }
    if secret is not None:
        headers["X-Hub-Signature-256"] = signature(secret, body)
    return headers | extra


def push_body(**changes: Any) -> bytes:
    payload = {
        "ref": "refs/heads/main",
        "before": "a" * 40,
        "after": "b" * 40,
        "head_commit": {"message": "x"},
        "pusher": {"name": "eve"},
    }
    return json.dumps(payload | changes).encode()


@pytest.fixture
async def github_link(settings: Settings) -> Any:
    async with deploy_world(settings) as world:
        link = await linked(world)
        await world.deliver(world.github)
        secret = world.github.repository(GITHUB_REPOSITORY).hooks[0].secret
        yield world, link["webhookUrl"], secret


HOSTILE = {
    "unsigned": lambda secret, body: (github_headers(None, body), body),
    "wrongly signed": lambda secret, body: (github_headers("not the secret", body), body),
    "signed for another body": lambda secret, body: (github_headers(secret, b"{}"), body),
    "signature in the wrong header": lambda secret, body: (
        github_headers(
            None,
            body,
            **{"X-Hub-Signature": "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()},
        ),
        body,
    ),
    "gitlab token on the github path": lambda secret, body: (
        github_headers(None, body, **{"X-Gitlab-Token": secret}),
        body,
    ),
    "malformed JSON": lambda secret, body: (github_headers(secret, b"{not json"), b"{not json"),
    "nested too deep": lambda secret, body: (github_headers(secret, b"[" * 100_000), b"[" * 100_000),
    "a JSON array": lambda secret, body: (github_headers(secret, b"[]"), b"[]"),
    "no delivery id": lambda secret, body: (
        {k: v for k, v in github_headers(secret, body).items() if k != "X-GitHub-Delivery"},
        body,
    ),
    "a commit id that is not one": lambda secret, body: (
        github_headers(secret, push_body(after="../../etc")),
        push_body(after="../../etc"),
    ),
    "a ref that is not one": lambda secret, body: (
        github_headers(secret, push_body(ref="main")),
        push_body(ref="main"),
    ),
}
EXPECTED = {
    "unsigned": 401,
    "wrongly signed": 401,
    "signed for another body": 401,
    "signature in the wrong header": 401,
    "gitlab token on the github path": 401,
}


@pytest.mark.parametrize("case", HOSTILE)
async def test_hostile_deliveries_store_nothing(github_link: Any, case: str) -> None:
    world, url, secret = github_link
    headers, body = HOSTILE[case](secret, push_body())

    response = await world.http.post(url, content=body, headers=headers)

    assert response.status_code == EXPECTED.get(case, 400), response.text
    assert await raw_events(world) == []
    assert secret not in response.text


async def test_a_replayed_delivery_is_answered_and_stored_once(github_link: Any) -> None:
    world, url, secret = github_link
    body = push_body()
    headers = github_headers(secret, body)

    answers = [await world.http.post(url, content=body, headers=headers) for _ in range(3)]

    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [a.json()["outcome"] for a in answers] == ["stored", "duplicate", "duplicate"]
    assert len(await raw_events(world)) == 1


async def test_unknown_links_and_the_other_hosts_path_are_not_found_and_nothing_is_read(
    github_link: Any,
) -> None:
    world, url, secret = github_link
    body = push_body()
    link_id = url.rsplit("/", 1)[1]

    unknown = await world.http.post(
        url[: -len(link_id)] + "A" * 22, content=body, headers=github_headers(secret, body)
    )
    gitlab_path = await world.http.post(
        url.replace("/github/", "/gitlab/"), content=body, headers={"X-Gitlab-Token": secret}
    )
    bad_id = await world.http.post(url[: -len(link_id)] + "..%2F..", content=body)
    no_provider = await world.http.post(url.replace("/github/", "/gitea/"), content=body)

    assert [r.status_code for r in (unknown, gitlab_path, bad_id, no_provider)] == [404, 404, 404, 404]
    assert await raw_events(world) == []


async def test_a_body_over_25_mib_is_refused_whether_announced_or_streamed(github_link: Any) -> None:
    world, url, secret = github_link
    big = 25 * 1024 * 1024 + 1

    announced = await world.http.post(
        url, content=b"", headers={"Content-Length": str(big)} | github_headers(secret, b"")
    )

    async def stream() -> Any:
        chunk = b" " * (1024 * 1024)
        for _ in range(26):
            yield chunk

    streamed = await world.http.post(url, content=stream(), headers=github_headers(secret, b""))

    assert announced.status_code == streamed.status_code == 413
    assert await raw_events(world) == []


async def test_a_body_of_24_mib_is_accepted(github_link: Any) -> None:
    world, url, secret = github_link
    body = push_body(padding="x" * (24 * 1024 * 1024))

    response = await world.http.post(url, content=body, headers=github_headers(secret, body))

    assert response.status_code == 200, response.text
    assert len(await raw_events(world)) == 1


async def test_too_many_bytes_in_flight_are_answered_503_for_the_host_to_catch_up_later(
    github_link: Any,
) -> None:
    world, url, secret = github_link
    from app.webhooks import BytesInFlight

    budget = BytesInFlight(limit=100)
    from app.webhooks import receive_webhook

    body = push_body()
    request = _request(world, url, body, github_headers(secret, body))
    response = await receive_webhook(request, world.app.services.intake, budget)

    assert response.status_code == 503 and response.headers["Retry-After"]
    assert budget.used == 0
    assert await raw_events(world) == []


def _request(world: World, url: str, body: bytes, headers: dict[str, str]) -> Any:
    from starlette.requests import Request

    path = httpx.URL(url).path
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    provider, link_id = path.split("/")[2:4]
    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "path_params": {"provider": provider, "link_id": link_id},
        "query_string": b"",
    }
    return Request(scope, receive)


# --- events, read as the deployer reads them ---------------------------------------------------


async def test_events_come_oldest_first_in_pages_resumable_from_the_cursor(settings: Settings) -> None:
    async with deploy_world(settings) as world:
        link = await linked(world)
        for n in range(5):
            world.github.push(GITHUB_REPOSITORY, message=f"commit {n}")
        await world.deliver(world.github)

        first = (await world.events(link["id"], first=2))["events"]
        rest = (await world.events(link["id"], first=10, after=first["pageInfo"]["endCursor"]))["events"]
        nothing = (await world.events(link["id"], after=rest["pageInfo"]["endCursor"]))["events"]

        assert [e["node"]["headCommitMessage"] for e in first["edges"]] == ["commit 0", "commit 1"]
        assert first["pageInfo"]["hasNextPage"] is True
        assert [e["node"]["sequence"] for e in rest["edges"]] == [3, 4, 5]
        assert rest["pageInfo"]["hasNextPage"] is False
        assert nothing["edges"] == [] and nothing["pageInfo"]["endCursor"] is None


async def test_a_reader_polling_while_deliveries_arrive_concurrently_never_skips_one(
    settings: Settings,
) -> None:
    async with deploy_world(settings) as world:
        link = await linked(world)
        await world.deliver(world.github)
        url, secret = link["webhookUrl"], world.github.repository(GITHUB_REPOSITORY).hooks[0].secret
        total = 60

        async def deliver(n: int) -> int:
            body = push_body(after=f"{n:040x}")
            headers = github_headers(secret, body, **{"X-GitHub-Delivery": f"delivery-{n}"})
            return (await world.http.post(url, content=body, headers=headers)).status_code

        seen: list[int] = []

        async def read_until_all_seen() -> None:
            after: str | None = None
            while len(seen) < total:
                page = (await world.events(link["id"], first=7, after=after))["events"]
                seen.extend(e["node"]["sequence"] for e in page["edges"])
                after = page["pageInfo"]["endCursor"] or after

        statuses, _ = await asyncio.gather(
            asyncio.gather(*(deliver(n) for n in range(total))), read_until_all_seen()
        )

        assert set(statuses) == {200}
        assert seen == list(range(1, total + 1)), "in order, each once, none skipped"


@pytest.mark.parametrize("first", [0, 101])
async def test_events_first_outside_1_to_100_is_bad_user_input(settings: Settings, first: int) -> None:
    async with deploy_world(settings) as world:
        link = await linked(world)
        from tests.deploy_support import EVENTS

        body = await world.deployer.raw(EVENTS, {"id": link["id"], "first": first})
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        bad_cursor = await world.deployer.raw(EVENTS, {"id": link["id"], "after": "r1:abc"})
        assert bad_cursor["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
