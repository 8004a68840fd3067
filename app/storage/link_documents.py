"""Repository link documents as the ``repository_links`` collection holds them, read into domain models.

Secrets (``secrets.webhookSecret``, ``secrets.sshPrivateKey``, ``secrets.deployToken``) are ciphertexts
and are not read here: ``LinkStore`` decrypts them only where one is needed.
"""

from __future__ import annotations

from typing import Any

from app.domain.links import LinkStatus, ReadAccess, ReadAccessKind, RepositoryLink
from app.domain.models import GitProvider, Repository
from app.storage.integration_documents import as_utc
from app.storage.mongo import Document


def repository_fields(repository: Repository) -> Document:
    return {
        "id": repository.id,
        "name": repository.name,
        "fullName": repository.full_name,
        "owner": repository.owner,
        "private": repository.private,
        "webUrl": repository.web_url,
        "cloneUrl": repository.clone_url,
        "defaultBranch": repository.default_branch,
        "archived": repository.archived,
        "fork": repository.fork,
        "viewerCanAdminister": repository.viewer_can_administer,
    }


def read_access_fields(access: ReadAccess | None) -> Document | None:
    if access is None:
        return None
    return {
        "kind": access.kind.value,
        "hostId": access.host_id,
        "username": access.username,
        "installationId": access.installation_id,
        "knownHosts": access.known_hosts,
        "expiresAt": access.expires_at,
    }


def _repository(doc: Document) -> Repository:
    return Repository(
        id=doc["id"],
        name=doc["name"],
        full_name=doc["fullName"],
        owner=doc["owner"],
        private=bool(doc.get("private")),
        web_url=doc["webUrl"],
        clone_url=doc["cloneUrl"],
        default_branch=doc.get("defaultBranch"),
        archived=bool(doc.get("archived")),
        fork=bool(doc.get("fork")),
        viewer_can_administer=bool(doc.get("viewerCanAdminister")),
    )


def _read_access(doc: Any) -> ReadAccess | None:
    if not isinstance(doc, dict):
        return None
    return ReadAccess(
        kind=ReadAccessKind(doc["kind"]),
        host_id=doc.get("hostId"),
        username=doc.get("username"),
        installation_id=doc.get("installationId"),
        known_hosts=doc.get("knownHosts"),
        expires_at=as_utc(doc.get("expiresAt")),
    )


def to_link(doc: Document) -> RepositoryLink:
    return RepositoryLink(
        id=str(doc["_id"]),
        owner=doc["owner"],
        integration_id=doc["integrationId"],
        provider=GitProvider(doc["provider"]),
        host=doc["host"],
        repository=_repository(doc["repository"]),
        branch=doc["branch"],
        status=LinkStatus(doc["status"]),
        status_message=doc.get("statusMessage"),
        created_at=as_utc(doc["createdAt"]) or doc["createdAt"],
        hook_id=doc.get("hookId"),
        read_access=_read_access(doc.get("readAccess")),
        last_event_at=as_utc(doc.get("lastEventAt")),
        event_sequence=int(doc.get("eventSequence") or 0),
    )
