"""Renewing a login's access token before it is used: once, across every replica.

GitHub App user tokens live 8 hours and GitLab OAuth tokens 2 hours; each comes with a refresh
token that works once (a refresh invalidates the old access *and* refresh token). Two replicas
refreshing with the same refresh token would lose one answer, and the loser's refusal looks exactly
like a revoked login. So the refresh is done by the one holder of a lease on the integration's
document, and everybody else waits for its result:

1. Read the integration. A token that does not expire within ``REFRESH_MARGIN`` is used as it is.
2. Take the lease: ``find_one_and_update`` matching the ``version`` just read and no live lease,
   setting ``refreshLease {holder, expiresAt}``. Exactly one caller wins.
3. The holder calls the token endpoint once and stores the new pair: ``version`` + 1, lease removed,
   conditional on still holding it. A refused refresh (``invalid_grant``, ``bad_refresh_token``) is
   final: the refresh token is single use, so the host would refuse the same one again. It keeps the
   old tokens, releases the lease and sets ``NEEDS_RECONNECT`` at once (``NeedsReconnectError``).
   Any other failure (an outage, a 5xx, the operator's client credentials refused) only releases
   the lease (``ProviderUnavailableError``): it is not the user's login's fault, and the next
   request tries again.
4. The others poll the document with short sleeps until the version moves (they read the new token),
   the status turns ``NEEDS_RECONNECT``, the holder gives up without a new pair (they fail like it
   did instead of spending the host's patience on the same refresh token again), or the lease
   expires because its holder died (one of them takes it over). The wait is bounded by the lease.

A refresh token that has expired (``refresh_token_expires_in``, stored as the integration's
``reconnectBy``: about six months for a GitHub App login) cannot work. The integration reads as
``NEEDS_RECONNECT`` from that moment (``IntegrationRepository`` derives it when loading and stores
it), and no credentials are handed out for it: nothing is asked of the host.

The lease lives longer than the single token request can take (``HTTP_TIMEOUT_SECONDS``), so a
live holder never loses it to a takeover in practice; ``IntegrationRepository.store_refreshed``
still keeps a pair stored after a takeover as long as no newer one exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from datetime import datetime, timedelta

from app.domain.errors import (
    NeedsReconnectError,
    NotFoundError,
    OAuthExchangeError,
    ProviderUnavailableError,
)
from app.domain.models import Credentials, Integration, IntegrationStatus
from app.hosts.oauth import REFUSED_REFRESH_REASONS
from app.hosts.registry import HostRegistry
from app.metrics import Metrics
from app.services.clock import Clock
from app.storage.integrations import IntegrationRepository

log = logging.getLogger(__name__)

REFRESH_MARGIN = timedelta(minutes=1)
POLL_INTERVAL_SECONDS = 0.05
MIN_LEASE_SECONDS = 30.0


def refresh_due(credentials: Credentials, now: datetime) -> bool:
    """Whether the access token expires within ``REFRESH_MARGIN`` and can be renewed."""
    return (
        credentials.refresh_token is not None
        and credentials.expires_at is not None
        and credentials.expires_at <= now + REFRESH_MARGIN
    )


def lease_seconds(http_timeout_seconds: float) -> float:
    """How long a refresh lease lasts."""
    # One POST bounded by the HTTP timeout, plus the database writes around it, with room to spare.
    return max(MIN_LEASE_SECONDS, 3 * http_timeout_seconds)


class TokenRefresher:
    """Renews expiring login tokens (the protocol in the module docstring)."""

    def __init__(
        self,
        integrations: IntegrationRepository,
        hosts: HostRegistry,
        clock: Clock,
        metrics: Metrics,
        *,
        http_timeout_seconds: float,
        redirect_uri: str,
    ) -> None:
        self._integrations = integrations
        self._hosts = hosts
        self._clock = clock
        self._metrics = metrics
        self._lease = lease_seconds(http_timeout_seconds)
        self._redirect_uri = redirect_uri  # the callback logins were authorized with (GitLab wants it)

    async def fresh_credentials(self, integration: Integration) -> Credentials:
        """The login's credentials, renewed first when the access token is about to expire.

        Raises ``NotFoundError`` (gone), ``NeedsReconnectError`` (the host refused the refresh token,
        now or before, or it has expired) or ``ProviderUnavailableError`` (the host could not renew
        it right now).
        """
        repository = self._integrations
        holder = uuid.uuid4().hex
        lease = self._lease
        deadline = time.monotonic() + lease + 5
        watched: tuple[int, str] | None = None  # (version, holder) of another caller's live lease
        was_due = False
        while True:
            view = await repository.get_for_refresh(integration.owner, integration.id)
            if view is None:
                raise NotFoundError()
            current, credentials = view.integration, view.credentials
            now = self._clock()
            if current.login_ended(now):
                # Its refresh token has expired (the load marked it NEEDS_RECONNECT): no host can help.
                if refresh_due(credentials, now):
                    self._metrics.token_refresh(current.provider.value, "expired")
                raise NeedsReconnectError(
                    f"The login of {current.account.login} at {current.host} has expired: connect again."
                )
            if not refresh_due(credentials, now):
                if was_due:  # renewed by another request or replica while this one waited
                    self._metrics.token_refresh(current.provider.value, "waited")
                return credentials
            was_due = True
            if current.status is IntegrationStatus.NEEDS_RECONNECT:
                raise _needs_reconnect(current)
            live = view.lease_holder is not None and (view.lease_expires_at or now) > now
            if live:
                assert view.lease_holder is not None
                watched = (current.version, view.lease_holder)
            elif watched is not None and view.lease_holder is None and watched[0] == current.version:
                # The holder released its lease without a new pair: the host failed it just now.
                raise ProviderUnavailableError(
                    f"{current.host} could not renew the access right now; try again in a moment."
                )
            elif await repository.take_refresh_lease(
                current.id, current.version, holder, now, now + timedelta(seconds=lease)
            ):
                # Shielded: once the host has spent the old refresh token, only the stored answer
                # keeps the login alive, so a request cancelled meanwhile (its client went away) must
                # not cancel the refresh with it.
                refresh = asyncio.ensure_future(self._refresh_as_holder(current, credentials, holder))
                renewed = await asyncio.shield(refresh)
                if renewed is not None:
                    return renewed
                watched = None  # the lease was lost meanwhile: see what its new holder did
            if time.monotonic() > deadline:
                raise ProviderUnavailableError(
                    f"The access to {current.host} is still being renewed; try again in a moment."
                )
            if live:
                await asyncio.sleep(POLL_INTERVAL_SECONDS)
            # Otherwise another caller won the lease or stored a new pair: look again at once.

    async def _refresh_as_holder(
        self, integration: Integration, credentials: Credentials, holder: str
    ) -> Credentials | None:
        """Refresh while holding the lease; None when the lease was lost and the caller must look again."""
        repository = self._integrations
        provider = integration.provider.value
        server = self._hosts.host(integration.endpoint).login
        assert credentials.refresh_token is not None
        if server is None:
            await repository.release_refresh_lease(integration.id, holder, self._clock())
            self._metrics.token_refresh(provider, "failed")
            raise ProviderUnavailableError(
                f"Login with {integration.host} is no longer configured on this service, so its access cannot "
                "be renewed; ask the operator, or connect with an access token."
            )
        try:
            grant = await server.refresh(credentials.refresh_token, redirect_uri=self._redirect_uri)
        except OAuthExchangeError as exc:
            # A refused refresh token is spent for good (single use): asking again cannot help.
            refused = exc.reason in REFUSED_REFRESH_REASONS
            released = await repository.release_refresh_lease(
                integration.id, holder, self._clock(), needs_reconnect=refused
            )
            if not released:
                return None
            self._metrics.token_refresh(provider, "refused" if refused else "failed")
            if refused:
                log.info(
                    "oauth: refresh refused", extra={"integration_id": integration.id, "reason": exc.reason}
                )
                raise _needs_reconnect(integration) from exc
            raise ProviderUnavailableError(
                f"{server.name} did not renew the access ({exc.reason}); try again in a moment."
            ) from exc
        except BaseException as exc:
            # An outage, a rate limit or a cancellation: let the next request try again.
            if isinstance(exc, Exception):
                self._metrics.token_refresh(provider, "failed")
            with contextlib.suppress(Exception):
                await asyncio.shield(repository.release_refresh_lease(integration.id, holder, self._clock()))
            raise
        now = self._clock()
        renewed = grant.credentials_at(now, previous=credentials)
        stored = await repository.store_refreshed(integration, holder, integration.version, renewed, now)
        if stored is not None:
            log.info("oauth: access token renewed", extra={"integration_id": integration.id})
            self._metrics.token_refresh(provider, "refreshed")
            return stored[1]
        if await repository.get_for_refresh(integration.owner, integration.id) is None:
            # Disconnected while we refreshed: the new token must not outlive the integration.
            with contextlib.suppress(ProviderUnavailableError):
                await server.revoke(renewed.access_token, renewed.refresh_token)
            raise NotFoundError()
        return None


def _needs_reconnect(integration: Integration) -> NeedsReconnectError:
    return NeedsReconnectError(
        f"{integration.host} no longer accepts the login of {integration.account.login}: connect again."
    )
