"""Check a stored integration against its host again and record the outcome in its status."""

from __future__ import annotations

from app.domain.errors import (
    InsufficientRoleError,
    InvalidTokenError,
    MissingPermissionsError,
    NeedsReconnectError,
    NotFoundError,
)
from app.domain.models import AuthMethod, Integration, IntegrationStatus
from app.services.credentials import usable_credentials
from app.services.oauth_connect import verify_login
from app.services.wiring import Services


async def verify_integration(services: Services, owner: str, integration_id: str) -> Integration | None:
    """Verify the stored token again; None when there is no such integration.

    A token the host no longer accepts, or that lost required permissions, sets
    ``NEEDS_RECONNECT``; a token that passes is ``ACTIVE`` again with refreshed account details and
    permissions. ``ProviderUnavailableError`` leaves the status as it was: an outage is not the
    user's token's fault. A login is renewed first when due (``usable_credentials``) and checked as
    at connect time; its tokens are left as they are.
    """
    current = await services.integrations.get(owner, integration_id)
    if current is None:
        return None
    if current.auth_method is AuthMethod.OAUTH:
        return await _verify_login(services, owner, current)
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
    # The token is the same one: record what was found, without re-encrypting and rewriting it.
    return await services.integrations.record_verified(owner, integration, verified, now)


async def _verify_login(services: Services, owner: str, integration: Integration) -> Integration | None:
    try:
        credentials = await usable_credentials(services, integration)
    except NotFoundError:
        return None
    except NeedsReconnectError:
        return await services.integrations.set_status(
            owner, integration.id, IntegrationStatus.NEEDS_RECONNECT, verified_at=services.clock()
        )
    resource = integration.resource
    installation_id = (
        resource.ids[0] if resource and resource.kind == "installations" and resource.ids else None
    )
    try:
        verified = await verify_login(
            services, integration.endpoint, integration.token_kind, credentials.access_token, installation_id
        )
    except (InvalidTokenError, MissingPermissionsError, InsufficientRoleError):
        verified = None
    if verified is None or verified.account.id != integration.account.id:
        return await services.integrations.set_status(
            owner, integration.id, IntegrationStatus.NEEDS_RECONNECT, verified_at=services.clock()
        )
    return await services.integrations.record_verified(owner, integration, verified, services.clock())
