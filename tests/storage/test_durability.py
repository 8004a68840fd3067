"""What each collection's writes are promised, as the server sees it: the write concern on every write command.

Every write the repositories can make is made against the real embedded server, and a command listener
on the service's own client records the ``writeConcern`` each command carried. Kills of real processes
are in tests/reliability/test_process_kills.py.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.monitoring import CommandListener, CommandStartedEvent, CommandSucceededEvent

from app.domain.models import AuthMethod, Credentials, IntegrationStatus
from app.hosts.base import Listing
from app.net.pagination import PageRecord
from app.security.crypto import TokenCipher
from app.settings.model import Settings
from app.storage.durability import Durability
from app.storage.integrations import IntegrationRepository
from app.storage.listings import ListingStore
from app.storage.mongo import Database, EmbeddedMongo
from app.storage.oauth_states import OAuthStateRepository
from tests.harness import free_port
from tests.processes import sigkill
from tests.storage.test_integrations_repository import GITHUB, KEY_A, KEY_B, NOW, verified
from tests.storage.test_oauth_storage import pending

MUST_SURVIVE = {"w": "majority", "j": True}
REBUILDABLE = {"w": 1}
WRITE_COMMANDS = ("insert", "update", "delete", "findAndModify")
APP = Path(__file__).resolve().parents[2] / "app"


class WriteConcerns(CommandListener):
    """``(command, collection, writeConcern)`` of every write command the client sent."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, dict[str, Any] | None]] = []

    def started(self, event: CommandStartedEvent) -> None:
        if event.command_name in WRITE_COMMANDS:
            concern = event.command.get("writeConcern")
            collection = event.command[event.command_name]
            self.seen.append((event.command_name, collection, dict(concern) if concern else None))

    def succeeded(self, event: CommandSucceededEvent) -> None:
        pass

    def failed(self, event: Any) -> None:
        pass

    def of(self, collection: str) -> list[tuple[str, dict[str, Any] | None]]:
        return [(command, concern) for command, name, concern in self.seen if name == collection]


@pytest.fixture
async def recorded(settings: Settings) -> AsyncIterator[tuple[Database, WriteConcerns]]:
    listener = WriteConcerns()
    database = Database(
        settings.mongodb_uri.reveal(),  # type: ignore[union-attr]
        settings.mongodb_database,
        event_listeners=[listener],
    )
    await database.ensure_indexes()
    yield database, listener
    await database.client.drop_database(settings.mongodb_database)
    await database.close()


async def test_every_write_to_integrations_waits_for_a_majority_and_the_journal(
    recorded: tuple[Database, WriteConcerns],
) -> None:
    database, listener = recorded
    repo = IntegrationRepository(database, TokenCipher([KEY_B]))
    saved = await repo.save_verified(
        "alice", GITHUB, AuthMethod.OAUTH, verified(), Credentials("ghu_a", "ghr_a", NOW), NOW
    )  # insert
    integration = (
        await repo.save_verified(
            "alice", GITHUB, AuthMethod.OAUTH, verified(), Credentials("ghu_b", "ghr_b", NOW), NOW
        )
    ).integration  # the same account again: an update
    await repo.replace_token(integration, verified(), Credentials("ghu_c", "ghr_c", NOW), NOW)
    await repo.record_verified("alice", integration, verified(), NOW)
    await repo.set_status("alice", integration.id, IntegrationStatus.NEEDS_RECONNECT, verified_at=NOW)
    current = await repo.get("alice", integration.id)
    assert current is not None
    lease_until = NOW + timedelta(seconds=30)
    assert await repo.take_refresh_lease(integration.id, current.version, "me", NOW, lease_until)
    assert await repo.store_refreshed(current, "me", current.version, Credentials("ghu_d", "ghr_d"), NOW)
    current = await repo.get("alice", integration.id)
    assert current is not None
    assert await repo.take_refresh_lease(integration.id, current.version, "me", NOW, lease_until)
    assert await repo.release_refresh_lease(integration.id, "me", NOW, needs_reconnect=True)
    rotated = IntegrationRepository(database, TokenCipher([KEY_A, KEY_B]))
    assert await rotated.rotate_keys() == 2
    assert await rotated.delete("alice", saved.integration.id) is not None

    writes = listener.of("integrations")
    assert {command for command, _ in writes} == {"insert", "update", "findAndModify"}
    assert len(writes) >= 11
    assert all(concern == MUST_SURVIVE for _, concern in writes), writes


async def test_oauth_states_are_written_to_survive_and_repository_listings_only_to_be_rebuilt(
    recorded: tuple[Database, WriteConcerns],
) -> None:
    database, listener = recorded
    states = OAuthStateRepository(database)
    await states.create("state-1", pending())
    assert await states.consume("state-1", NOW) is not None

    cache = ListingStore(database)
    listing = Listing(pages=(PageRecord("/user/repos", 1, 'W/"1"'),))
    stored = await cache.store("integration-1", "all", "s", listing, NOW, None)
    await cache.store("integration-1", "all", "s", listing, NOW, stored)

    assert listener.of("oauth_states") == [("insert", MUST_SURVIVE), ("findAndModify", MUST_SURVIVE)]
    listings = listener.of("repository_cache")
    assert {command for command, _ in listings} == {"update", "delete"}  # pages, stale pages, head
    assert all(concern == REBUILDABLE for _, concern in listings), listings
    listener.seen.clear()
    # A disconnect forgets the listings of the integration: that must not be rolled back by a failover.
    assert await cache.delete_for_integration("integration-1") == 2
    assert listener.of("repository_cache") == [("delete", MUST_SURVIVE)]


def test_the_service_reaches_collections_only_with_a_named_durability() -> None:
    """``database.db[...]`` or ``get_collection`` elsewhere would skip the choice; storage/mongo.py is where
    ``Database.collection`` lives (and the index builds, under the client's MUST_SURVIVE default)."""
    offenders = [
        f"{path.relative_to(APP.parent)}:{number}"
        for path in APP.rglob("*.py")
        if path.name != "mongo.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"\.db\[|get_collection\(|\bclient\[", line)
    ]
    assert offenders == [], "open collections with Database.collection(name, Durability.…)"
    assert {level.name for level in Durability} == {"MUST_SURVIVE", "REBUILDABLE"}


def test_the_embedded_server_syncs_every_commit_and_takes_must_survive_writes(tmp_path: Path) -> None:
    with (
        EmbeddedMongo(tmp_path / "db") as server,
        MongoClient(server.uri, serverSelectionTimeoutMS=5000) as client,
    ):
        assert server.process is not None
        arguments = Path(f"/proc/{server.process.pid}/cmdline").read_bytes().split(b"\0")
        assert b"--sync-on-commit" in arguments
        assert client.admin.command("hello").get("setName") == "secantus", "a one-member replica set"
        things = client["durability"].get_collection(
            "things", write_concern=Durability.MUST_SURVIVE.write_concern
        )
        assert things.insert_one({"kept": True}).acknowledged
    assert server.exit_code == 0, "stopped cleanly: its files closed"


def test_a_standalone_server_takes_must_survive_writes(tmp_path: Path) -> None:
    """MongoDB accepts ``w: "majority"`` on a standalone mongod (``w: 2`` is refused there; mongodb/mongo's
    jstests/replsets/single_server_majority.js), so the service needs no topology check. SecantusDB
    without its replica-set advertisement (``--standalone``) must accept it as well."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "secantus", "--port", str(port), "--storage-path", str(tmp_path / "db"),
         "--standalone", "--sync-on-commit", "--log-level", "WARNING"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        uri = f"mongodb://127.0.0.1:{port}/?directConnection=true"
        with MongoClient(uri, serverSelectionTimeoutMS=10_000) as client:
            assert "setName" not in client.admin.command("hello")
            things = client["durability"].get_collection(
                "things", write_concern=Durability.MUST_SURVIVE.write_concern
            )
            assert things.insert_one({"kept": True}).acknowledged
            assert things.find_one_and_update({"kept": True}, {"$set": {"again": True}}) is not None
    finally:
        sigkill(process)
