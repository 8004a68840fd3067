"""What the delivery catch-up keeps in MongoDB: which links are due a look at their host's delivery log,
who is looking (a lease), and when a process last received deliveries.

- ``catchUp`` on a link (``repository_links``): ``since`` (look at deliveries from then on), ``dueAt``,
  ``markedAt`` (the last time someone asked for it) and ``attempts`` (failed looks, for the back-off).
  Marking twice keeps the earlier ``since`` and the earlier ``dueAt``. A look that started before the
  last mark does not clear it: a delivery may have failed after the log was read.
- ``catchUpLease`` on a link: one process at a time looks; an expired lease is taken over.
- ``service_markers`` ``{_id: "deliveries", aliveAt}``: every process that serves deliveries writes the
  time now and then; the first process to start after *all* of them were down learns from it how long
  the service was away (see ``services.catch_up``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection

from app.domain.links import RepositoryLink
from app.storage.durability import Durability
from app.storage.integration_documents import as_utc
from app.storage.link_documents import to_link
from app.storage.links import COLLECTION as LINKS
from app.storage.mongo import Database, Document, unavailable_on_failure

MARKERS = "service_markers"
DELIVERIES = "deliveries"


@dataclass(frozen=True)
class DueCheck:
    """A link whose delivery log is to be read from ``since``, leased to whoever claimed it at ``claimed_at``."""

    link: RepositoryLink
    since: datetime
    attempts: int
    claimed_at: datetime
    # Deliveries earlier looks asked the host for, and when: not asked for again too soon.
    asked: Mapping[str, datetime] = field(default_factory=dict)


class CatchUpMarkers:
    def __init__(self, database: Database) -> None:
        # A lost mark would be a delivery never caught up: marks must survive like the links themselves.
        self._links: AsyncCollection[Document] = database.collection(LINKS, Durability.MUST_SURVIVE)
        self._markers: AsyncCollection[Document] = database.collection(MARKERS, Durability.MUST_SURVIVE)

    @unavailable_on_failure
    async def mark(self, link_ids: Sequence[str], since: datetime, now: datetime) -> int:
        """Ask for a look at these links' logs from ``since`` on; how many links exist among them."""
        result = await self._links.update_many({"_id": {"$in": list(link_ids)}}, _marking(since, now))
        return result.matched_count

    @unavailable_on_failure
    async def mark_all(self, since: datetime, now: datetime) -> int:
        """Ask for a look at every set-up link's log (the whole service was away); how many."""
        result = await self._links.update_many({"hookId": {"$ne": None}}, _marking(since, now))
        return result.matched_count

    @unavailable_on_failure
    async def claim(self, holder: str, now: datetime, until: datetime) -> DueCheck | None:
        """The link due first, leased to ``holder`` until ``until``; None when nothing is due."""
        doc = await self._links.find_one_and_update(
            {
                "catchUp.dueAt": {"$lte": now},
                "$or": [{"catchUpLease": None}, {"catchUpLease.until": {"$lte": now}}],
            },
            {"$set": {"catchUpLease": {"holder": holder, "until": until}}},
            sort=[("catchUp.dueAt", ASCENDING)],
            projection={"secrets": 0},
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            return None
        marker = doc["catchUp"]
        since = as_utc(marker.get("since")) or now
        asked = {
            str(entry["id"]): as_utc(entry["at"]) or now
            for entry in marker.get("asked") or ()
            if isinstance(entry, dict) and "id" in entry and "at" in entry
        }
        return DueCheck(to_link(doc), since, int(marker.get("attempts") or 0), claimed_at=now, asked=asked)

    @unavailable_on_failure
    async def finish(
        self,
        check: DueCheck,
        holder: str,
        *,
        retry_at: datetime | None,
        failed: bool = True,
        asked: Mapping[str, datetime] | None = None,
    ) -> None:
        """Clear the mark (unless someone marked the link again since the claim), or set it to ``retry_at``
        (``failed``: the look did not succeed, which counts towards giving up; ``asked``: the deliveries
        this look asked for, remembered for the next one)."""
        owned = {"_id": check.link.id, "catchUpLease.holder": holder}
        if retry_at is not None:
            attempts = check.attempts + 1 if failed else check.attempts
            fields: Document = {"catchUp.dueAt": retry_at, "catchUp.attempts": attempts}
            if asked is not None:
                fields["catchUp.asked"] = [{"id": key, "at": at} for key, at in asked.items()]
            await self._links.update_one(owned, {"$set": fields, "$unset": {"catchUpLease": ""}})
            return
        cleared = await self._links.update_one(
            owned | {"catchUp.markedAt": {"$lte": check.claimed_at}},
            {"$unset": {"catchUp": "", "catchUpLease": ""}},
        )
        if cleared.matched_count == 0:
            await self._links.update_one(owned, {"$unset": {"catchUpLease": ""}})

    @unavailable_on_failure
    async def beat(self, now: datetime) -> datetime | None:
        """Record that deliveries are served now; when the previous beat was (None: never)."""
        doc = await self._markers.find_one_and_update(
            {"_id": DELIVERIES},
            {"$max": {"aliveAt": now}},
            upsert=True,
            return_document=ReturnDocument.BEFORE,
        )
        return as_utc(doc.get("aliveAt")) if doc is not None else None


def _marking(since: datetime, now: datetime) -> Document:
    """Due now (or earlier, if it already was), from the earlier ``since``; marked at ``now``."""
    return {"$min": {"catchUp.since": since, "catchUp.dueAt": now}, "$max": {"catchUp.markedAt": now}}
