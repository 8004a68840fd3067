"""The ``oauth_states`` collection: sign-ins that were started and not yet finished.

A state is stored when "Connect with …" starts and consumed when its owner finishes the sign-in
(``completeGitOAuth``), on whichever replica. Only the SHA-256 of the state is stored: a copy of
the database cannot be used to finish somebody else's sign-in. Consuming is one
``find_one_and_update`` that matches only an unused, unexpired state of the caller, so two replicas
can never both finish one sign-in, and somebody else presenting a user's state does not use it up.
``/oauth/callback`` only reads a state (``find``) or notes what a GitHub App installation sent
(``note_installation``); it never finishes one. The TTL index on ``expiresAt`` only cleans up
(an hour after expiry); validity is decided here.

Codes GitHub issued during an app installation without our PKCE challenge are remembered (their
SHA-256, in ``installationCodes`` of the state they came back with) so that they are never
exchanged, whichever state they are later presented with; a code lives 10 minutes, well within the
hour a state document is kept.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection

from app.domain.models import GitProvider, TokenKind
from app.storage.durability import Durability
from app.storage.mongo import Database, Document, unavailable_on_failure

# How long a host's authorization code is valid (GitHub and GitLab: 10 minutes).
CODE_LIFETIME = timedelta(minutes=10)


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
    # GitHub App: the installation the setup redirect named, and whether the service has sent the
    # browser on to the authorization with its PKCE challenge (only codes from there are exchanged).
    installation_id: str | None = None
    authorization_started: bool = False

    def __repr__(self) -> str:  # the verifier must not reach a log line through a repr
        return f"PendingAuthorization(owner={self.owner!r}, provider={self.provider.value})"


def state_digest(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def code_digest(code: str) -> str:
    return hashlib.sha256(b"code|" + code.encode()).hexdigest()


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
                "installationId": None,
                "authorizationStartedAt": None,
            }
        )

    @unavailable_on_failure
    async def find(self, state: str, now: datetime) -> PendingAuthorization | None:
        """The sign-in under ``state`` when it is unused and unexpired, without using it up."""
        doc = await self._collection.find_one(_usable(state, now))
        return _pending(doc) if doc is not None else None

    @unavailable_on_failure
    async def note_installation(
        self, state: str, now: datetime, installation_id: str | None, code: str | None
    ) -> PendingAuthorization | None:
        """GitHub's setup redirect came back with ``state``: keep what it said, before the authorization.

        ``installation_id`` (when given) is kept for ``completeGitOAuth``; a ``code`` GitHub issued
        there (without our challenge) is remembered so that it is never exchanged. None when the
        state is unknown, used or expired.
        """
        update: Document = {"$set": {"authorizationStartedAt": now}}
        if installation_id is not None:
            update["$set"]["installationId"] = installation_id
        if code:
            update["$addToSet"] = {"installationCodes": code_digest(code)}
        doc = await self._collection.find_one_and_update(
            _usable(state, now), update, return_document=ReturnDocument.AFTER
        )
        return _pending(doc) if doc is not None else None

    @unavailable_on_failure
    async def remember_installation_code(self, code: str, now: datetime) -> None:
        """Remember a code from an installation redirect that came without a usable state.

        Kept in a document of its own that is never a usable state (used, keyed by the code's digest).
        """
        digest = code_digest(code)
        await self._collection.update_one(
            {"state": f"code:{digest}"},
            {
                "$setOnInsert": {
                    "installationCodes": [digest],
                    "usedAt": now,
                    "expiresAt": now + CODE_LIFETIME,
                }
            },
            upsert=True,
        )

    @unavailable_on_failure
    async def is_installation_code(self, code: str) -> bool:
        """Whether ``code`` came back from a GitHub App installation (issued without our challenge)."""
        found = await self._collection.find_one({"installationCodes": code_digest(code)}, {"_id": 1})
        return found is not None

    @unavailable_on_failure
    async def consume(
        self, state: str, now: datetime, *, owner: str | None = None
    ) -> PendingAuthorization | None:
        """Use up ``state`` once; None when it is unknown, used, expired or (with ``owner``) someone else's."""
        query = _usable(state, now)
        if owner is not None:
            query["owner"] = owner
        doc = await self._collection.find_one_and_update(
            query, {"$set": {"usedAt": now}}, return_document=ReturnDocument.AFTER
        )
        return _pending(doc) if doc is not None else None


def _usable(state: str, now: datetime) -> Document:
    return {"state": state_digest(state), "usedAt": None, "expiresAt": {"$gt": now}}


def _pending(doc: Document) -> PendingAuthorization:
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
        installation_id=doc.get("installationId"),
        authorization_started=doc.get("authorizationStartedAt") is not None,
    )
