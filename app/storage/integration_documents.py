"""Integration documents as the ``integrations`` collection holds them, read into domain models.

The secrets are not read here: ``IntegrationRepository`` decrypts them only where a token is needed.
"""

from __future__ import annotations

from datetime import UTC, datetime

from app.domain.models import (
    AuthMethod,
    GitAccount,
    GitProvider,
    HostEndpoint,
    Integration,
    IntegrationStatus,
    RepositoryAccess,
    TokenKind,
    TokenResource,
    VerifiedToken,
)
from app.storage.mongo import Document


def as_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _endpoint(doc: Document) -> HostEndpoint:
    return HostEndpoint(
        provider=GitProvider(doc["provider"]), host=doc["host"], web_url=doc["webUrl"], api_url=doc["apiUrl"]
    )


def to_integration(doc: Document) -> Integration:
    account = doc["account"]
    resource = doc.get("resource")
    return Integration(
        id=str(doc["_id"]),
        owner=doc["owner"],
        endpoint=_endpoint(doc),
        auth_method=AuthMethod(doc["authMethod"]),
        token_kind=TokenKind(doc["tokenKind"]),
        account=GitAccount(
            id=account["id"],
            login=account["login"],
            name=account.get("name"),
            avatar_url=account.get("avatarUrl"),
            url=account.get("url"),
            bot=bool(account.get("bot")),
        ),
        repository_access=RepositoryAccess(doc["repositoryAccess"]),
        granted_permissions=list(doc.get("grantedPermissions") or []),
        unverified_permissions=list(doc.get("unverifiedPermissions") or []),
        status=IntegrationStatus(doc["status"]),
        created_at=as_utc(doc["createdAt"]) or doc["createdAt"],
        expires_at=as_utc(doc.get("expiresAt")),
        last_verified_at=as_utc(doc.get("lastVerifiedAt")),
        manage_access_url=doc.get("manageAccessUrl"),
        resource=(
            TokenResource(kind=resource["kind"], ids=tuple(resource["ids"]), path=resource.get("path"))
            if resource
            else None
        ),
        reconnect_by=as_utc(doc.get("reconnectBy")),
        version=int(doc.get("version", 0)),
    )


def verified_fields(
    endpoint: HostEndpoint, auth_method: AuthMethod, verified: VerifiedToken, now: datetime
) -> Document:
    """The fields of an integration document that connecting or verifying its token writes."""
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
