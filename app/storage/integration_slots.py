"""How the limit on integrations per user holds when connects race: each integration holds a numbered slot.

A count followed by an insert lets two concurrent connects both see 49 of 50 and both insert. So
every integration a limited connect creates takes a slot number ``0 .. limit-1`` in its own
document, and a unique index on ``(owner, slot)`` (``app.storage.mongo.Database.ensure_indexes``)
lets only one document hold each number: of two connects that pick the same free slot, one insert
fails and that connect looks again. No counter can drift, because the slot lives and dies with the
integration: deleting it frees the number, and a crash between two writes leaves nothing behind.

Documents written before slots existed get one the first time their owner connects again (numbers
above the limit if need be), so they count too.
"""

from __future__ import annotations

import secrets

from bson import ObjectId
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from app.domain.errors import LimitReachedError
from app.storage.mongo import Document

SLOT = "slot"


class SlotTaken(Exception):
    """Another connect took the slot this one wanted: look again."""


async def claim_slot(collection: AsyncCollection[Document], owner: str, limit: int) -> int:
    """A slot number below ``limit`` that none of ``owner``'s integrations holds, to insert one with.

    Raises ``LimitReachedError`` when every slot is held, and ``SlotTaken`` when a concurrent write got
    in the way of numbering an older document (then look again).
    """
    documents = [doc async for doc in collection.find({"owner": owner}, {SLOT: 1})]
    taken = {doc[SLOT] for doc in documents if isinstance(doc.get(SLOT), int)}
    for doc in documents:
        if not isinstance(doc.get(SLOT), int):
            number = next(n for n in range(len(documents) + 1) if n not in taken)
            await _number(collection, doc["_id"], number)
            taken.add(number)
    free = [n for n in range(limit) if n not in taken]
    if not free:
        raise LimitReachedError(
            f"You already have {limit} integrations, the most this service allows; disconnect one you no "
            "longer use, then connect this one.",
            limit=limit,
        )
    # A random free slot: concurrent connects of one user rarely want the same one.
    return secrets.choice(free)


async def _number(collection: AsyncCollection[Document], document_id: ObjectId, number: int) -> None:
    try:
        await collection.update_one({"_id": document_id, SLOT: {"$exists": False}}, {"$set": {SLOT: number}})
    except DuplicateKeyError:
        raise SlotTaken from None
