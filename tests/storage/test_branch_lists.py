"""The branch list store against the real embedded server: one document per list, generations, a
disconnect taking the branch lists with the repository listings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from app.domain.models import Branch
from app.hosts.base import BranchListing
from app.net.pagination import PageRecord
from app.settings.model import Settings
from app.storage.branch_lists import BranchListStore
from app.storage.listings import ListingStore
from app.storage.mongo import Database

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def branches(count: int) -> BranchListing:
    heads = tuple(Branch(f"release/{n:04d}", f"{n:040x}", False) for n in range(count))
    protected = (Branch("release/0000", f"{0:040x}", True),)
    return BranchListing(
        (
            PageRecord("/repos/o/r/git/matching-refs/heads", 1, '"refs"', branches=heads),
            PageRecord("/repos/o/r/branches", 1, '"protected"', branches=protected),
        )
    )


@pytest.fixture
async def database(settings: Settings) -> AsyncIterator[Database]:
    db = Database(settings.mongodb_uri.reveal(), settings.mongodb_database)  # type: ignore[union-attr]
    await db.ensure_indexes()
    yield db
    await db.client.drop_database(settings.mongodb_database)
    await db.close()


async def test_five_thousand_branches_round_trip_in_one_document(database: Database) -> None:
    store = BranchListStore(database)
    saved = await store.save(store.prepare("int-1", "branches:a", "scope", branches(5000), NOW, None))
    loaded = await BranchListStore(database).load("int-1", "branches:a")  # another replica
    assert loaded is not None and loaded.generation == saved.generation and loaded.fetched_at == NOW
    assert loaded.listing.branches == branches(5000).branches
    assert loaded.listing.branches[0] == Branch("release/0000", f"{0:040x}", True)
    assert await database.db["repository_cache"].count_documents({"integrationId": "int-1"}) == 1


async def test_an_all_304_read_keeps_the_generation(database: Database) -> None:
    store = BranchListStore(database)
    first = await store.save(store.prepare("int-1", "branches:a", "s", branches(3), NOW, None))
    unchanged = BranchListing(tuple(replace(p, fetched=False) for p in first.listing.pages))
    later = NOW + timedelta(minutes=1)
    second = await store.save(store.prepare("int-1", "branches:a", "s", unchanged, later, first))
    assert second.generation == first.generation
    changed = await store.save(
        store.prepare("int-1", "branches:a", "s", branches(4), NOW + timedelta(minutes=2), second)
    )
    assert changed.generation != first.generation


async def test_a_disconnect_forgets_branch_lists_too(database: Database) -> None:
    store = BranchListStore(database)
    await store.save(store.prepare("int-1", "branches:a", "s", branches(3), NOW, None))
    await ListingStore(database).delete_for_integration("int-1")
    assert await BranchListStore(database).load("int-1", "branches:a") is None
