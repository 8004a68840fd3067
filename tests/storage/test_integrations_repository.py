"""The integrations repository against the real embedded server (SecantusDB over the wire protocol)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from pymongo import AsyncMongoClient

from app.domain.errors import NeedsReconnectError
from app.domain.models import (
    AuthMethod,
    Credentials,
    GitAccount,
    GitProvider,
    HostEndpoint,
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

GITHUB = HostEndpoint(GitProvider.GITHUB, "github.com", "https://github.com", "https://api.github.com")
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
KEY_A = EncryptionKey("a", Secret(base64.b64encode(b"A" * 32).decode()))
KEY_B = EncryptionKey("b", Secret(base64.b64encode(b"B" * 32).decode()))
TOKEN = "ghp_" + "t" * 36


def verified(
    account_id: str = "1", login: str = "octocat", scopes: tuple[str, ...] = ("repo",)
) -> VerifiedToken:
    return VerifiedToken(
        token_kind=TokenKind.GITHUB_CLASSIC,
        account=GitAccount(id=account_id, login=login),
        repository_access=RepositoryAccess.ALL,
        granted_permissions=scopes,
    )


@pytest.fixture
async def database(settings: Settings) -> AsyncIterator[Database]:
    db = Database(settings.mongodb_uri.reveal(), settings.mongodb_database)  # type: ignore[union-attr]
    await db.ensure_indexes()
    yield db
    await db.client.drop_database(settings.mongodb_database)
    await db.close()


@pytest.fixture
def repo(database: Database) -> IntegrationRepository:
    return IntegrationRepository(database, TokenCipher([KEY_A]))


async def test_saved_integration_is_found_by_owner_and_id(repo: IntegrationRepository) -> None:
    saved = await repo.save_verified(
        "alice", GITHUB, AuthMethod.ACCESS_TOKEN, verified(), Credentials(TOKEN), NOW
    )
    assert saved.created
    assert [i.id for i in await repo.list_for_owner("alice")] == [saved.integration.id]
    found = await repo.get("alice", saved.integration.id)
    assert found is not None and found.account.login == "octocat" and found.status is IntegrationStatus.ACTIVE
    assert found.created_at == NOW


async def test_another_owner_cannot_see_or_delete_it(repo: IntegrationRepository) -> None:
    saved = await repo.save_verified(
        "alice", GITHUB, AuthMethod.ACCESS_TOKEN, verified(), Credentials(TOKEN), NOW
    )
    assert await repo.get("bob", saved.integration.id) is None
    assert await repo.list_for_owner("bob") == []
    assert await repo.delete("bob", saved.integration.id) is None
    assert await repo.get("alice", saved.integration.id) is not None


async def test_same_account_again_updates_instead_of_adding(repo: IntegrationRepository) -> None:
    first = await repo.save_verified(
        "alice", GITHUB, AuthMethod.ACCESS_TOKEN, verified(), Credentials(TOKEN), NOW
    )
    second = await repo.save_verified(
        "alice",
        GITHUB,
        AuthMethod.ACCESS_TOKEN,
        verified(scopes=("repo", "admin:repo_hook")),
        Credentials("ghp_new" + "n" * 33),
        NOW,
    )
    assert not second.created and second.integration.id == first.integration.id
    assert second.integration.granted_permissions == ["repo", "admin:repo_hook"]
    found = await repo.get_with_credentials("alice", first.integration.id)
    assert found is not None and found[1].access_token == "ghp_new" + "n" * 33
    assert len(await repo.list_for_owner("alice")) == 1


async def test_two_users_connecting_the_same_account_each_get_their_own(repo: IntegrationRepository) -> None:
    a = await repo.save_verified(
        "alice", GITHUB, AuthMethod.ACCESS_TOKEN, verified(), Credentials(TOKEN), NOW
    )
    b = await repo.save_verified("bob", GITHUB, AuthMethod.ACCESS_TOKEN, verified(), Credentials(TOKEN), NOW)
    assert a.integration.id != b.integration.id


async def test_concurrent_connects_of_one_account_leave_one_decryptable_integration(
    repo: IntegrationRepository,
) -> None:
    tokens = [f"ghp_{i:036d}" for i in range(8)]
    await asyncio.gather(
        *(
            repo.save_verified("alice", GITHUB, AuthMethod.ACCESS_TOKEN, verified(), Credentials(t), NOW)
            for t in tokens
        )
    )
    [only] = await repo.list_for_owner("alice")
    found = await repo.get_with_credentials("alice", only.id)
    assert found is not None and found[1].access_token in tokens


async def test_tokens_are_stored_only_encrypted(repo: IntegrationRepository, database: Database) -> None:
    saved = await repo.save_verified(
        "alice",
        GITHUB,
        AuthMethod.OAUTH,
        verified(),
        Credentials(TOKEN, refresh_token="ghr_refresh123456"),
        NOW,
    )
    raw = await database.db["integrations"].find_one({})
    assert raw is not None
    assert TOKEN not in repr(raw) and "ghr_refresh123456" not in repr(raw)
    assert raw["secrets"]["accessToken"].startswith("enc:v2:a:")
    found = await repo.get_with_credentials("alice", saved.integration.id)
    assert found is not None and found[1].refresh_token == "ghr_refresh123456"


async def test_ciphertext_copied_into_another_record_does_not_decrypt(
    repo: IntegrationRepository, database: Database
) -> None:
    a = await repo.save_verified(
        "alice", GITHUB, AuthMethod.ACCESS_TOKEN, verified("1"), Credentials(TOKEN), NOW
    )
    b = await repo.save_verified(
        "alice", GITHUB, AuthMethod.ACCESS_TOKEN, verified("2"), Credentials("ghp_b"), NOW
    )
    collection = database.db["integrations"]
    stolen = (await collection.find_one({"accountId": "1"}))["secrets"]["accessToken"]  # type: ignore[index]
    await collection.update_one({"accountId": "2"}, {"$set": {"secrets.accessToken": stolen}})
    with pytest.raises(NeedsReconnectError):
        await repo.get_with_credentials("alice", b.integration.id)
    assert (await repo.get_with_credentials("alice", a.integration.id)) is not None


async def test_status_and_delete(repo: IntegrationRepository) -> None:
    saved = await repo.save_verified(
        "alice", GITHUB, AuthMethod.ACCESS_TOKEN, verified(), Credentials(TOKEN), NOW
    )
    updated = await repo.set_status(
        "alice", saved.integration.id, IntegrationStatus.NEEDS_RECONNECT, verified_at=NOW
    )
    assert updated is not None and updated.status is IntegrationStatus.NEEDS_RECONNECT
    removed = await repo.delete("alice", saved.integration.id)
    assert removed is not None and removed[1].access_token == TOKEN
    assert await repo.get("alice", saved.integration.id) is None


@pytest.mark.parametrize("bad_id", ["", "nope", "0" * 23, "zzzzzzzzzzzzzzzzzzzzzzzz"])
async def test_malformed_ids_are_simply_not_found(repo: IntegrationRepository, bad_id: str) -> None:
    assert await repo.get("alice", bad_id) is None
    assert await repo.delete("alice", bad_id) is None


async def test_rotation_re_encrypts_every_secret_under_the_first_key(database: Database) -> None:
    old = IntegrationRepository(database, TokenCipher([KEY_B]))
    ids = []
    for i in range(3):
        saved = await old.save_verified(
            "alice",
            GITHUB,
            AuthMethod.OAUTH,
            verified(str(i)),
            Credentials(f"tok{i}", refresh_token=f"ref{i}"),
            NOW,
        )
        ids.append(saved.integration.id)
    rotating = IntegrationRepository(database, TokenCipher([KEY_A, KEY_B]))
    assert await rotating.rotate_keys() == 6
    assert await rotating.rotate_keys() == 0
    only_new = IntegrationRepository(database, TokenCipher([KEY_A]))
    for i, integration_id in enumerate(ids):
        found = await only_new.get_with_credentials("alice", integration_id)
        assert (
            found is not None and found[1].access_token == f"tok{i}" and found[1].refresh_token == f"ref{i}"
        )


async def test_indexes_exist_after_start(database: Database, settings: Settings) -> None:
    client: AsyncMongoClient[dict[str, object]] = database.client
    names = {
        ix["name"] async for ix in await client[settings.mongodb_database]["integrations"].list_indexes()
    }
    assert "owner_account_unique" in names


async def test_whether_another_user_still_has_a_login_of_the_account(repo: IntegrationRepository) -> None:
    alice = await repo.save_verified("alice", GITHUB, AuthMethod.OAUTH, verified(), Credentials(TOKEN), NOW)
    await repo.save_verified("carol", GITHUB, AuthMethod.ACCESS_TOKEN, verified(), Credentials(TOKEN), NOW)
    bob = await repo.save_verified("bob", GITHUB, AuthMethod.OAUTH, verified(), Credentials(TOKEN), NOW)
    other_host = HostEndpoint(GitProvider.GITHUB, "ghe.example.com", "https://ghe.example.com", "https://x")

    await repo.delete("alice", alice.integration.id)
    still = await repo.login_of_account_exists(GITHUB, "1")
    await repo.delete("bob", bob.integration.id)

    assert still is True  # bob's login
    assert await repo.login_of_account_exists(GITHUB, "1") is False  # carol's pasted token is no login
    assert await repo.login_of_account_exists(other_host, "1") is False
