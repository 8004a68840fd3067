"""``BranchListStore``: the branch lists of repositories, kept in ``repository_cache`` next to the
repository listings of the same integration (so a disconnect and the TTL clean-up take them too).

One document per list (a repository's branches, or those a host found for one search):
``{integrationId, key: "branches:<digest>", kind: "branches", format, scope, fetchedAt, generation,
complete, pages: [{stream, number, etag, branches: [[name, sha, protected], …]}], expireAt}``.
Branches are stored as short arrays: 5,000 branches are about 300 KB, far below MongoDB's 16 MB.
The whole list is written in one write, so a reader never sees half of it.

Decoded lists are remembered in memory by ``generation`` (a new one whenever the content changes),
as ``storage.listings`` does: every read still asks MongoDB which generation is current.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from pymongo.asynchronous.collection import AsyncCollection

from app.domain.models import Branch
from app.hosts.base import BranchListing
from app.net.pagination import PageRecord
from app.storage.durability import Durability
from app.storage.mongo import Database, Document, unavailable_on_failure

KEEP_BRANCH_LIST = timedelta(days=1)
MEMO_SIZE = 256
FORMAT = 1


@dataclass(frozen=True)
class StoredBranches:
    """A stored branch list and when the host last confirmed it."""

    listing: BranchListing
    fetched_at: datetime
    generation: str
    scope: str  # what the token could see when this was listed (see services.catalog.scope_of)


class PreparedBranches:
    """A branch list ready to be answered with (``stored``: what a later ``load`` returns) and the write
    that ``BranchListStore.save`` will make; nothing is written until then."""

    def __init__(self, integration_id: str, key: str, stored: StoredBranches, document: Document) -> None:
        self.integration_id = integration_id
        self.key = key
        self.stored = stored
        self._document = document


class BranchListStore:
    """Branch lists by (integration, key): ``load``, ``prepare`` + ``save``."""

    def __init__(self, database: Database, *, memo_size: int = MEMO_SIZE) -> None:
        # Lost in a crash or a failover, a branch list is read from the host again: w:1 is enough.
        self._collection: AsyncCollection[Document] = database.collection(
            "repository_cache", Durability.REBUILDABLE
        )
        self._memo: OrderedDict[tuple[str, str, str], BranchListing] = OrderedDict()
        self._memo_size = memo_size

    @unavailable_on_failure
    async def load(self, integration_id: str, key: str) -> StoredBranches | None:
        """The stored list ``key`` of the integration; None when there is none."""
        doc = await self._collection.find_one(
            {"integrationId": integration_id, "key": key}, projection={"pages": False}
        )
        if doc is None or doc.get("kind") != "branches" or doc.get("format") != FORMAT:
            return None
        generation = str(doc.get("generation"))
        memo_key = (integration_id, key, generation)
        listing = self._memo.get(memo_key)
        if listing is None:
            full = await self._collection.find_one({"integrationId": integration_id, "key": key})
            if full is None or str(full.get("generation")) != generation:
                return None  # replaced between the two reads: the caller lists afresh
            listing = _listing(full)
            self._remember(memo_key, listing)
        else:
            self._memo.move_to_end(memo_key)
        return StoredBranches(listing, _utc(doc["fetchedAt"]), generation, str(doc.get("scope", "")))

    def prepare(
        self,
        integration_id: str,
        key: str,
        scope: str,
        listing: BranchListing,
        fetched_at: datetime,
        previous: StoredBranches | None,
    ) -> PreparedBranches:
        """Prepare writing ``listing`` (no I/O), so the caller can answer before ``save`` writes it;
        the generation stays when every page was a 304."""
        fetched_at = fetched_at.replace(microsecond=fetched_at.microsecond // 1000 * 1000)
        unchanged = (
            previous is not None
            and not any(p.fetched for p in listing.pages)
            and [(p.stream, p.number) for p in previous.listing.pages]
            == [(p.stream, p.number) for p in listing.pages]
        )
        generation = previous.generation if unchanged and previous else uuid.uuid4().hex
        document = {
            "kind": "branches",
            "format": FORMAT,
            "scope": scope,
            "fetchedAt": fetched_at,
            "generation": generation,
            "complete": listing.complete,
            "pages": [
                {
                    "stream": p.stream,
                    "number": p.number,
                    "etag": p.etag,
                    "branches": [[b.name, b.commit_sha, b.protected] for b in p.branches],
                }
                for p in listing.pages
            ],
            "expireAt": fetched_at + KEEP_BRANCH_LIST,
        }
        stored = replace(listing, pages=tuple(replace(p, fetched=False) for p in listing.pages))
        self._remember((integration_id, key, generation), stored)
        return PreparedBranches(
            integration_id, key, StoredBranches(stored, fetched_at, generation, scope), document
        )

    @unavailable_on_failure
    async def save(self, prepared: PreparedBranches) -> StoredBranches:
        """Write a prepared branch list (one document)."""
        await self._collection.update_one(
            {"integrationId": prepared.integration_id, "key": prepared.key},
            {"$set": prepared._document},
            upsert=True,
        )
        return prepared.stored

    def _remember(self, memo_key: tuple[str, str, str], listing: BranchListing) -> None:
        self._memo[memo_key] = listing
        self._memo.move_to_end(memo_key)
        while len(self._memo) > self._memo_size:
            self._memo.popitem(last=False)


def _listing(doc: Document) -> BranchListing:
    pages = []
    for page in doc.get("pages") or []:
        branches = tuple(
            Branch(name=str(b[0]), commit_sha=str(b[1]), protected=bool(b[2]))
            for b in page.get("branches") or []
        )
        pages.append(
            PageRecord(
                stream=page["stream"],
                number=page["number"],
                etag=page.get("etag"),
                branches=branches,
                fetched=False,
            )
        )
    return BranchListing(pages=tuple(pages), complete=bool(doc.get("complete", True)))


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


__all__ = ["BranchListStore", "PreparedBranches", "StoredBranches"]
