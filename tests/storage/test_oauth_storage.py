"""Pending sign-ins and the refresh lease against the real embedded server (SecantusDB, wire protocol)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from app.domain.models import (
    AuthMethod,
    Credentials,
    GitAccount,
    GitProvider,
    HostEndpoint,
    Integration,
    IntegrationStatus,
    RepositoryAccess,
    TokenKind,
    VerifiedToken,
)
from app.security.crypto import TokenCipher
from app.settings.model import Settings
from app.settings.values import EncryptionKey, Secret
from app.storage.integrations import IntegrationRepository
from app.storage.mongo import Database
from app.storage.oauth_states import OAuthStateRepository, PendingAuthorization

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
GITLAB = HostEndpoint(GitProvider.GITLAB, "gitlab.com", "https://gitlab.com", "https://gitlab.com/api/v4")
KEY = EncryptionKey("a", Secret(base64.b64encode(b"A" * 32).decode()))
STATE = "s" * 43
OLD = Credentials("old-access", "old-refresh", NOW + timedelta(seconds=30))
NEW = Credentials("new-access", "new-refresh", NOW + timedelta(hours=2))


@pytest.fixture
async def database(settings: Settings) -> AsyncIterator[Database]:
    db = Database(settings.mongodb_uri.reveal(), settings.mongodb_database)  # type: ignore[union-attr]
    await db.ensure_indexes()
    yield db
    await db.client.drop_database(settings.mongodb_database)
    await db.close()


def pending(owner: str = "alice", expires_at: datetime = NOW + timedelta(minutes=10)) -> PendingAuthorization:
    return PendingAuthorization(
        owner=owner,
        provider=GitProvider.GITLAB,
        token_kind=TokenKind.GITLAB_OAUTH,
        host="gitlab.com",
        code_verifier="v" * 64,
        redirect_uri="https://deploy.example.com/oauth/callback",
        return_to="https://app.example.com/",
        created_at=NOW,
        expires_at=expires_at,
    )


# --- states ---------------------------------------------------------------------------------------


async def test_a_state_is_consumed_exactly_once_even_by_concurrent_callbacks(database: Database) -> None:
    states = OAuthStateRepository(database)
    await states.create(STATE, pending())

    results = await asyncio.gather(*(states.consume(STATE, NOW) for _ in range(10)))

    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert winners[0].owner == "alice" and winners[0].code_verifier == "v" * 64
    assert "v" * 64 not in repr(winners[0])


async def test_an_expired_state_is_not_consumed(database: Database) -> None:
    states = OAuthStateRepository(database)
    await states.create(STATE, pending(expires_at=NOW))

    assert await states.consume(STATE, NOW) is None


async def test_another_owner_does_not_use_up_the_state(database: Database) -> None:
    states = OAuthStateRepository(database)
    await states.create(STATE, pending(owner="alice"))

    assert await states.consume(STATE, NOW, owner="mallory") is None
    assert await states.consume(STATE, NOW, owner="alice") is not None


async def test_only_a_digest_of_the_state_is_stored(database: Database) -> None:
    await OAuthStateRepository(database).create(STATE, pending())

    stored = await database.db["oauth_states"].find_one({})

    assert stored is not None and STATE not in str(stored)


async def test_the_callback_reads_a_state_without_using_it_up(database: Database) -> None:
    states = OAuthStateRepository(database)
    await states.create(STATE, pending())

    found = await states.find(STATE, NOW)

    assert found is not None and found.owner == "alice"
    assert await states.consume(STATE, NOW, owner="alice") is not None
    assert await states.find(STATE, NOW) is None, "a used state is not found any more"


async def test_an_installation_is_noted_on_its_state_and_its_code_is_remembered(database: Database) -> None:
    states = OAuthStateRepository(database)
    await states.create(STATE, pending())

    noted = await states.note_installation(STATE, NOW, "1234", "installation-code")
    await states.remember_installation_code("stateless-code", NOW)

    assert noted is not None and noted.installation_id == "1234" and noted.authorization_started
    assert await states.is_installation_code("installation-code")
    assert await states.is_installation_code("stateless-code")
    assert not await states.is_installation_code("another-code")
    assert await states.note_installation("u" * 43, NOW, "1", None) is None
    assert "installation-code" not in str(await database.db["oauth_states"].find({}).to_list())
    consumed = await states.consume(STATE, NOW, owner="alice")
    assert consumed is not None and consumed.installation_id == "1234"
    assert await states.find(f"code:{'x' * 40}", NOW) is None


# --- refresh lease --------------------------------------------------------------------------------


async def current(repo: IntegrationRepository, integration_id: str) -> Integration:
    found = await repo.get("alice", integration_id)
    assert found is not None
    return found


async def connected(repo: IntegrationRepository, credentials: Credentials = OLD) -> str:
    verified = VerifiedToken(
        token_kind=TokenKind.GITLAB_OAUTH,
        account=GitAccount(id="7", login="alice"),
        repository_access=RepositoryAccess.ALL,
        granted_permissions=("api",),
        expires_at=OLD.expires_at,
    )
    saved = await repo.save_verified("alice", GITLAB, AuthMethod.OAUTH, verified, credentials, NOW)
    return saved.integration.id


class MovableClock:
    """The repository's clock: says when a login's end (reconnectBy) has been reached."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
def repo(database: Database, clock: MovableClock) -> IntegrationRepository:
    return IntegrationRepository(database, TokenCipher([KEY]), clock)


async def test_one_of_many_concurrent_takers_gets_the_lease(repo: IntegrationRepository) -> None:
    integration_id = await connected(repo)
    until = NOW + timedelta(seconds=30)

    taken = await asyncio.gather(
        *(repo.take_refresh_lease(integration_id, 0, f"h{i}", NOW, until) for i in range(10))
    )

    assert taken.count(True) == 1
    view = await repo.get_for_refresh("alice", integration_id)
    assert view is not None and view.lease_holder == f"h{taken.index(True)}"


async def test_the_lease_is_only_taken_at_the_version_read(repo: IntegrationRepository) -> None:
    integration_id = await connected(repo)

    assert not await repo.take_refresh_lease(integration_id, 1, "h", NOW, NOW + timedelta(seconds=30))


async def test_an_expired_lease_can_be_taken_over(repo: IntegrationRepository) -> None:
    integration_id = await connected(repo)
    await repo.take_refresh_lease(integration_id, 0, "crashed", NOW, NOW + timedelta(seconds=30))

    later = NOW + timedelta(seconds=31)
    assert not await repo.take_refresh_lease(integration_id, 0, "early", NOW + timedelta(seconds=29), later)
    assert await repo.take_refresh_lease(integration_id, 0, "successor", later, later + timedelta(seconds=30))


async def test_the_holder_stores_the_new_pair_with_a_new_version_and_no_lease(
    repo: IntegrationRepository,
) -> None:
    integration_id = await connected(repo)
    await repo.take_refresh_lease(integration_id, 0, "h", NOW, NOW + timedelta(seconds=30))

    stored = await repo.store_refreshed(await current(repo, integration_id), "h", 0, NEW, NOW)

    assert stored is not None
    integration, credentials = stored
    assert credentials == NEW
    assert integration.version == 1
    view = await repo.get_for_refresh("alice", integration_id)
    assert view is not None and view.lease_holder is None and view.credentials == NEW


async def test_a_pair_is_not_stored_over_a_newer_one(repo: IntegrationRepository) -> None:
    integration_id = await connected(repo)
    await repo.take_refresh_lease(integration_id, 0, "h", NOW, NOW + timedelta(seconds=30))
    await repo.store_refreshed(await current(repo, integration_id), "h", 0, NEW, NOW)

    assert await repo.store_refreshed(await current(repo, integration_id), "h", 0, OLD, NOW) is None
    view = await repo.get_for_refresh("alice", integration_id)
    assert view is not None and view.credentials == NEW


async def test_a_refused_refresh_asks_for_reconnect_and_keeps_the_tokens(repo: IntegrationRepository) -> None:
    integration_id = await connected(repo)
    await repo.take_refresh_lease(integration_id, 0, "h", NOW, NOW + timedelta(seconds=30))

    assert await repo.release_refresh_lease(integration_id, "h", NOW, needs_reconnect=True)

    view = await repo.get_for_refresh("alice", integration_id)
    assert view is not None
    assert view.integration.status is IntegrationStatus.NEEDS_RECONNECT
    assert view.credentials == OLD
    assert view.lease_holder is None
    assert not await repo.release_refresh_lease(integration_id, "h", NOW)  # no longer held


async def test_the_login_end_is_kept_with_the_pair(repo: IntegrationRepository) -> None:
    integration_id = await connected(repo)
    renewed = replace(NEW, refresh_expires_at=NOW + timedelta(days=180))
    await repo.take_refresh_lease(integration_id, 0, "h", NOW, NOW + timedelta(seconds=30))

    await repo.store_refreshed(await current(repo, integration_id), "h", 0, renewed, NOW)

    view = await repo.get_for_refresh("alice", integration_id)
    assert view is not None and view.credentials == renewed
    assert view.integration.reconnect_by == NOW + timedelta(days=180)
    assert view.integration.status is IntegrationStatus.ACTIVE


async def test_a_login_past_its_end_reads_as_needs_reconnect_everywhere_and_it_is_stored_once(
    repo: IntegrationRepository, clock: MovableClock, database: Database
) -> None:
    ends = NOW + timedelta(days=1)
    integration_id = await connected(repo, replace(OLD, refresh_expires_at=ends))
    collection = database.db["integrations"]
    before = await repo.get("alice", integration_id)
    clock.now = ends + timedelta(seconds=1)

    read = await repo.get("alice", integration_id)
    listed = await repo.list_for_owner("alice")
    many = await repo.get_many("alice", [integration_id])
    with_credentials = await repo.get_with_credentials("alice", integration_id)
    view = await repo.get_for_refresh("alice", integration_id)

    assert before is not None and before.status is IntegrationStatus.ACTIVE
    assert read is not None and with_credentials is not None and view is not None
    seen = [read, *listed, many[integration_id], with_credentials[0], view.integration]
    assert [i.status for i in seen] == [IntegrationStatus.NEEDS_RECONNECT] * 5
    stored = await collection.find_one({})
    assert stored["status"] == "NEEDS_RECONNECT"
    assert stored["updatedAt"].replace(tzinfo=UTC) == ends + timedelta(seconds=1)  # the first read wrote
    assert view.credentials == replace(OLD, refresh_expires_at=ends)  # the tokens stay as they were
    clock.now += timedelta(days=1)
    await repo.list_for_owner("alice")
    stored_later = await collection.find_one({})
    assert stored_later["updatedAt"] == stored["updatedAt"]  # ... and no later read writes again


async def test_a_new_sign_in_after_the_end_is_active_again(
    repo: IntegrationRepository, clock: MovableClock
) -> None:
    ends = NOW + timedelta(days=1)
    integration_id = await connected(repo, replace(OLD, refresh_expires_at=ends))
    clock.now = ends + timedelta(hours=1)
    ended = await repo.get("alice", integration_id)
    again = replace(NEW, refresh_expires_at=clock.now + timedelta(days=180))

    assert await connected(repo, again) == integration_id

    found = await repo.get("alice", integration_id)
    assert ended is not None and ended.status is IntegrationStatus.NEEDS_RECONNECT
    assert found is not None and found.status is IntegrationStatus.ACTIVE
    assert found.reconnect_by == clock.now + timedelta(days=180)


async def test_an_integration_without_an_end_stays_active(
    repo: IntegrationRepository, clock: MovableClock
) -> None:
    integration_id = await connected(repo)  # GitLab: its token answers name no refresh token expiry
    clock.now = NOW + timedelta(days=3650)

    found = await repo.get("alice", integration_id)

    assert found is not None and found.reconnect_by is None
    assert found.status is IntegrationStatus.ACTIVE
