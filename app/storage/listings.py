"""``ListingStore``: the ``repository_cache`` collection, each integration's repository listings page by page.

The catalog (``app.services.catalog``) loads and saves listings here; how they are kept is this
module's business alone (pymongo's bulk writes never leave it).

One listing (the full list, or a GitLab search) is a *head* document plus one document per page:

- head ``{integrationId, key, format, scope, fetchedAt, generation, pages: [{stream, number, etag}],
  repositoryAccess, complete, notices, expireAt}``;
- page ``{integrationId, key: "<listing>/<n>", listing, stream, number, etag, repositories: [...],
  references, hiddenOrganizations}``.

``format`` says which fields pages hold: a head of another format is treated as absent, so a
listing saved before a field existed is listed afresh rather than revalidated into 304s that would
keep the field missing for good.

Pages are separate documents so that a listing of any size stays far below MongoDB's 16 MB document
limit (a page of 100 compact repositories is about 30 KB) and a revalidation rewrites only the pages
that changed. Pages are written before the head; a reader checks that every page's ETag is the one
the head names, so a listing half-written by a concurrent writer is treated as absent, never mixed.

Decoding thousands of repositories costs more than reading one small head, so decoded listings are
remembered in memory by ``generation`` (a new one for every change of content). This is a cache of
the database, not state of its own: every read still asks MongoDB for the head, so all replicas
serve what the collection says.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import DeleteMany, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection

from app.domain.models import AccessNotice, AccessNoticeReason, Repository, RepositoryAccess
from app.hosts.base import Listing
from app.net.pagination import PageRecord
from app.storage.durability import Durability
from app.storage.mongo import Database, Document, unavailable_on_failure

# How long an unused listing stays in the collection (the TTL index removes it afterwards).
KEEP_FULL_LISTING = timedelta(days=7)
KEEP_SEARCH_LISTING = timedelta(days=1)
MEMO_SIZE = 256
# Version 2: repositories carry viewerCanAdminister, pages hiddenOrganizations, heads notices.
FORMAT = 2


@dataclass(frozen=True)
class StoredListing:
    """A stored listing and when it was last confirmed with the host."""

    listing: Listing
    fetched_at: datetime
    generation: str
    scope: str  # what the token could see when this was listed (see services.catalog.scope_of)


class PendingSave:
    """A listing ready to be answered with (``stored``: exactly what a later ``load`` returns), and the
    writes that ``ListingStore.save`` will make. Nothing is written until then."""

    def __init__(self, stored: StoredListing, writes: list[UpdateOne | DeleteMany]) -> None:
        self.stored = stored
        self._writes = writes


class ListingStore:
    """Listings by (integration, key): ``load``, ``prepare`` + ``save`` (or ``store``), ``delete_for_integration``."""

    def __init__(self, database: Database, *, memo_size: int = MEMO_SIZE) -> None:
        # A listing lost in a crash or a failover is listed again from the host: w:1 is enough.
        self._collection: AsyncCollection[Document] = database.collection(
            "repository_cache", Durability.REBUILDABLE
        )
        # Except forgetting a disconnected integration's listings: its private repository names must
        # not come back when a failover rolls a cheaper delete back.
        self._forget: AsyncCollection[Document] = database.collection(
            "repository_cache", Durability.MUST_SURVIVE
        )
        self._memo: OrderedDict[tuple[str, str, str], Listing] = OrderedDict()
        self._memo_size = memo_size

    @unavailable_on_failure
    async def load(self, integration_id: str, key: str) -> StoredListing | None:
        """The stored listing ``key`` of the integration; None when there is none (or only a torn one)."""
        head = await self._collection.find_one({"integrationId": integration_id, "key": key})
        if head is None or head.get("kind") != "head" or head.get("format") != FORMAT:
            return None
        generation = str(head.get("generation"))
        memo_key = (integration_id, key, generation)
        listing = self._memo.get(memo_key)
        if listing is None:
            listing = await self._load_pages(integration_id, key, head)
            if listing is None:
                return None
            self._remember(memo_key, listing)
        else:
            self._memo.move_to_end(memo_key)
        return StoredListing(
            listing=listing,
            fetched_at=_utc(head["fetchedAt"]),
            generation=generation,
            scope=str(head.get("scope", "")),
        )

    async def _load_pages(self, integration_id: str, key: str, head: Document) -> Listing | None:
        expected = {(p["stream"], p["number"]): p.get("etag") for p in head.get("pages") or []}
        found: dict[tuple[str, int], Document] = {}
        async for stored in self._collection.find({"integrationId": integration_id, "listing": key}):
            found[(stored["stream"], stored["number"])] = stored
        pages: list[PageRecord] = []
        for ident, etag in expected.items():
            doc = found.get(ident)
            if doc is None or doc.get("etag") != etag:
                return None  # torn by a concurrent writer: let the caller list afresh
            pages.append(
                PageRecord(
                    stream=doc["stream"],
                    number=doc["number"],
                    etag=doc.get("etag"),
                    repositories=tuple(_repository(r) for r in doc.get("repositories") or []),
                    references=tuple(doc.get("references") or []),
                    fetched=False,
                    hidden_organizations=tuple(doc.get("hiddenOrganizations") or []),
                )
            )
        access = head.get("repositoryAccess")
        return Listing(
            pages=tuple(pages),
            repository_access=RepositoryAccess(access) if access else None,
            complete=bool(head.get("complete", True)),
            notices=tuple(_notice(n) for n in head.get("notices") or []),
        )

    def prepare(
        self,
        integration_id: str,
        key: str,
        scope: str,
        listing: Listing,
        fetched_at: datetime,
        previous: StoredListing | None,
        *,
        search: bool = False,
    ) -> PendingSave:
        """Prepare saving ``listing`` (no I/O): the caller can answer with it before ``save`` writes it.

        The generation stays the same when no page changed (every page a 304), so readers keep
        their decoded copy; ``fetchedAt`` moves either way.
        """
        # BSON dates keep milliseconds: answer with the time exactly as a later read will see it.
        fetched_at = fetched_at.replace(microsecond=fetched_at.microsecond // 1000 * 1000)
        expire_at = fetched_at + (KEEP_SEARCH_LISTING if search else KEEP_FULL_LISTING)
        unchanged = (
            previous is not None
            and _same_pages(previous.listing, listing)
            and previous.listing.notices == listing.notices
        )
        generation = previous.generation if unchanged and previous else uuid.uuid4().hex
        writes: list[UpdateOne | DeleteMany] = []
        page_keys = []
        for page in listing.pages:
            page_key = f"{key}/{page.stream}/{page.number}"
            page_keys.append(page_key)
            ident = {"integrationId": integration_id, "key": page_key}
            if page.fetched:
                document = {
                    "listing": key,
                    "stream": page.stream,
                    "number": page.number,
                    "etag": page.etag,
                    "repositories": [_document(r) for r in page.repositories],
                    "references": list(page.references),
                    "hiddenOrganizations": list(page.hidden_organizations),
                    "expireAt": expire_at,
                }
                writes.append(UpdateOne(ident, {"$set": document}, upsert=True))
            else:
                # A 304: the stored content stands; only the ETag (rarely), what the headers said
                # was left out, and the expiry move.
                changes = {
                    "etag": page.etag,
                    "hiddenOrganizations": list(page.hidden_organizations),
                    "expireAt": expire_at,
                }
                writes.append(UpdateOne(ident, {"$set": changes}))
        writes.append(
            DeleteMany({"integrationId": integration_id, "listing": key, "key": {"$nin": page_keys}})
        )
        head = {
            "kind": "head",
            "format": FORMAT,
            "scope": scope,
            "fetchedAt": fetched_at,
            "generation": generation,
            "pages": [{"stream": p.stream, "number": p.number, "etag": p.etag} for p in listing.pages],
            "repositoryAccess": listing.repository_access.value if listing.repository_access else None,
            "complete": listing.complete,
            "notices": [_notice_document(n) for n in listing.notices],
            "expireAt": expire_at,
        }
        # Last: a reader never finds a head whose pages are not written yet.
        writes.append(UpdateOne({"integrationId": integration_id, "key": key}, {"$set": head}, upsert=True))
        stored = replace(listing, pages=tuple(replace(p, fetched=False) for p in listing.pages))
        self._remember((integration_id, key, generation), stored)
        return PendingSave(StoredListing(stored, fetched_at, generation, scope), writes)

    @unavailable_on_failure
    async def save(self, pending: PendingSave) -> None:
        """Write a prepared listing: changed pages, stale pages removed, then the head (ordered)."""
        await self._collection.bulk_write(pending._writes, ordered=True)

    async def store(
        self,
        integration_id: str,
        key: str,
        scope: str,
        listing: Listing,
        fetched_at: datetime,
        previous: StoredListing | None,
        *,
        search: bool = False,
    ) -> StoredListing:
        """``prepare`` and ``save`` in one go."""
        pending = self.prepare(integration_id, key, scope, listing, fetched_at, previous, search=search)
        await self.save(pending)
        return pending.stored

    @unavailable_on_failure
    async def delete_for_integration(self, integration_id: str) -> int:
        """Forget every listing of an integration (disconnect); returns how many documents went."""
        result = await self._forget.delete_many({"integrationId": integration_id})
        for memo_key in [k for k in self._memo if k[0] == integration_id]:
            del self._memo[memo_key]
        return result.deleted_count

    def _remember(self, memo_key: tuple[str, str, str], listing: Listing) -> None:
        self._memo[memo_key] = listing
        self._memo.move_to_end(memo_key)
        while len(self._memo) > self._memo_size:
            self._memo.popitem(last=False)


def _same_pages(before: Listing, after: Listing) -> bool:
    """True when no page changed content (all 304s, same plan)."""
    if any(p.fetched for p in after.pages):
        return False
    return [(p.stream, p.number) for p in before.pages] == [(p.stream, p.number) for p in after.pages]


def _document(repo: Repository) -> dict[str, Any]:
    return {
        "id": repo.id,
        "name": repo.name,
        "fullName": repo.full_name,
        "owner": repo.owner,
        "private": repo.private,
        "webUrl": repo.web_url,
        "cloneUrl": repo.clone_url,
        "defaultBranch": repo.default_branch,
        "pushedAt": repo.pushed_at,
        "archived": repo.archived,
        "fork": repo.fork,
        "admin": repo.viewer_can_administer,
    }


def _repository(doc: dict[str, Any]) -> Repository:
    pushed_at = doc.get("pushedAt")
    return Repository(
        id=doc["id"],
        name=doc["name"],
        full_name=doc["fullName"],
        owner=doc["owner"],
        private=bool(doc["private"]),
        web_url=doc["webUrl"],
        clone_url=doc["cloneUrl"],
        default_branch=doc.get("defaultBranch"),
        pushed_at=_utc(pushed_at) if pushed_at is not None else None,
        archived=bool(doc.get("archived")),
        fork=bool(doc.get("fork")),
        viewer_can_administer=bool(doc.get("admin")),
    )


def _notice_document(notice: AccessNotice) -> dict[str, Any]:
    return {
        "reason": notice.reason.value,
        "message": notice.message,
        "url": notice.url,
        "organizations": list(notice.organizations),
    }


def _notice(doc: dict[str, Any]) -> AccessNotice:
    return AccessNotice(
        reason=AccessNoticeReason(doc["reason"]),
        message=str(doc["message"]),
        url=doc.get("url"),
        organizations=tuple(doc.get("organizations") or ()),
    )


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


__all__: Sequence[str] = ["ListingStore", "PendingSave", "StoredListing"]
