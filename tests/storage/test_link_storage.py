"""Repository links and received events in the real embedded server: the setup lease, the secrets, the
numbering of events across "replicas" (two stores on one database), and the write concern of every write."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from app.domain.errors import ServiceUnavailableError
from app.domain.links import ReadAccess, ReadAccessKind, RepositoryEvent, RepositoryEventKind
from app.domain.models import AuthMethod, Credentials, Integration, Repository
from app.hosts.deploy import GrantedReadAccess
from app.security.crypto import TokenCipher
from app.settings.model import Settings
from app.storage.events import EventStore
from app.storage.integrations import IntegrationRepository
from app.storage.links import LinkStore
from app.storage.mongo import Database
from tests.storage.test_durability import MUST_SURVIVE, WriteConcerns
from tests.storage.test_integrations_repository import GITHUB, KEY_A, KEY_B, verified

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
REPOSITORY = Repository(
    id="octocat/api",
    name="api",
    full_name="octocat/api",
    owner="octocat",
    private=True,
    web_url="https://github.com/octocat/api",
    clone_url="https://github.com/octocat/api.git",
    default_branch="main",
)


@pytest.fixture
async def stored(settings: Settings) -> AsyncIterator[tuple[Database, WriteConcerns, Integration]]:
    listener = WriteConcerns()
    database = Database(
        settings.mongodb_uri.reveal(),  # type: ignore[union-attr]
        settings.mongodb_database,
        event_listeners=[listener],
    )
    await database.ensure_indexes()
    integrations = IntegrationRepository(database, TokenCipher([KEY_A]))
    saved = await integrations.save_verified(
        "alice", GITHUB, AuthMethod.ACCESS_TOKEN, verified(), Credentials("ghp_x"), NOW
    )
    listener.seen.clear()
    yield database, listener, saved.integration
    await database.client.drop_database(settings.mongodb_database)
    await database.close()


def event(link_id: str, delivery: str) -> RepositoryEvent:
    return RepositoryEvent(
        link_id=link_id,
        sequence=0,
        kind=RepositoryEventKind.PUSH,
        ref="refs/heads/main",
        after="a" * 40,
        delivery_id=delivery,
        received_at=NOW,
    )


async def test_a_link_is_reserved_once_set_up_under_a_lease_and_every_write_must_survive(
    stored: tuple[Database, WriteConcerns, Integration],
) -> None:
    database, listener, integration = stored
    links = LinkStore(database, TokenCipher([KEY_A]))
    until = NOW + timedelta(seconds=90)

    first = await links.reserve(integration, REPOSITORY, "main", holder="one", now=NOW, until=until)
    busy = await links.reserve(integration, REPOSITORY, "main", holder="two", now=NOW, until=until)
    key = GrantedReadAccess(
        ReadAccess(ReadAccessKind.DEPLOY_KEY, host_id="7"), ssh_private_key="-----BEGIN KEY"
    )
    done = await links.complete_setup(
        first.link.id, "one", repository=REPOSITORY, branch="main", hook_id="9", granted=key, now=NOW
    )
    again = await links.reserve(integration, REPOSITORY, "main", holder="three", now=NOW, until=until)
    lost = await links.complete_setup(
        first.link.id, "one", repository=REPOSITORY, branch="main", hook_id="9", granted=None, now=NOW
    )
    await links.release(first.link.id, "three", remove=False)

    assert first.created and first.holder == "one" and len(first.link.id) >= 22
    assert not busy.created and busy.holder is None and busy.link.id == first.link.id
    assert (
        done is not None
        and done.hook_id == "9"
        and done.read_access == ReadAccess(ReadAccessKind.DEPLOY_KEY, host_id="7")
    )
    assert again.holder == "three" and again.secrets.ssh_private_key == "-----BEGIN KEY"
    assert again.secrets.webhook_secret == first.secrets.webhook_secret
    assert lost is None, "a lease that was taken over cannot complete"
    writes = listener.of("repository_links")
    assert {command for command, _ in writes} == {"insert", "findAndModify", "update"}
    assert all(concern == MUST_SURVIVE for _, concern in writes), writes


async def test_a_failed_new_link_is_removed_with_its_lease(
    stored: tuple[Database, WriteConcerns, Integration],
) -> None:
    database, _, integration = stored
    links = LinkStore(database, TokenCipher([KEY_A]))
    reserved = await links.reserve(
        integration, REPOSITORY, "main", holder="h", now=NOW, until=NOW + timedelta(seconds=9)
    )

    await links.release(reserved.link.id, "h", remove=True)

    assert await links.get("alice", reserved.link.id) is None


async def test_link_secrets_are_ciphertexts_bound_to_the_link_and_rotate(
    stored: tuple[Database, WriteConcerns, Integration],
) -> None:
    database, _, integration = stored
    links = LinkStore(database, TokenCipher([KEY_A]))
    reserved = await links.reserve(
        integration, REPOSITORY, "main", holder="h", now=NOW, until=NOW + timedelta(seconds=9)
    )
    token = GrantedReadAccess(
        ReadAccess(ReadAccessKind.DEPLOY_TOKEN, host_id="3", username="u"), deploy_token="gldt-s3cret"
    )
    await links.complete_setup(
        reserved.link.id, "h", repository=REPOSITORY, branch="main", hook_id="1", granted=token, now=NOW
    )

    raw = await database.db["repository_links"].find_one({"_id": reserved.link.id})
    assert (
        raw is not None and "gldt-s3cret" not in str(raw) and reserved.secrets.webhook_secret not in str(raw)
    )
    rotated = LinkStore(database, TokenCipher([KEY_B, KEY_A]))
    assert await rotated.rotate_keys() == 2  # the webhook secret and the deploy token
    found = await LinkStore(database, TokenCipher([KEY_B])).with_secrets("alice", reserved.link.id)
    assert found is not None and found[1].deploy_token == "gldt-s3cret"
    assert await links.with_secrets("bob", reserved.link.id) is None


async def test_two_replicas_storing_a_burst_for_one_link_number_every_event_once_without_gaps(
    stored: tuple[Database, WriteConcerns, Integration],
) -> None:
    database, listener, _ = stored
    replicas = [EventStore(database), EventStore(database)]
    deliveries = [f"d{n}" for n in range(80)]

    async def deliver(n: int) -> tuple[int, bool]:
        # Every delivery twice, once at each replica: the host's redelivery, or a replay.
        result = await replicas[n % 2].store_once(
            event("L", deliveries[n % 80]), known_sequence=0, deadline_seconds=10
        )
        return result.event.sequence, result.created

    results = await asyncio.gather(*(deliver(n) for n in range(160)))

    created = sorted(sequence for sequence, was_created in results if was_created)
    assert created == list(range(1, 81)), "each delivery once, numbered 1..80 without a gap"
    by_delivery: dict[str, set[int]] = {}
    for n, (sequence, _) in enumerate(results):
        by_delivery.setdefault(deliveries[n % 80], set()).add(sequence)
    assert all(len(numbers) == 1 for numbers in by_delivery.values()), "both answers name the same event"
    page, more = await replicas[0].page("L", 0, 100)
    assert [e.sequence for e in page] == list(range(1, 81)) and not more
    writes = listener.of("repository_events")
    assert writes and all(concern == MUST_SURVIVE for _, concern in writes), writes


async def test_a_known_sequence_keeps_numbers_rising_after_events_were_removed(
    stored: tuple[Database, WriteConcerns, Integration],
) -> None:
    database, _, _ = stored
    events = EventStore(database)
    await events.store_once(event("L", "a"), known_sequence=0, deadline_seconds=5)
    await events.delete_for_link("L")

    again = await events.store_once(event("L", "b"), known_sequence=41, deadline_seconds=5)

    assert again.event.sequence == 42


async def test_a_store_that_cannot_finish_in_time_is_unavailable(
    stored: tuple[Database, WriteConcerns, Integration],
) -> None:
    database, _, _ = stored
    events = EventStore(database)

    with pytest.raises(ServiceUnavailableError):
        await events.store_once(event("L", "slow"), known_sequence=0, deadline_seconds=0.0001)
    await events.drain()
