"""A crash between encrypting a token and storing it, or part way through a key rotation, leaves every stored
token decryptable with the configured key ring, and running the interrupted work again finishes it.

A crash is simulated where it would hurt: the integrations collection is wrapped so that one write
dies — before the server saw it, or after the server applied it but before the answer came back (the
process died in between) — or the task doing the write is cancelled while the write is in flight.
Afterwards the raw collection is read and every ciphertext decrypted.

The happy paths are in tests/storage/test_integrations_repository.py (rotation, concurrent connects,
ciphertexts bound to their record) and tests/api/test_cli.py (``python -m app rotate-keys``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from typing import Any

import pytest

from app.domain.models import AuthMethod, Credentials
from app.security.crypto import TokenCipher
from app.settings.model import Settings
from app.settings.values import EncryptionKey
from app.storage.integration_secrets import IntegrationSecrets, binding_of
from app.storage.integrations import SECRET_FIELDS, IntegrationRepository
from app.storage.mongo import Database
from tests.storage.test_integrations_repository import GITHUB, KEY_A, KEY_B, NOW, verified

OLD_TOKEN = "ghp_" + "o" * 36
NEW_TOKEN = "ghp_" + "n" * 36


class Crash(Exception):
    """The process dying at this point: nothing after it runs."""


class DyingCollection:
    """A real collection, except that ``method`` dies on its ``die_on``-th call (1-based), once.

    ``after_write``: the call reaches the server and is applied before it dies, like a process killed
    while the answer was on its way back.
    """

    def __init__(self, real: Any, method: str, *, die_on: int = 1, after_write: bool = False) -> None:
        self.real = real
        self.method = method
        self.die_on = die_on
        self.after_write = after_write
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.real, name)
        if name != self.method:
            return attribute

        async def dying(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            if self.calls != self.die_on:
                return await attribute(*args, **kwargs)
            if self.after_write:
                await attribute(*args, **kwargs)
            raise Crash(f"died in {name}")

        return dying


@pytest.fixture
async def database(settings: Settings) -> AsyncIterator[Database]:
    db = Database(settings.mongodb_uri.reveal(), settings.mongodb_database)  # type: ignore[union-attr]
    await db.ensure_indexes()
    yield db
    await db.client.drop_database(settings.mongodb_database)
    await db.close()


def repository(database: Database, *keys: EncryptionKey, dying: DyingCollection | None = None) -> Any:
    repo = IntegrationRepository(database, TokenCipher(keys or [KEY_A]))
    if dying is not None:
        repo._collection = dying  # type: ignore[assignment]
    return repo


async def stored_tokens(database: Database, keys: Sequence[EncryptionKey]) -> list[dict[str, str | None]]:
    """Every stored secret, decrypted with ``keys`` (a ``CipherError`` fails the test)."""
    cipher = TokenCipher(keys)
    found = []
    async for doc in database.db["integrations"].find({}).sort("_id", 1):
        secrets = doc.get("secrets") or {}
        found.append(
            {
                field: cipher.decrypt(secrets[field], binding_of(doc, field)) if secrets.get(field) else None
                for field in SECRET_FIELDS
            }
        )
    return found


async def save(repo: Any, token: str, account: str = "1", refresh: str | None = None) -> Any:
    return await repo.save_verified(
        "alice", GITHUB, AuthMethod.ACCESS_TOKEN, verified(account), Credentials(token, refresh), NOW
    )


# --- connecting ------------------------------------------------------------------------------------


@pytest.mark.parametrize("after_write", [False, True], ids=["before the write", "after the write"])
async def test_a_crash_while_a_new_integration_is_inserted_leaves_nothing_or_a_whole_one(
    database: Database, after_write: bool
) -> None:
    dying = DyingCollection(database.db["integrations"], "insert_one", after_write=after_write)

    with pytest.raises(Crash):
        await save(repository(database, dying=dying), OLD_TOKEN)

    tokens = await stored_tokens(database, [KEY_A])
    assert tokens == ([{"accessToken": OLD_TOKEN, "refreshToken": None}] if after_write else [])
    await save(repository(database), OLD_TOKEN)  # the user tries again
    assert await stored_tokens(database, [KEY_A]) == [{"accessToken": OLD_TOKEN, "refreshToken": None}]


@pytest.mark.parametrize("after_write", [False, True], ids=["before the write", "after the write"])
async def test_a_crash_while_a_token_is_replaced_keeps_a_token_that_decrypts(
    database: Database, after_write: bool
) -> None:
    await save(repository(database), OLD_TOKEN, refresh="ghr_old")
    dying = DyingCollection(database.db["integrations"], "find_one_and_update", after_write=after_write)

    with pytest.raises(Crash):
        await save(repository(database, dying=dying), NEW_TOKEN, refresh="ghr_new")

    expected = (NEW_TOKEN, "ghr_new") if after_write else (OLD_TOKEN, "ghr_old")
    assert await stored_tokens(database, [KEY_A]) == [
        {"accessToken": expected[0], "refreshToken": expected[1]}
    ], "access and refresh token are replaced together, never one without the other"


async def test_a_request_cancelled_while_its_token_is_written_leaves_it_whole_or_absent(
    database: Database,
) -> None:
    """The connecting task is cancelled 0, 1, 2, ... event-loop turns in (a client that hangs up): before
    the insert is sent, while it is on the wire, after the server applied it."""
    outcomes = set()
    for ticks in range(16):
        task = asyncio.create_task(save(repository(database), OLD_TOKEN))
        for _ in range(ticks):
            if task.done():
                break
            await asyncio.sleep(0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

        tokens = await stored_tokens(database, [KEY_A])
        assert tokens in ([], [{"accessToken": OLD_TOKEN, "refreshToken": None}]), ticks
        outcomes.add(len(tokens))
        await save(repository(database), OLD_TOKEN)  # the user tries again
        assert len(await stored_tokens(database, [KEY_A])) == 1
        await database.db["integrations"].delete_many({})
    assert 0 in outcomes, "some cancellations must land before the write"


async def test_a_crash_while_a_refreshed_pair_is_stored_keeps_the_old_pair_decryptable(
    database: Database,
) -> None:
    saved = await save(repository(database), OLD_TOKEN, refresh="ghr_old")
    integration = saved.integration
    repo = repository(database)
    assert await repo.take_refresh_lease(
        integration.id, integration.version, "me", NOW, NOW + timedelta(seconds=30)
    )
    dying = DyingCollection(database.db["integrations"], "find_one_and_update")

    with pytest.raises(Crash):
        await repository(database, dying=dying).store_refreshed(
            integration, "me", integration.version, Credentials(NEW_TOKEN, "ghr_new"), NOW
        )

    assert await stored_tokens(database, [KEY_A]) == [{"accessToken": OLD_TOKEN, "refreshToken": "ghr_old"}]


# --- rotating keys ---------------------------------------------------------------------------------

INTEGRATIONS = 5  # each with an access and a refresh token: 10 secrets


async def seed_under_old_key(database: Database) -> None:
    old = repository(database, KEY_B)
    for i in range(INTEGRATIONS):
        await save(old, f"ghp_{i:036d}", account=str(i), refresh=f"ghr_{i:036d}")


def expected_tokens() -> list[dict[str, str | None]]:
    return [{"accessToken": f"ghp_{i:036d}", "refreshToken": f"ghr_{i:036d}"} for i in range(INTEGRATIONS)]


async def keys_in_use(database: Database) -> list[str]:
    cipher = TokenCipher([KEY_A, KEY_B])
    return [
        cipher.key_id_of(doc["secrets"][field])
        async for doc in database.db["integrations"].find({})
        for field in SECRET_FIELDS
    ]


@pytest.mark.parametrize(("die_on", "after_write"), [(1, False), (2, True), (6, False), (10, True)], ids=str)
async def test_a_rotation_that_dies_part_way_leaves_every_token_decryptable_and_a_rerun_finishes(
    database: Database, die_on: int, after_write: bool
) -> None:
    await seed_under_old_key(database)
    dying = DyingCollection(database.db["integrations"], "update_one", die_on=die_on, after_write=after_write)

    with pytest.raises(Crash):
        await repository(database, KEY_A, KEY_B, dying=dying).rotate_keys()

    assert await stored_tokens(database, [KEY_A, KEY_B]) == expected_tokens()
    done = die_on - 1 + int(after_write)
    assert sorted(await keys_in_use(database)) == sorted(["a"] * done + ["b"] * (10 - done))
    assert await repository(database, KEY_A, KEY_B).rotate_keys() == 10 - done
    assert await stored_tokens(database, [KEY_A]) == expected_tokens(), "the old key can now be removed"


async def test_a_rotation_cancelled_part_way_leaves_every_token_decryptable(database: Database) -> None:
    await seed_under_old_key(database)
    started = asyncio.Event()

    class Slow(DyingCollection):
        def __getattr__(self, name: str) -> Any:
            attribute = getattr(self.real, name)
            if name != "update_one":
                return attribute

            async def slow(*args: Any, **kwargs: Any) -> Any:
                self.calls += 1
                if self.calls == 4:
                    started.set()
                    await asyncio.sleep(60)  # cancelled here, half way through the secrets
                return await attribute(*args, **kwargs)

            return slow

    task = asyncio.create_task(
        repository(
            database, KEY_A, KEY_B, dying=Slow(database.db["integrations"], "update_one")
        ).rotate_keys()
    )
    await started.wait()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)

    assert await stored_tokens(database, [KEY_A, KEY_B]) == expected_tokens()
    assert sorted(await keys_in_use(database)) == ["a"] * 3 + ["b"] * 7
    assert await repository(database, KEY_A, KEY_B).rotate_keys() == 7


async def test_a_token_refreshed_during_a_rotation_is_not_overwritten_with_the_old_one(
    database: Database,
) -> None:
    await seed_under_old_key(database)
    first = await database.db["integrations"].find_one({}, sort=[("_id", 1)])
    assert first is not None
    refreshed = Credentials("ghu_" + "r" * 36, "ghr_" + "r" * 36)

    class RefreshedMeanwhile(DyingCollection):
        """Before the rotation writes its first field, another replica stores a refreshed pair."""

        def __getattr__(self, name: str) -> Any:
            attribute = getattr(self.real, name)
            if name != "update_one":
                return attribute

            async def update_one(*args: Any, **kwargs: Any) -> Any:
                self.calls += 1
                if self.calls == 1:
                    await self.real.update_one(
                        {"_id": first["_id"]},
                        {
                            "$set": IntegrationSecrets(TokenCipher([KEY_A])).seal(
                                str(first["_id"]), "alice", GITHUB, refreshed
                            )
                        },
                    )
                return await attribute(*args, **kwargs)

            return update_one

    rotating = repository(
        database, KEY_A, KEY_B, dying=RefreshedMeanwhile(database.db["integrations"], "update_one")
    )
    rotated = await rotating.rotate_keys()

    tokens = await stored_tokens(database, [KEY_A])
    assert tokens[0] == {"accessToken": refreshed.access_token, "refreshToken": refreshed.refresh_token}
    assert tokens[1:] == expected_tokens()[1:]
    assert rotated == 8, "the refreshed pair was already under the new key: nothing to rotate there"
