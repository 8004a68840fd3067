"""The ``integrations`` collection: one document per (owner, provider, host, account).

Tokens are stored only as ciphertexts (``secrets.accessToken`` / ``secrets.refreshToken``) bound to
the document's ``_id``, owner, provider, host and API URL (``storage.integration_secrets``); the id is
chosen before encrypting, so a document is always written whole with ciphertexts that decrypt —
there is no moment where a token is stored half-done. Secrets that do not open for their document
(it was changed in the database) are never used: the integration needs reconnecting.
Every read is scoped by ``owner``: another user's integration is indistinguishable from a missing one.

Every integration read here carries the status it has *now*: a login whose refresh token has expired
(``reconnectBy`` passed) reads as NEEDS_RECONNECT the moment it has, on every replica alike (it follows
from the stored date and the clock, not from a failed request), and the first read that sees it stores
it, so that it stays so until the user connects again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from bson.errors import InvalidId
from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from app.domain.errors import CipherError, NeedsReconnectError, ServiceUnavailableError
from app.domain.models import (
    AuthMethod,
    Credentials,
    HostEndpoint,
    Integration,
    IntegrationStatus,
    VerifiedToken,
)
from app.security.crypto import TokenCipher
from app.storage import integration_secrets
from app.storage.durability import Durability
from app.storage.integration_documents import as_utc as _as_utc
from app.storage.integration_documents import to_integration as _to_integration
from app.storage.integration_documents import verified_fields
from app.storage.integration_secrets import SECRET_FIELDS, IntegrationSecrets, Move
from app.storage.integration_slots import SLOT, SlotTaken, claim_slot
from app.storage.mongo import Database, Document, unavailable_on_failure

log = logging.getLogger(__name__)

__all__ = ["SECRET_FIELDS", "IntegrationRepository", "Move", "RefreshView", "SaveResult"]


@dataclass(frozen=True)
class SaveResult:
    integration: Integration
    created: bool


@dataclass(frozen=True)
class RefreshView:
    """An integration with its credentials and the state of its refresh lease."""

    integration: Integration
    credentials: Credentials
    lease_holder: str | None
    lease_expires_at: datetime | None


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _object_id(value: str) -> ObjectId | None:
    try:
        return ObjectId(value)
    except (InvalidId, TypeError):
        return None


class IntegrationRepository:
    def __init__(
        self, database: Database, cipher: TokenCipher, clock: Callable[[], datetime] = _utc_now
    ) -> None:
        # Every write here (connect, update, verify, status, refreshed pairs, refresh leases, key
        # rotation) is something a user was told happened, or a token the host has already replaced.
        self._collection: AsyncCollection[Document] = database.collection(
            "integrations", Durability.MUST_SURVIVE
        )
        self._cipher = cipher
        self._secrets = IntegrationSecrets(cipher)
        self._clock = clock  # when a login's end (reconnectBy) is reached

    @unavailable_on_failure
    async def save_verified(
        self,
        owner: str,
        endpoint: HostEndpoint,
        auth_method: AuthMethod,
        verified: VerifiedToken,
        credentials: Credentials,
        now: datetime,
        *,
        limit: int | None = None,
    ) -> SaveResult:
        """Insert, or update the owner's integration of the same account on the same host.

        ``limit``: how many integrations ``owner`` may have; inserting one more raises
        ``LimitReachedError`` (updating one never does), also when connects race
        (``app.storage.integration_slots``).
        """
        key: Document = {
            "owner": owner,
            "provider": endpoint.provider.value,
            "host": endpoint.host,
            "accountId": verified.account.id,
        }
        # A concurrent connect of the same account, or one that took the same slot, can win the insert:
        # each lost round stored another integration, so ``limit`` rounds end at the limit.
        for _ in range(5 + (limit or 0)):
            existing = await self._collection.find_one(key, {"_id": 1})
            if existing is not None:
                doc = await self._collection.find_one_and_update(
                    {"_id": existing["_id"]},
                    {
                        "$set": verified_fields(endpoint, auth_method, verified, now)
                        | self._secrets.seal(str(existing["_id"]), owner, endpoint, credentials),
                        "$unset": {"refreshLease": ""},
                        "$inc": {"version": 1},
                    },
                    return_document=ReturnDocument.AFTER,
                )
                if doc is not None:
                    return SaveResult(await self._loaded_one(doc), created=False)
                continue
            new_id = ObjectId()
            doc = key | verified_fields(endpoint, auth_method, verified, now)
            doc |= {"_id": new_id, "createdAt": now, "version": 0}
            doc |= self._secrets.seal(str(new_id), owner, endpoint, credentials)
            try:
                if limit is not None:
                    doc[SLOT] = await claim_slot(self._collection, owner, limit)
                await self._collection.insert_one(doc)
            except (DuplicateKeyError, SlotTaken):
                continue
            return SaveResult(await self._loaded_one(doc), created=True)
        raise RuntimeError("could not save the integration after repeated concurrent updates")

    @unavailable_on_failure
    async def replace_token(
        self,
        integration: Integration,
        verified: VerifiedToken,
        credentials: Credentials,
        now: datetime,
    ) -> Integration | None:
        """Store a new token for ``integration`` if it still acts as the same account; None if it is gone."""
        oid = _object_id(integration.id)
        if oid is None:
            return None
        endpoint = integration.endpoint
        doc = await self._collection.find_one_and_update(
            {"_id": oid, **_destination(integration), "accountId": verified.account.id},
            {
                "$set": verified_fields(endpoint, integration.auth_method, verified, now)
                | self._secrets.seal(integration.id, integration.owner, endpoint, credentials),
                "$unset": {"refreshLease": ""},
                "$inc": {"version": 1},
            },
            projection={"secrets": 0},
            return_document=ReturnDocument.AFTER,
        )
        return await self._loaded_one(doc) if doc is not None else None

    async def _find_owned(
        self, owner: str, integration_id: str, projection: Document | None = None
    ) -> Document | None:
        """The owner's document with this id; None for a malformed id, a missing one or another owner's."""
        oid = _object_id(integration_id)
        if oid is None:
            return None
        return await self._collection.find_one({"_id": oid, "owner": owner}, projection)

    @unavailable_on_failure
    async def count_for_owner(self, owner: str) -> int:
        """How many integrations ``owner`` has."""
        return await self._collection.count_documents({"owner": owner})

    @unavailable_on_failure
    async def list_for_owner(self, owner: str) -> list[Integration]:
        cursor = self._collection.find({"owner": owner}, {"secrets": 0}).sort([("createdAt", 1), ("_id", 1)])
        return await self._loaded([doc async for doc in cursor])

    @unavailable_on_failure
    async def get(self, owner: str, integration_id: str) -> Integration | None:
        doc = await self._find_owned(owner, integration_id, {"secrets": 0})
        return await self._loaded_one(doc) if doc is not None else None

    @unavailable_on_failure
    async def get_many(self, owner: str, integration_ids: Sequence[str]) -> dict[str, Integration]:
        oids = [oid for oid in map(_object_id, integration_ids) if oid is not None]
        if not oids:
            return {}
        cursor = self._collection.find({"_id": {"$in": oids}, "owner": owner}, {"secrets": 0})
        found = await self._loaded([doc async for doc in cursor])
        return {integration.id: integration for integration in found}

    @unavailable_on_failure
    async def get_with_credentials(
        self, owner: str, integration_id: str
    ) -> tuple[Integration, Credentials] | None:
        doc = await self._find_owned(owner, integration_id)
        if doc is None:
            return None
        return await self._loaded_one(doc), await self._opened(doc)

    @unavailable_on_failure
    async def set_status(
        self,
        owner: str,
        integration_id: str,
        status: IntegrationStatus,
        *,
        verified_at: datetime | None = None,
    ) -> Integration | None:
        oid = _object_id(integration_id)
        if oid is None:
            return None
        update: dict[str, Any] = {"status": status.value}
        if verified_at is not None:
            update["lastVerifiedAt"] = verified_at
        doc = await self._collection.find_one_and_update(
            {"_id": oid, "owner": owner},
            {"$set": update},
            projection={"secrets": 0},
            return_document=ReturnDocument.AFTER,
        )
        return await self._loaded_one(doc) if doc is not None else None

    @unavailable_on_failure
    async def delete(self, owner: str, integration_id: str) -> tuple[Integration, Credentials | None] | None:
        """Remove the integration; returns what was removed (with its token, e.g. to revoke it: None
        when the stored token does not decrypt for its record)."""
        oid = _object_id(integration_id)
        if oid is None:
            return None
        doc = await self._collection.find_one_and_delete({"_id": oid, "owner": owner})
        if doc is None:
            return None
        try:
            credentials = self._secrets.open(doc)
        except CipherError as exc:
            log.error("disconnect: the stored token does not decrypt; not revoked: %s", exc)
            credentials = None
        return _to_integration(doc), credentials

    @unavailable_on_failure
    async def login_of_account_exists(self, endpoint: HostEndpoint, account_id: str) -> bool:
        """Whether any platform user still has a login (OAuth) integration of this account on this host.

        The one read across owners: it answers only yes or no, never another user's integration.
        """
        found = await self._collection.find_one(
            {
                "provider": endpoint.provider.value,
                "host": endpoint.host,
                "accountId": account_id,
                "authMethod": AuthMethod.OAUTH.value,
            },
            {"_id": 1},
        )
        return found is not None

    @unavailable_on_failure
    async def rotate_keys(self, *, keep_going: Callable[[], bool] = lambda: True) -> int:
        """Re-encrypt every secret not under the first key, or written the old way; how many were.

        ``keep_going`` is asked before each document: False stops there (``rotate-keys`` on SIGTERM);
        a later run finishes the work. See ``storage.integration_secrets.rotate``.
        """
        return await integration_secrets.rotate(self._collection, self._cipher, keep_going)

    @unavailable_on_failure
    async def move_host(self, source: str, target: str, target_api: str | None = None) -> Move:
        """The operator's ``move-host``: integrations at ``source`` now at ``target``, re-encrypted for it."""
        return await integration_secrets.move_host(self._collection, self._cipher, source, target, target_api)

    # --- refresh of login tokens (see services/token_refresh.py for the protocol) -----------------

    @unavailable_on_failure
    async def get_for_refresh(self, owner: str, integration_id: str) -> RefreshView | None:
        """The integration, its credentials and who holds its refresh lease, read together."""
        doc = await self._find_owned(owner, integration_id)
        if doc is None:
            return None
        lease = doc.get("refreshLease") or {}
        return RefreshView(
            integration=await self._loaded_one(doc),
            credentials=await self._opened(doc),
            lease_holder=lease.get("holder"),
            lease_expires_at=_as_utc(lease.get("expiresAt")),
        )

    @unavailable_on_failure
    async def take_refresh_lease(
        self, integration_id: str, version: int, holder: str, now: datetime, until: datetime
    ) -> bool:
        """Become the one that refreshes: only at ``version`` and when no live lease exists."""
        oid = _object_id(integration_id)
        if oid is None:
            return False
        doc = await self._collection.find_one_and_update(
            {
                "_id": oid,
                "version": version,
                "$or": [{"refreshLease": None}, {"refreshLease.expiresAt": {"$lte": now}}],
            },
            {"$set": {"refreshLease": {"holder": holder, "expiresAt": until}}},
            projection={"_id": 1},
        )
        return doc is not None

    @unavailable_on_failure
    async def store_refreshed(
        self, integration: Integration, holder: str, version: int, credentials: Credentials, now: datetime
    ) -> tuple[Integration, Credentials] | None:
        """Store the new pair (version + 1, lease removed) while holding the lease at ``version``.

        If the lease ran out and another replica took it over but stored nothing yet, the pair is still
        stored while the version is unchanged: the host has already spent the old refresh token, so
        this pair is the only live one. None when a newer pair exists or the integration is gone.
        """
        oid = _object_id(integration.id)
        if oid is None:
            return None
        sealed = self._secrets.seal(integration.id, integration.owner, integration.endpoint, credentials)
        update = {
            "$set": sealed | {"expiresAt": credentials.expires_at, "updatedAt": now},
            "$unset": {"refreshLease": ""},
            "$inc": {"version": 1},
        }
        # Only where the record still points where the new pair is sealed for.
        matching = {"_id": oid, "version": version, **_destination(integration)}
        doc = await self._collection.find_one_and_update(
            matching | {"refreshLease.holder": holder}, update, return_document=ReturnDocument.AFTER
        )
        if doc is None:
            doc = await self._collection.find_one_and_update(
                matching, update, return_document=ReturnDocument.AFTER
            )
        if doc is None:
            return None
        return await self._loaded_one(doc), await self._opened(doc)

    @unavailable_on_failure
    async def release_refresh_lease(
        self, integration_id: str, holder: str, now: datetime, *, needs_reconnect: bool = False
    ) -> bool:
        """Give the lease up after a failed refresh; the stored tokens stay as they are.

        ``needs_reconnect``: the host refused the refresh token, which is final (it is single use: the
        same one would be refused again). False when the lease was no longer ours (another replica
        took it over, or stored a new pair meanwhile).
        """
        oid = _object_id(integration_id)
        if oid is None:
            return False
        update: Document = {"$unset": {"refreshLease": ""}}
        if needs_reconnect:
            update["$set"] = {"status": IntegrationStatus.NEEDS_RECONNECT.value, "updatedAt": now}
        result = await self._collection.update_one({"_id": oid, "refreshLease.holder": holder}, update)
        return result.matched_count == 1

    @unavailable_on_failure
    async def record_verified(
        self, owner: str, integration: Integration, verified: VerifiedToken, now: datetime
    ) -> Integration | None:
        """Record what verifying a login token found, leaving its tokens, expiry and version alone.

        A refresh may store a new pair at any moment; rewriting the secrets here could put back a
        refresh token the host has already spent.
        """
        oid = _object_id(integration.id)
        if oid is None:
            return None
        fields = verified_fields(integration.endpoint, integration.auth_method, verified, now)
        fields.pop("expiresAt")  # the login's expiry (and reconnectBy) belong to its stored tokens
        doc = await self._collection.find_one_and_update(
            {"_id": oid, "owner": owner, "accountId": verified.account.id},
            {"$set": fields},
            projection={"secrets": 0},
            return_document=ReturnDocument.AFTER,
        )
        return await self._loaded_one(doc) if doc is not None else None

    async def _loaded_one(self, doc: Document) -> Integration:
        [integration] = await self._loaded([doc])
        return integration

    async def _loaded(self, docs: Sequence[Document]) -> list[Integration]:
        """The integrations of ``docs`` with the status they have now.

        A login whose end (``reconnectBy``) has passed is NEEDS_RECONNECT; the first read that sees
        it stores it (one conditional write, then never again: the stored status matches). A new
        sign-in stores a later ``reconnectBy``, so the condition keeps a stale read from undoing it.
        """
        now = self._clock()
        found = [_to_integration(doc) for doc in docs]
        ended = [i for i in found if i.status is IntegrationStatus.ACTIVE and i.login_ended(now)]
        if not ended:
            return found
        result = await self._collection.update_many(
            {
                "_id": {"$in": [ObjectId(i.id) for i in ended]},
                "status": IntegrationStatus.ACTIVE.value,
                "reconnectBy": {"$lte": now},
            },
            {"$set": {"status": IntegrationStatus.NEEDS_RECONNECT.value, "updatedAt": now}},
        )
        if result.modified_count:
            log.info(
                "oauth: login ended (its refresh token expired); the integration needs reconnecting",
                extra={"integration_ids": [i.id for i in ended]},
            )
        ids = {i.id for i in ended}
        return [replace(i, status=IntegrationStatus.NEEDS_RECONNECT) if i.id in ids else i for i in found]

    async def _opened(self, doc: Document) -> Credentials:
        """The credentials of ``doc``, or why they cannot be used.

        Secrets that do not open for this very document (it was changed in the database: another
        owner, host or API URL) are never used; the integration is marked NEEDS_RECONNECT. A key
        that is not configured, or a ciphertext written the old way, is the operator's to fix.
        """
        try:
            return self._secrets.open(doc)
        except CipherError as exc:
            log.error(
                "the stored token of an integration cannot be used: %s",
                exc,
                extra={"integration_id": str(doc["_id"]), "reason": exc.reason},
            )
            if exc.reason in ("unknown_key", "legacy"):
                raise ServiceUnavailableError(
                    "This integration's stored token cannot be read until the operator restores its "
                    "encryption key or migrates it (python -m app rotate-keys); try again later."
                ) from None
            await self._collection.update_one(
                {"_id": doc["_id"]}, {"$set": {"status": IntegrationStatus.NEEDS_RECONNECT.value}}
            )
            raise NeedsReconnectError(
                "The stored credentials of this integration no longer match it: connect it again."
            ) from None


def _destination(integration: Integration) -> Document:
    """The fields its secrets are bound to, as ``integration`` has them: a write lands only there."""
    endpoint = integration.endpoint
    return {
        "owner": integration.owner,
        "provider": endpoint.provider.value,
        "host": endpoint.host,
        "apiUrl": endpoint.api_url,
    }
