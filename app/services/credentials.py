"""The token to use for an integration right now."""

from __future__ import annotations

from app.domain.errors import NotFoundError
from app.domain.models import AuthMethod, Credentials, Integration
from app.services.token_refresh import fresh_credentials
from app.services.wiring import Services


async def usable_credentials(services: Services, integration: Integration) -> Credentials:
    """The integration's current credentials, decrypted.

    Login (OAuth) tokens that expire soon are refreshed here before use, once across all
    replicas (see ``token_refresh``); pasted access tokens are used as stored. Raises
    ``NotFoundError``, and for logins ``NeedsReconnectError`` or ``ProviderUnavailableError``.
    """
    if integration.auth_method is AuthMethod.OAUTH:
        return await fresh_credentials(services, integration)
    found = await services.integrations.get_with_credentials(integration.owner, integration.id)
    if found is None:
        raise NotFoundError()
    return found[1]
