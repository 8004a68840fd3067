"""The secrets of an integration document: sealed for their record and its destination, opened only there.

A document keeps ``secrets.accessToken`` and ``secrets.refreshToken`` as ciphertexts
(``app.security.crypto``) bound to what ``binding_of`` reads from the document itself: its ``_id``,
the field, ``owner``, ``provider``, ``host`` and ``apiUrl``. Change any of them in the database and
the secrets no longer open, so a token is never sent to a server its record was pointed at later.

The operator's commands re-encrypt what is stored: ``rotate`` (``rotate-keys``: under the first key,
and ciphertexts written the old way under the full binding) and ``move_host`` (``move-host``: a host
that moved to a new address, re-encrypted for it). Both swap each document with a compare-and-set
on what they read, so a token refreshed meanwhile is never overwritten and a crash leaves every
secret decryptable.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from app.domain.errors import CipherError
from app.domain.models import Credentials, HostEndpoint
from app.net.hostnames import host_key_of
from app.security.crypto import SecretBinding, TokenCipher
from app.storage.integration_documents import as_utc
from app.storage.mongo import Document

log = logging.getLogger(__name__)

ACCESS_TOKEN = "accessToken"
REFRESH_TOKEN = "refreshToken"
SECRET_FIELDS = (ACCESS_TOKEN, REFRESH_TOKEN)


def binding_of(doc: Document, field: str) -> SecretBinding:
    """What the secret ``field`` of ``doc`` is bound to: a document that keeps secrets (an integration,
    a repository link) with its ``_id``, ``owner``, ``provider``, ``host`` and ``apiUrl``."""
    return SecretBinding(
        record_id=str(doc["_id"]),
        field=field,
        owner=str(doc.get("owner")),
        provider=str(doc.get("provider")),
        host=str(doc.get("host")),
        api_url=str(doc.get("apiUrl")),
    )


def binding_for(record_id: str, owner: str, endpoint: HostEndpoint, field: str) -> SecretBinding:
    """The binding of a record about to be written for ``owner`` at ``endpoint``."""
    return SecretBinding(
        record_id=record_id,
        field=field,
        owner=owner,
        provider=endpoint.provider.value,
        host=endpoint.host,
        api_url=endpoint.api_url,
    )


class IntegrationSecrets:
    """Seals credentials for a record, opens them from a document."""

    def __init__(self, cipher: TokenCipher) -> None:
        self._cipher = cipher

    def seal(self, record_id: str, owner: str, endpoint: HostEndpoint, credentials: Credentials) -> Document:
        """``{"reconnectBy": …, "secrets": {...}}`` with both fields, so a write replaces the pair together.

        The refresh token's expiry (``reconnectBy``, not a secret) is written with them.
        """
        refresh = credentials.refresh_token
        binding = binding_for(record_id, owner, endpoint, ACCESS_TOKEN)
        return {
            "reconnectBy": credentials.refresh_expires_at if refresh else None,
            "secrets": {
                ACCESS_TOKEN: self._cipher.encrypt(credentials.access_token, binding),
                REFRESH_TOKEN: (
                    self._cipher.encrypt(refresh, binding.for_field(REFRESH_TOKEN)) if refresh else None
                ),
            },
        }

    def open(self, doc: Document) -> Credentials:
        """The credentials of ``doc``; ``CipherError`` when they do not open for this very document."""
        secrets = doc.get("secrets") or {}
        access = self._cipher.decrypt(secrets[ACCESS_TOKEN], binding_of(doc, ACCESS_TOKEN))
        refresh_ct = secrets.get(REFRESH_TOKEN)
        refresh = self._cipher.decrypt(refresh_ct, binding_of(doc, REFRESH_TOKEN)) if refresh_ct else None
        return Credentials(
            access_token=access,
            refresh_token=refresh,
            expires_at=as_utc(doc.get("expiresAt")),
            refresh_expires_at=as_utc(doc.get("reconnectBy")),
        )


_BINDING_FIELDS = {"_id": 1, "owner": 1, "provider": 1, "host": 1, "webUrl": 1, "apiUrl": 1, "secrets": 1}


async def rotate(
    collection: AsyncCollection[Document],
    cipher: TokenCipher,
    keep_going: Callable[[], bool],
    fields: Sequence[str] = SECRET_FIELDS,
) -> int:
    """Re-encrypt every secret (``secrets.<field>``) not under the first key or written the old way;
    how many were.

    A secret that does not decrypt (tampered with, or its key is gone) is left as it is and logged.
    """
    rotated = 0
    async for doc in collection.find({"secrets": {"$exists": True}}, _BINDING_FIELDS):
        if not keep_going():
            break
        for field in fields:
            old = (doc.get("secrets") or {}).get(field)
            if not old or not cipher.needs_rotation(old):
                continue
            binding = binding_of(doc, field)
            try:
                plain = (
                    cipher.decrypt_legacy(old, record_id=binding.record_id, field=field)
                    if cipher.is_legacy(old)
                    else cipher.decrypt(old, binding)
                )
            except CipherError as exc:
                log.error("rotate-keys: a secret does not decrypt; left as it is: %s", exc)
                continue
            result = await collection.update_one(
                {"_id": doc["_id"], f"secrets.{field}": old, **destination_of(doc)},
                {"$set": {f"secrets.{field}": cipher.encrypt(plain, binding)}},
            )
            rotated += result.modified_count
    return rotated


@dataclass(frozen=True)
class Move:
    """What ``move_host`` did: the integrations moved, and those left where they were (and why, logged)."""

    moved: tuple[str, ...]
    left: int


async def move_host(
    collection: AsyncCollection[Document],
    cipher: TokenCipher,
    source: str,
    target: str,
    target_api: str | None,
) -> Move:
    """Point every integration at ``source`` (its web URL) at ``target``, re-encrypted for it.

    The API URL becomes ``target_api``, or the stored one with ``source`` replaced by ``target``
    (``…/api/v4``, ``…/api/v3``). An integration whose secrets do not open, or that would collide with
    one its owner already has at the target, stays where it was.
    """
    source, target = source.rstrip("/"), target.rstrip("/")
    moved: list[str] = []
    left = 0
    async for doc in collection.find({"webUrl": source}, _BINDING_FIELDS):
        api_url = str(doc.get("apiUrl"))
        new_api = target_api.rstrip("/") if target_api else target + api_url.removeprefix(source)
        if not target_api and not api_url.startswith(source):
            log.error(
                "move-host: integration %s has an API URL outside %s; give --api-url", doc["_id"], source
            )
            left += 1
            continue
        moved_doc = doc | {"host": host_key_of(target), "webUrl": target, "apiUrl": new_api}
        try:
            secrets = {
                field: cipher.encrypt(
                    cipher.decrypt(value, binding_of(doc, field)), binding_of(moved_doc, field)
                )
                if value
                else None
                for field, value in (doc.get("secrets") or {}).items()
            }
        except CipherError as exc:
            log.error("move-host: integration %s left where it was: %s", doc["_id"], exc)
            left += 1
            continue
        try:
            stored = {f"secrets.{field}": value for field, value in (doc.get("secrets") or {}).items()}
            result = await collection.update_one(
                {"_id": doc["_id"], **stored, **destination_of(doc)},
                {
                    "$set": {
                        "host": moved_doc["host"],
                        "webUrl": target,
                        "apiUrl": new_api,
                        "secrets": secrets,
                    }
                },
            )
        except DuplicateKeyError:
            log.error(
                "move-host: integration %s: its owner already has this account at %s", doc["_id"], target
            )
            left += 1
            continue
        if result.modified_count:
            moved.append(str(doc["_id"]))
        else:  # changed meanwhile (a refresh): the next run moves it
            left += 1
    return Move(moved=tuple(moved), left=left)


def destination_of(doc: Document) -> Document:
    # The fields the secrets are bound to, as read: a write lands only where they are unchanged.
    return {name: doc.get(name) for name in ("owner", "provider", "host", "apiUrl")}
