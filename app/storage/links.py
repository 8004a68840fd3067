"""The ``repository_links`` collection: one document per (owner, integration, repository).

- The id is random and URL-safe (22 characters): it is part of the webhook URL at the host, so it must
  not be guessable from another link's id (an ObjectId would be).
- Secrets are ciphertexts bound like an integration's tokens (``storage.integration_secrets``): to the
  link's id and field (``webhookSecret``, ``sshPrivateKey``, ``deployToken``) and to its owner,
  provider, host and API URL, written together with the ids they belong to. A link changed in the
  database (given to another owner, say) no longer opens, and is answered like a missing one.
- Setting a link up at the host takes a lease (``setup``): one request at a time adds the hook and the
  key, so two concurrent ``linkRepository`` calls cannot leave two hooks. A lease that outlived its
  holder (a crash) expires; the next link check repairs what it left (hooks are found by their URL).
- Every write must survive a crash and a failover (``w: "majority", j: true``): a link that was
  confirmed must not vanish while its hook keeps delivering.
"""

from __future__ import annotations

import asyncio
import logging
import secrets as random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pymongo
from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from app.domain.errors import CipherError, NotFoundError, ServiceUnavailableError
from app.domain.links import LinkSecrets, LinkStatus, RepositoryLink
from app.domain.models import Integration, Repository
from app.hosts.deploy import GrantedReadAccess
from app.security.crypto import TokenCipher
from app.storage import integration_secrets
from app.storage.durability import Durability
from app.storage.integration_secrets import binding_of, destination_of
from app.storage.link_documents import read_access_fields, repository_fields, to_link
from app.storage.mongo import Database, Document, unavailable_on_failure

log = logging.getLogger(__name__)

COLLECTION = "repository_links"
WEBHOOK_SECRET = "webhookSecret"
SSH_PRIVATE_KEY = "sshPrivateKey"
DEPLOY_TOKEN = "deployToken"
SECRET_FIELDS = (WEBHOOK_SECRET, SSH_PRIVATE_KEY, DEPLOY_TOKEN)
_ID_BYTES = 16


@dataclass(frozen=True)
class Reservation:
    """A link about to be set up (or repaired) at the host.

    ``holder`` None: another request is setting it up right now; this one must leave the host alone.
    ``created``: the link is new, so a failed setup removes it again.
    """

    link: RepositoryLink
    secrets: LinkSecrets
    created: bool
    holder: str | None


def new_link_id() -> str:
    return random.token_urlsafe(_ID_BYTES)


class LinkStore:
    def __init__(self, database: Database, cipher: TokenCipher) -> None:
        # A link that was confirmed must not vanish while its hook keeps delivering.
        self._collection: AsyncCollection[Document] = database.collection(COLLECTION, Durability.MUST_SURVIVE)
        self._cipher = cipher

    # --- setting up ---------------------------------------------------------------------------------

    @unavailable_on_failure
    async def reserve(
        self,
        integration: Integration,
        repository: Repository,
        branch: str,
        *,
        holder: str,
        now: datetime,
        until: datetime,
    ) -> Reservation:
        """The owner's link of this repository, leased to ``holder`` for setting up; created if new."""
        key = {"owner": integration.owner, "integrationId": integration.id, "repositoryId": repository.id}
        for _ in range(5):  # the link may be created or removed by a concurrent request meanwhile
            link_id = new_link_id()
            doc: Document = key | {
                "_id": link_id,
                "provider": integration.provider.value,
                "host": integration.host,
                "apiUrl": integration.endpoint.api_url,
                "repository": repository_fields(repository),
                "branch": branch,
                "status": LinkStatus.ACTIVE.value,
                "statusMessage": None,
                "hookId": None,
                "readAccess": None,
                "eventSequence": 0,
                "createdAt": now,
                "updatedAt": now,
                "setup": {"holder": holder, "until": until},
            }
            doc["secrets"] = {WEBHOOK_SECRET: self._seal(random.token_urlsafe(32), doc, WEBHOOK_SECRET)}
            try:
                await self._collection.insert_one(doc)
            except DuplicateKeyError:
                pass
            else:
                return Reservation(to_link(doc), self._secrets(doc), created=True, holder=holder)
            taken = await self._collection.find_one_and_update(
                key | {"$or": [{"setup": None}, {"setup.until": {"$lte": now}}]},
                {"$set": {"setup": {"holder": holder, "until": until}}},
                return_document=ReturnDocument.AFTER,
            )
            if taken is not None:
                return Reservation(to_link(taken), self._secrets(taken), created=False, holder=holder)
            busy = await self._collection.find_one(key)
            if busy is not None:
                return Reservation(to_link(busy), self._secrets(busy), created=False, holder=None)
        raise RuntimeError("could not reserve the link after repeated concurrent changes")

    @unavailable_on_failure
    async def complete_setup(
        self,
        link_id: str,
        holder: str,
        *,
        repository: Repository,
        branch: str,
        hook_id: str,
        granted: GrantedReadAccess | None,
        now: datetime,
    ) -> RepositoryLink | None:
        """Record what the host now holds and give the lease back; None when the lease was lost.

        ``granted`` None: the read access set up before is still there and stays as it is.
        """
        fields: Document = {
            "repository": repository_fields(repository),
            "branch": branch,
            "hookId": hook_id,
            "status": LinkStatus.ACTIVE.value,
            "statusMessage": None,
            "updatedAt": now,
        }
        matching: Document = {"_id": link_id, "setup.holder": holder}
        if granted is not None:
            # Sealed for the link as it is stored, and written only if it still is.
            current = await self._collection.find_one(matching, {"secrets": 0})
            if current is None:
                return None
            matching |= destination_of(current)
            fields["readAccess"] = read_access_fields(granted.access)
            fields[f"secrets.{SSH_PRIVATE_KEY}"] = self._seal_optional(
                granted.ssh_private_key, current, SSH_PRIVATE_KEY
            )
            fields[f"secrets.{DEPLOY_TOKEN}"] = self._seal_optional(
                granted.deploy_token, current, DEPLOY_TOKEN
            )
        doc = await self._collection.find_one_and_update(
            matching,
            {"$set": fields, "$unset": {"setup": ""}},
            projection={"secrets": 0},
            return_document=ReturnDocument.AFTER,
        )
        return to_link(doc) if doc is not None else None

    @unavailable_on_failure
    async def release(self, link_id: str, holder: str, *, remove: bool) -> None:
        """Give up a lease after a failed setup; ``remove``: the link was new, so it goes too."""
        if remove:
            await self._collection.delete_one({"_id": link_id, "setup.holder": holder})
        else:
            await self._collection.update_one(
                {"_id": link_id, "setup.holder": holder}, {"$unset": {"setup": ""}}
            )

    # --- reading -------------------------------------------------------------------------------------

    @unavailable_on_failure
    async def get(self, owner: str, link_id: str) -> RepositoryLink | None:
        doc = await self._collection.find_one({"_id": link_id, "owner": owner}, {"secrets": 0})
        return to_link(doc) if doc is not None else None

    @unavailable_on_failure
    async def get_many(self, owner: str, link_ids: Sequence[str]) -> dict[str, RepositoryLink]:
        cursor = self._collection.find({"_id": {"$in": list(link_ids)}, "owner": owner}, {"secrets": 0})
        return {str(doc["_id"]): to_link(doc) async for doc in cursor}

    @unavailable_on_failure
    async def with_secrets(self, owner: str, link_id: str) -> tuple[RepositoryLink, LinkSecrets] | None:
        doc = await self._collection.find_one({"_id": link_id, "owner": owner})
        return (to_link(doc), self._secrets(doc)) if doc is not None else None

    @unavailable_on_failure
    async def for_delivery(
        self, link_id: str, *, deadline_seconds: float
    ) -> tuple[RepositoryLink, str] | None:
        """A link and its webhook secret, by id alone (a delivery names no owner), within the deadline.

        ``pymongo.timeout`` alone may overshoot while no server is selectable (its waits end on the
        monitor's half-second beat): the asyncio deadline holds it to the second the host is promised.
        """
        try:
            async with asyncio.timeout(deadline_seconds):
                with pymongo.timeout(deadline_seconds):
                    doc = await self._collection.find_one({"_id": link_id})
        except TimeoutError:
            raise ServiceUnavailableError() from None
        if doc is None or not (doc.get("secrets") or {}).get(WEBHOOK_SECRET):
            return None
        try:
            return to_link(doc), self._open(doc, WEBHOOK_SECRET)
        except NotFoundError:
            return None  # a link whose secret does not open for it is no link to deliver to

    @unavailable_on_failure
    async def list_for_owner(self, owner: str) -> list[RepositoryLink]:
        cursor = self._collection.find({"owner": owner}, {"secrets": 0}).sort([("createdAt", 1), ("_id", 1)])
        return [to_link(doc) async for doc in cursor]

    @unavailable_on_failure
    async def list_for_integration(self, owner: str, integration_id: str) -> list[RepositoryLink]:
        cursor = self._collection.find({"owner": owner, "integrationId": integration_id}, {"secrets": 0})
        return [to_link(doc) async for doc in cursor]

    # --- changing ------------------------------------------------------------------------------------

    @unavailable_on_failure
    async def set_status(
        self, link_id: str, status: LinkStatus, message: str | None, *, hook_id: str | None, now: datetime
    ) -> None:
        """Record what a check found, unless the link was set up again meanwhile (another hook)."""
        await self._collection.update_one(
            {"_id": link_id, "hookId": hook_id, "setup": None},
            {"$set": {"status": status.value, "statusMessage": message, "updatedAt": now}},
        )

    @unavailable_on_failure
    async def note_event(self, link_id: str, sequence: int, received_at: datetime) -> None:
        await self._collection.update_one(
            {"_id": link_id}, {"$max": {"eventSequence": sequence, "lastEventAt": received_at}}
        )

    @unavailable_on_failure
    async def delete(self, owner: str, link_id: str) -> bool:
        result = await self._collection.delete_one({"_id": link_id, "owner": owner})
        return result.deleted_count == 1

    @unavailable_on_failure
    async def rotate_keys(self, *, keep_going: Callable[[], bool] = lambda: True) -> int:
        """Re-encrypt every link secret not under the first key, or written the old way, as
        ``IntegrationRepository.rotate_keys`` does (``storage.integration_secrets.rotate``); how many were."""
        return await integration_secrets.rotate(self._collection, self._cipher, keep_going, SECRET_FIELDS)

    # --- secrets -------------------------------------------------------------------------------------

    def _secrets(self, doc: Document) -> LinkSecrets:
        stored: dict[str, Any] = doc.get("secrets") or {}
        return LinkSecrets(
            webhook_secret=self._open(doc, WEBHOOK_SECRET),
            ssh_private_key=self._open(doc, SSH_PRIVATE_KEY) if stored.get(SSH_PRIVATE_KEY) else None,
            deploy_token=self._open(doc, DEPLOY_TOKEN) if stored.get(DEPLOY_TOKEN) else None,
        )

    def _seal(self, value: str, doc: Document, field: str) -> str:
        return self._cipher.encrypt(value, binding_of(doc, field))

    def _seal_optional(self, value: str | None, doc: Document, field: str) -> str | None:
        return self._seal(value, doc, field) if value else None

    def _open(self, doc: Document, field: str) -> str:
        """The secret ``field`` of ``doc``; a link whose secrets do not open for it is answered as missing."""
        try:
            return self._cipher.decrypt(doc["secrets"][field], binding_of(doc, field))
        except CipherError as exc:
            log.error("a link's stored secret cannot be used: %s", exc, extra={"reason": exc.reason})
            if exc.reason in ("unknown_key", "legacy"):
                raise ServiceUnavailableError(
                    "This link's stored secrets cannot be read until the operator restores their "
                    "encryption key or migrates them (python -m app rotate-keys); try again later."
                ) from None
            raise NotFoundError(
                "This link's stored secrets no longer match it: link the repository again."
            ) from None
