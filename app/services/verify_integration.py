"""Check a stored integration against its host again and record the outcome in its status."""

from __future__ import annotations

from app.domain.errors import InvalidTokenError, MissingPermissionsError
from app.domain.models import Integration, IntegrationStatus
from app.services.wiring import Services


async def verify_integration(services: Services, owner: str, integration_id: str) -> Integration | None:
    """Verify the stored token again; None when there is no such integration.

    A token the host no longer accepts, or that lost required permissions, sets
    ``NEEDS_RECONNECT``; a token that passes is ``ACTIVE`` again with refreshed account details and
    permissions. ``ProviderUnavailableError`` leaves the status as it was: an outage is not the
    user's token's fault.
    """
    found = await services.integrations.get_with_credentials(owner, integration_id)
    if found is None:
        return None
    integration, credentials = found
    now = services.clock()
    try:
        verified = await services.hosts.client(integration.endpoint).verify_token(credentials.access_token)
    except (InvalidTokenError, MissingPermissionsError):
        return await services.integrations.set_status(
            owner, integration_id, IntegrationStatus.NEEDS_RECONNECT, verified_at=now
        )
    if verified.account.id != integration.account.id:  # pragma: no cover - a token cannot change account
        return await services.integrations.set_status(
            owner, integration_id, IntegrationStatus.NEEDS_RECONNECT, verified_at=now
        )
    return await services.integrations.replace_token(
        owner, integration_id, verified, credentials, integration.auth_method, now
    )
