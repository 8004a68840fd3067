"""The ``repository_events`` collection: the pushes and tag pushes received for each link.

Two unique indexes carry the promises:

- ``(linkId, deliveryId)``: a delivery is stored once, however often the host sends it.
- ``(linkId, sequence)``: each event gets the next number of its link *at insert*: the link's highest
  number plus one. An insert that collides on this index (another replica took the number) is numbered
  again. Events are inserted in the order of their numbers (``insert_many(ordered=True)``), so number
  n+1 is written only after n is: a reader that has seen n+1 has seen n, and the cursor (the number)
  never skips an event stored concurrently.

Group commit: the deliveries of one link that arrive while its previous write is in flight wait for
it, and are then numbered and written together in one ordered ``insert_many`` — one round trip and one
journal wait for the lot. A burst of 50 deliveries to one repository therefore costs a few writes, not
50 in a row. The queue is in the process only while it waits for the database; what it promises comes
from the indexes, across any number of replicas.

Writes are acknowledged only once they are in the journal of a majority (``w: "majority", j: true``):
the receiver answers the host 2xx only after that. Each store waits at most ``deadline_seconds`` (the
receiver answers 503 after that and promises nothing; the event may still be written, and a
redelivery then finds it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import pymongo
from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, PyMongoError

from app.domain.errors import ServiceUnavailableError
from app.domain.links import RepositoryEvent, RepositoryEventKind
from app.storage.durability import Durability
from app.storage.integration_documents import as_utc
from app.storage.mongo import Database, Document, is_transient, unavailable_on_failure

log = logging.getLogger(__name__)

COLLECTION = "repository_events"
MAX_BATCH = 100
BATCH_DEADLINE_SECONDS = (
    1.0  # one batch's database work: about what a waiter waits, so a 503 means "not stored"
)
_MAX_ROUNDS = 50  # renumbering rounds of one batch: each means another replica wrote to the same link


@dataclass(frozen=True)
class Stored:
    event: RepositoryEvent
    created: bool  # False: this delivery had been stored before (a redelivery or a replay)


@dataclass
class _Waiting:
    event: RepositoryEvent
    known_sequence: int
    outcome: asyncio.Future[Stored] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    def __post_init__(self) -> None:
        # A waiter that gave up (its deadline) no longer reads the outcome: do not warn about it.
        self.outcome.add_done_callback(lambda done: done.cancelled() or done.exception())

    def settle(self, stored: Stored | BaseException) -> None:
        if self.outcome.done():
            return
        if isinstance(stored, BaseException):
            self.outcome.set_exception(stored)
        else:
            self.outcome.set_result(stored)


def _to_event(doc: Document) -> RepositoryEvent:
    return RepositoryEvent(
        link_id=doc["linkId"],
        sequence=int(doc["sequence"]),
        kind=RepositoryEventKind(doc["kind"]),
        ref=doc["ref"],
        before=doc.get("before"),
        after=doc["after"],
        head_commit_message=doc.get("headCommitMessage"),
        pusher=doc.get("pusher"),
        delivery_id=doc["deliveryId"],
        received_at=as_utc(doc["receivedAt"]) or doc["receivedAt"],
    )


class EventStore:
    def __init__(self, database: Database) -> None:
        # The receiver answers the host 2xx only once the event is in the journal of a majority.
        self._collection: AsyncCollection[Document] = database.collection(COLLECTION, Durability.MUST_SURVIVE)
        self._waiting: dict[str, list[_Waiting]] = {}
        self._writers: dict[str, asyncio.Task[None]] = {}

    async def store_once(
        self, event: RepositoryEvent, *, known_sequence: int, deadline_seconds: float
    ) -> Stored:
        """Store ``event`` under the next number of its link (its own ``sequence`` is ignored), or find
        the one stored before for the same delivery. ``known_sequence``: a number the link is known to
        have reached (its events may have been removed since).

        ``ServiceUnavailableError`` when it is not acknowledged within ``deadline_seconds``.
        """
        waiting = _Waiting(event, known_sequence)
        self._waiting.setdefault(event.link_id, []).append(waiting)
        if event.link_id not in self._writers:
            self._writers[event.link_id] = asyncio.create_task(self._write(event.link_id))
        try:
            async with asyncio.timeout(deadline_seconds):
                return await asyncio.shield(waiting.outcome)
        except TimeoutError:
            raise ServiceUnavailableError() from None

    async def drain(self) -> None:
        """Wait for the writes in flight (before the database closes)."""
        while self._writers:
            await asyncio.gather(*self._writers.values(), return_exceptions=True)

    async def _write(self, link_id: str) -> None:
        try:
            while batch := self._waiting.pop(link_id, None):
                for start in range(0, len(batch), MAX_BATCH):
                    await self._write_batch(batch[start : start + MAX_BATCH])
        finally:
            del self._writers[link_id]

    async def _write_batch(self, batch: list[_Waiting]) -> None:
        link_id = batch[0].event.link_id
        first: dict[str, _Waiting] = {}
        followers: list[tuple[_Waiting, _Waiting]] = []  # the same delivery twice in one batch
        for waiting in batch:
            leader = first.setdefault(waiting.event.delivery_id, waiting)
            if leader is not waiting:
                followers.append((waiting, leader))
        try:
            with pymongo.timeout(BATCH_DEADLINE_SECONDS):
                await self._number_and_insert(link_id, list(first.values()))
        except Exception as exc:  # every waiter learns the outcome, whatever it was
            transient = isinstance(exc, PyMongoError) and is_transient(exc)
            if transient:
                log.warning("events not stored: %s", type(exc).__name__, extra={"link_id": link_id})
            for waiting in first.values():
                waiting.settle(ServiceUnavailableError() if transient else exc)
        for follower, leader in followers:
            failed = leader.outcome.exception()
            follower.settle(failed or Stored(leader.outcome.result().event, created=False))

    async def _number_and_insert(self, link_id: str, todo: list[_Waiting]) -> None:
        earlier = self._collection.find(
            {"linkId": link_id, "deliveryId": {"$in": [w.event.delivery_id for w in todo]}}
        )
        found = {doc["deliveryId"]: _to_event(doc) async for doc in earlier}
        for waiting in todo:
            if waiting.event.delivery_id in found:
                waiting.settle(Stored(found[waiting.event.delivery_id], created=False))
        todo = [w for w in todo if w.event.delivery_id not in found]
        for _ in range(_MAX_ROUNDS):
            if not todo:
                return
            base = max(max(w.known_sequence for w in todo), await self._highest(link_id))
            docs = [_document(w.event, base + i + 1) for i, w in enumerate(todo)]
            try:
                await self._collection.insert_many(docs, ordered=True)
            except BulkWriteError as exc:
                todo = await self._after_collision(link_id, todo, docs, exc)
                continue
            for waiting, doc in zip(todo, docs, strict=True):
                waiting.settle(Stored(_to_event(doc), created=True))
            return
        raise RuntimeError("could not number events after repeated concurrent inserts")

    async def _after_collision(
        self, link_id: str, todo: list[_Waiting], docs: list[Document], exc: BulkWriteError
    ) -> list[_Waiting]:
        """Settle what was inserted before the failing document; what is still to be numbered."""
        details = exc.details or {}
        errors = details.get("writeErrors") or []
        if details.get("writeConcernErrors") or not errors or errors[0].get("code") != 11000:
            raise exc  # not a collision: the caller decides whether it may pass
        done = int(errors[0].get("index", details.get("nInserted", 0)))
        for waiting, doc in zip(todo[:done], docs[:done], strict=True):
            waiting.settle(Stored(_to_event(doc), created=True))
        failing = todo[done]
        if (errors[0].get("keyPattern") or {}).get("deliveryId") is not None:
            # Another replica stored this very delivery meanwhile.
            stored = await self._collection.find_one(
                {"linkId": link_id, "deliveryId": failing.event.delivery_id}
            )
            if stored is not None:
                failing.settle(Stored(_to_event(stored), created=False))
                return todo[done + 1 :]
        return todo[done:]  # the number was taken: number them again

    async def _highest(self, link_id: str) -> int:
        doc = await self._collection.find_one(
            {"linkId": link_id}, {"sequence": 1}, sort=[("sequence", DESCENDING)]
        )
        return int(doc["sequence"]) if doc is not None else 0

    @unavailable_on_failure
    async def page(self, link_id: str, after: int, first: int) -> tuple[list[RepositoryEvent], bool]:
        """Events numbered above ``after``, oldest first: at most ``first``, and whether more follow."""
        cursor = (
            self._collection.find({"linkId": link_id, "sequence": {"$gt": after}})
            .sort("sequence", ASCENDING)
            .limit(first + 1)
        )
        found = [_to_event(doc) async for doc in cursor]
        return found[:first], len(found) > first

    @unavailable_on_failure
    async def get(self, link_id: str, sequence: int) -> RepositoryEvent | None:
        doc = await self._collection.find_one({"linkId": link_id, "sequence": sequence})
        return _to_event(doc) if doc is not None else None

    @unavailable_on_failure
    async def stored_deliveries(self, link_id: str, delivery_ids: Sequence[str]) -> set[str]:
        """Which of ``delivery_ids`` are stored for the link."""
        cursor = self._collection.find(
            {"linkId": link_id, "deliveryId": {"$in": list(delivery_ids)}}, {"deliveryId": 1}
        )
        return {str(doc["deliveryId"]) async for doc in cursor}

    @unavailable_on_failure
    async def delete_for_link(self, link_id: str) -> int:
        result = await self._collection.delete_many({"linkId": link_id})
        return result.deleted_count


def _document(event: RepositoryEvent, sequence: int) -> Document:
    return {
        "linkId": event.link_id,
        "sequence": sequence,
        "deliveryId": event.delivery_id,
        "kind": event.kind.value,
        "ref": event.ref,
        "before": event.before,
        "after": event.after,
        "headCommitMessage": event.head_commit_message,
        "pusher": event.pusher,
        "receivedAt": event.received_at,
    }
