"""The ``oauth_states`` collection: sign-ins that were started and not yet finished.

A state is stored when "Connect with …" starts and consumed when the host sends the user back, by
whichever replica receives the callback. Only the SHA-256 of the state is stored: a copy of the
database cannot be used to finish somebody else's sign-in. Consuming is one ``find_one_and_update``
that matches only an unused, unexpired state (and, when the caller is known, only the caller's),
so two replicas can never both finish one sign-in, and somebody else presenting a user's state
does not use it up. The TTL index on ``expiresAt`` only cleans up; validity is decided here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection

from app.domain.models import GitProvider, TokenKind
from app.storage.durability import Durability
from app.storage.mongo import Database, Document, unavailable_on_failure


@dataclass(frozen=True)
class PendingAuthorization:
    """A started sign-in: who started it, for what, and what finishing it needs."""

    owner: str
    provider: GitProvider
    token_kind: TokenKind  # GITHUB_APP, GITHUB_OAUTH_APP or GITLAB_OAUTH: the flow that was started
    host: str
    code_verifier: str
    redirect_uri: str
    return_to: str | None
    created_at: datetime
    expires_at: datetime

    def __repr__(self) -> str:  # the verifier must not reach a log line through a repr
        return f"PendingAuthorization(owner={self.owner!r}, provider={self.provider.value})"


def state_digest(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


class OAuthStateRepository:
    def __init__(self, database: Database) -> None:
        # A state must outlive a failover between "Connect with …" and the callback, and a used one
        # must stay used: a rolled-back ``usedAt`` would let the same callback finish twice.
        self._collection: AsyncCollection[Document] = database.collection(
            "oauth_states", Durability.MUST_SURVIVE
        )

    @unavailable_on_failure
    async def create(self, state: str, pending: PendingAuthorization) -> None:
        """Store a new sign-in under ``state`` (random, so a collision is not a practical concern)."""
        await self._collection.insert_one(
            {
                "state": state_digest(state),
                "owner": pending.owner,
                "provider": pending.provider.value,
                "tokenKind": pending.token_kind.value,
                "host": pending.host,
                "codeVerifier": pending.code_verifier,
                "redirectUri": pending.redirect_uri,
                "returnTo": pending.return_to,
                "createdAt": pending.created_at,
                "expiresAt": pending.expires_at,
                "usedAt": None,
            }
        )

    @unavailable_on_failure
    async def consume(
        self, state: str, now: datetime, *, owner: str | None = None
    ) -> PendingAuthorization | None:
        """Use up ``state`` once; None when it is unknown, used, expired or (with ``owner``) someone else's."""
        query: Document = {"state": state_digest(state), "usedAt": None, "expiresAt": {"$gt": now}}
        if owner is not None:
            query["owner"] = owner
        doc = await self._collection.find_one_and_update(
            query, {"$set": {"usedAt": now}}, return_document=ReturnDocument.AFTER
        )
        if doc is None:
            return None
        return PendingAuthorization(
            owner=doc["owner"],
            provider=GitProvider(doc["provider"]),
            token_kind=TokenKind(doc["tokenKind"]),
            host=doc["host"],
            code_verifier=doc["codeVerifier"],
            redirect_uri=doc["redirectUri"],
            return_to=doc.get("returnTo"),
            created_at=doc["createdAt"],
            expires_at=doc["expiresAt"],
        )
