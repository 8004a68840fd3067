"""The ``integrations`` collection: one document per (owner, provider, host, account).

Tokens are stored only as ciphertexts (``secrets.accessToken`` / ``secrets.refreshToken``) bound to
the document's ``_id``; the id is chosen before encrypting, so a document is always written whole
with ciphertexts that decrypt — there is no moment where a token is stored half-done.
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

from app.domain.models import (
    AuthMethod,
    Credentials,
    HostEndpoint,
    Integration,
    IntegrationStatus,
    VerifiedToken,
)
from app.security.crypto import TokenCipher
from app.storage.durability import Durability
from app.storage.integration_documents import as_utc as _as_utc
from app.storage.integration_documents import to_integration as _to_integration
from app.storage.integration_slots import SLOT, SlotTaken, claim_slot
from app.storage.mongo import Database, Document, unavailable_on_failure

log = logging.getLogger(__name__)

ACCESS_TOKEN = "accessToken"
REFRESH_TOKEN = "refreshToken"
SECRET_FIELDS = (ACCESS_TOKEN, REFRESH_TOKEN)


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
                        "$set": self._verified_fields(endpoint, auth_method, verified, now)
                        | self._secret_fields(str(existing["_id"]), credentials),
                        "$unset": {"refreshLease": ""},
                        "$inc": {"version": 1},
                    },
                    return_document=ReturnDocument.AFTER,
                )
                if doc is not None:
                    return SaveResult(await self._loaded_one(doc), created=False)
                continue
            new_id = ObjectId()
            doc = key | self._verified_fields(endpoint, auth_method, verified, now)
            doc |= {"_id": new_id, "createdAt": now, "version": 0}
            doc |= self._secret_fields(str(new_id), credentials)
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
        doc = await self._collection.find_one_and_update(
            {"_id": oid, "owner": integration.owner, "accountId": verified.account.id},
            {
                "$set": self._verified_fields(integration.endpoint, integration.auth_method, verified, now)
                | self._secret_fields(integration.id, credentials),
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
        return await self._loaded_one(doc), self._credentials(doc)

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
    async def delete(self, owner: str, integration_id: str) -> tuple[Integration, Credentials] | None:
        """Remove the integration; returns what was removed (with its token, e.g. to revoke it)."""
        oid = _object_id(integration_id)
        if oid is None:
            return None
        doc = await self._collection.find_one_and_delete({"_id": oid, "owner": owner})
        if doc is None:
            return None
        return _to_integration(doc), self._credentials(doc)

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
        """Re-encrypt every secret that is not under the first key; returns how many were re-encrypted.

        Each field is swapped with a compare-and-set on its old ciphertext, so a token refreshed
        meanwhile is never overwritten, and a crash leaves every field decryptable (old keys stay in
        the ring until the operator removes them after a complete run). ``keep_going`` is asked before
        each document: False stops there (``rotate-keys`` on SIGTERM); a later run finishes the work.
        """
        rotated = 0
        async for doc in self._collection.find({"secrets": {"$exists": True}}, {"secrets": 1}):
            if not keep_going():
                break
            record_id = str(doc["_id"])
            for field in SECRET_FIELDS:
                old = (doc.get("secrets") or {}).get(field)
                if not old or not self._cipher.needs_rotation(old):
                    continue
                plain = self._cipher.decrypt(old, record_id=record_id, field=field)
                new = self._cipher.encrypt(plain, record_id=record_id, field=field)
                result = await self._collection.update_one(
                    {"_id": doc["_id"], f"secrets.{field}": old}, {"$set": {f"secrets.{field}": new}}
                )
                rotated += result.modified_count
        return rotated

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
            credentials=self._credentials(doc),
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
        self, integration_id: str, holder: str, version: int, credentials: Credentials, now: datetime
    ) -> tuple[Integration, Credentials] | None:
        """Store the new pair (version + 1, lease removed) while holding the lease at ``version``.

        If the lease ran out and another replica took it over but stored nothing yet, the pair is still
        stored while the version is unchanged: the host has already spent the old refresh token, so
        this pair is the only live one. None when a newer pair exists or the integration is gone.
        """
        oid = _object_id(integration_id)
        if oid is None:
            return None
        update = {
            "$set": self._secret_fields(integration_id, credentials)
            | {"expiresAt": credentials.expires_at, "updatedAt": now},
            "$unset": {"refreshLease": ""},
            "$inc": {"version": 1},
        }
        doc = await self._collection.find_one_and_update(
            {"_id": oid, "version": version, "refreshLease.holder": holder},
            update,
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            doc = await self._collection.find_one_and_update(
                {"_id": oid, "version": version}, update, return_document=ReturnDocument.AFTER
            )
        if doc is None:
            return None
        return await self._loaded_one(doc), self._credentials(doc)

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
        fields = self._verified_fields(integration.endpoint, integration.auth_method, verified, now)
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

    def _credentials(self, doc: Document) -> Credentials:
        secrets = doc.get("secrets") or {}
        record_id = str(doc["_id"])
        access = self._cipher.decrypt(secrets[ACCESS_TOKEN], record_id=record_id, field=ACCESS_TOKEN)
        refresh_ct = secrets.get(REFRESH_TOKEN)
        refresh = (
            self._cipher.decrypt(refresh_ct, record_id=record_id, field=REFRESH_TOKEN) if refresh_ct else None
        )
        return Credentials(
            access_token=access,
            refresh_token=refresh,
            expires_at=_as_utc(doc.get("expiresAt")),
            refresh_expires_at=_as_utc(doc.get("reconnectBy")),
        )

    def _secret_fields(self, record_id: str, credentials: Credentials) -> Document:
        """``{"secrets": {...}}`` with both fields, so a write always replaces the pair together.

        The refresh token's expiry (``reconnectBy``, not a secret) is written with them.
        """
        refresh = credentials.refresh_token
        return {
            "reconnectBy": credentials.refresh_expires_at if refresh else None,
            "secrets": {
                ACCESS_TOKEN: self._cipher.encrypt(
                    credentials.access_token, record_id=record_id, field=ACCESS_TOKEN
                ),
                REFRESH_TOKEN: (
                    self._cipher.encrypt(refresh, record_id=record_id, field=REFRESH_TOKEN)
                    if refresh
                    else None
                ),
            },
        }

    @staticmethod
    def _verified_fields(
        endpoint: HostEndpoint, auth_method: AuthMethod, verified: VerifiedToken, now: datetime
    ) -> Document:
        account = verified.account
        return {
            "webUrl": endpoint.web_url,
            "apiUrl": endpoint.api_url,
            "authMethod": auth_method.value,
            "tokenKind": verified.token_kind.value,
            "account": {
                "id": account.id,
                "login": account.login,
                "name": account.name,
                "avatarUrl": account.avatar_url,
                "url": account.url,
                "bot": account.bot,
            },
            "repositoryAccess": verified.repository_access.value,
            "grantedPermissions": list(verified.granted_permissions),
            "unverifiedPermissions": list(verified.unverified_permissions),
            "status": IntegrationStatus.ACTIVE.value,
            "expiresAt": verified.expires_at,
            "lastVerifiedAt": now,
            "updatedAt": now,
            "manageAccessUrl": verified.manage_access_url,
            "resource": (
                {
                    "kind": verified.resource.kind,
                    "ids": list(verified.resource.ids),
                    "path": verified.resource.path,
                }
                if verified.resource
                else None
            ),
        }
