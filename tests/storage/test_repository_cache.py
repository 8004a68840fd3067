"""The listing store (the repository cache) against the real embedded server: pages as documents, ETags, torn writes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from app.domain.models import AccessNotice, AccessNoticeReason, Repository, RepositoryAccess
from app.hosts.base import Listing
from app.net.pagination import PageRecord
from app.settings.model import Settings
from app.storage.listings import ListingStore
from app.storage.mongo import Database

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def listing(pages: int, per_page: int = 100, *, access: RepositoryAccess | None = None) -> Listing:
    records = []
    for number in range(1, pages + 1):
        repositories = tuple(
            Repository(
                id=f"org/repo-{number}-{i}",
                name=f"repo-{number}-{i}",
                full_name=f"org/repo-{number}-{i}",
                owner="org",
                private=i % 2 == 0,
                web_url=f"https://github.com/org/repo-{number}-{i}",
                clone_url=f"https://github.com/org/repo-{number}-{i}.git",
                default_branch="main",
                pushed_at=NOW - timedelta(minutes=number * per_page + i),
                archived=i % 10 == 0,
            )
            for i in range(per_page)
        )
        records.append(PageRecord("/user/repos", number, f'"etag-{number}"', repositories))
    return Listing(tuple(records), repository_access=access)


@pytest.fixture
async def database(settings: Settings) -> AsyncIterator[Database]:
    db = Database(settings.mongodb_uri.reveal(), settings.mongodb_database)  # type: ignore[union-attr]
    await db.ensure_indexes()
    yield db
    await db.client.drop_database(settings.mongodb_database)
    await db.close()


async def test_five_thousand_repositories_round_trip_through_page_documents(database: Database) -> None:
    cache = ListingStore(database)
    stored = listing(50, access=RepositoryAccess.SELECTED)
    await cache.store("int-1", "all", "scope-a", stored, NOW, None)

    fresh = ListingStore(database)  # another replica: nothing decoded in memory
    loaded = await fresh.load("int-1", "all")
    assert loaded is not None
    assert loaded.fetched_at == NOW and loaded.scope == "scope-a"
    assert loaded.listing.repository_access is RepositoryAccess.SELECTED
    assert [p.etag for p in loaded.listing.pages] == [p.etag for p in stored.pages]
    assert loaded.listing.repositories == stored.repositories
    assert len(loaded.listing.repositories) == 5000
    # One document per page plus the head: each far below the 16 MB limit.
    assert await database.db["repository_cache"].count_documents({"integrationId": "int-1"}) == 51


async def test_an_all_304_revalidation_keeps_the_generation_and_moves_fetched_at(database: Database) -> None:
    cache = ListingStore(database)
    first = await cache.store("int-1", "all", "s", listing(2), NOW, None)
    unchanged = Listing(tuple(replace(p, fetched=False) for p in first.listing.pages))
    later = NOW + timedelta(minutes=5)
    second = await cache.store("int-1", "all", "s", unchanged, later, first)
    assert second.generation == first.generation
    loaded = await ListingStore(database).load("int-1", "all")
    assert loaded is not None and loaded.fetched_at == later


async def test_a_shrunk_listing_drops_the_pages_past_its_end(database: Database) -> None:
    cache = ListingStore(database)
    first = await cache.store("int-1", "all", "s", listing(3), NOW, None)
    await cache.store("int-1", "all", "s", listing(1), NOW, first)
    loaded = await ListingStore(database).load("int-1", "all")
    assert loaded is not None and len(loaded.listing.pages) == 1
    assert await database.db["repository_cache"].count_documents({"integrationId": "int-1"}) == 2


async def test_a_listing_whose_pages_do_not_match_its_head_is_treated_as_absent(database: Database) -> None:
    cache = ListingStore(database)
    await cache.store("int-1", "all", "s", listing(2), NOW, None)
    # A concurrent writer replaced page 2 but its head never landed.
    await database.db["repository_cache"].update_one(
        {"integrationId": "int-1", "key": "all//user/repos/2"}, {"$set": {"etag": '"other"'}}
    )
    assert await ListingStore(database).load("int-1", "all") is None


async def test_listings_are_kept_per_integration_and_key_and_forgotten_on_disconnect(
    database: Database,
) -> None:
    cache = ListingStore(database)
    await cache.store("int-1", "all", "s", listing(1), NOW, None)
    await cache.store("int-1", "search:abc", "s", listing(1, per_page=3), NOW, None, search=True)
    await cache.store("int-2", "all", "s", listing(2), NOW, None)
    search = await cache.load("int-1", "search:abc")
    assert search is not None and len(search.listing.repositories) == 3
    assert await cache.delete_for_integration("int-1") == 4
    assert await cache.load("int-1", "all") is None
    other = await cache.load("int-2", "all")
    assert other is not None and len(other.listing.repositories) == 200


async def test_notices_admin_rights_and_hidden_organizations_round_trip(database: Database) -> None:
    notice = AccessNotice(
        AccessNoticeReason.SSO_AUTHORIZATION_REQUIRED,
        "authorize it",
        "https://github.com/settings/tokens",
        ("42",),
    )
    pages = listing(1).pages
    admin = replace(pages[0].repositories[0], viewer_can_administer=True)
    page = replace(pages[0], repositories=(admin, *pages[0].repositories[1:]), hidden_organizations=("42",))
    await ListingStore(database).store("int-1", "all", "s", Listing((page,), notices=(notice,)), NOW, None)
    loaded = await ListingStore(database).load("int-1", "all")
    assert loaded is not None
    assert loaded.listing.notices == (notice,)
    assert loaded.listing.pages[0].hidden_organizations == ("42",)
    assert {r.id for r in loaded.listing.repositories if r.viewer_can_administer} == {admin.id}


async def test_a_listing_saved_in_an_older_format_is_listed_afresh(database: Database) -> None:
    # Saved before pages held viewerCanAdminister: revalidating it would keep the field missing for
    # good (its pages answer 304), so it counts as absent.
    await ListingStore(database).store("int-1", "all", "s", listing(1), NOW, None)
    await database.db["repository_cache"].update_one(
        {"integrationId": "int-1", "key": "all"}, {"$unset": {"format": ""}}
    )
    assert await ListingStore(database).load("int-1", "all") is None
