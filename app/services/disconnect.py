"""Disconnect an integration: remove it here (and, for logins, revoke the grant at the host)."""

from __future__ import annotations

from dataclasses import dataclass

from app.domain.models import Integration
from app.services.wiring import Services


@dataclass(frozen=True)
class Disconnected:
    integration: Integration
    host_notified: bool
    message: str


async def disconnect(services: Services, owner: str, integration_id: str) -> Disconnected | None:
    """Delete the integration and its tokens; None when there is no such integration.

    A pasted access token belongs to the user, who created it and alone can revoke it: it is only
    forgotten here, and the message says where to revoke it.
    """
    removed = await services.integrations.delete(owner, integration_id)
    if removed is None:
        return None
    integration, _credentials = removed
    where = integration.manage_access_url or integration.endpoint.web_url
    return Disconnected(
        integration=integration,
        host_notified=False,
        message=f"Disconnected. The token itself is still valid at {integration.host}; revoke it at {where} "
        "if it is no longer needed.",
    )
