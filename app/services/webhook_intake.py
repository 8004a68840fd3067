"""Receiving a delivery at ``POST /webhooks/{github|gitlab}/{link id}``: checked, stored once, answered.

The order is the security and the promise:

1. The link is found by its id (unguessable, in the URL only the host knows); a delivery for an unknown
   link, or to the other host's path, is 404.
2. The body is read (by ``app.webhooks``: a stream, at most 25 MiB) and its signature (GitHub) or token
   (GitLab) checked against the link's secret in constant time: a bad or missing one is 401 and nothing
   is stored.
3. ``ping`` is answered; events this service did not subscribe to, and pushes to other branches, are
   acknowledged and dropped; a push to the linked branch and any tag push is stored — once per delivery
   id, numbered in the link's sequence — durably, **before** the answer.
4. When the database does not answer within ``DEADLINE_SECONDS``, the answer is 503 and nothing is
   promised: the host logs the delivery as failed, and ``services.catch_up`` asks it to send it again.
"""

from __future__ import annotations

import enum
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from app.domain.errors import BadUserInputError, ServiceUnavailableError
from app.domain.links import RepositoryEvent, RepositoryEventKind, RepositoryLink
from app.domain.models import GitProvider
from app.hosts.deploy import DeliveryKind, IncomingDelivery
from app.hosts.registry import HostRegistry
from app.metrics import Metrics
from app.services.clock import Clock
from app.storage.events import EventStore
from app.storage.links import LinkStore

log = logging.getLogger(__name__)

# The database work of one delivery (finding the link, then storing the event) must fit in this in
# all, so that the host gets its answer within a second even when the database hangs.
DEADLINE_SECONDS = 0.8
_AT_LEAST_SECONDS = 0.05
_LINK_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


class Outcome(enum.Enum):
    STORED = "stored"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"
    PING = "ping"
    UNSIGNED = "unsigned"
    MALFORMED = "malformed"
    UNKNOWN_LINK = "unknown_link"
    TOO_LARGE = "too_large"
    UNAVAILABLE = "unavailable"


STATUS = {
    Outcome.STORED: 200,
    Outcome.DUPLICATE: 200,
    Outcome.IGNORED: 202,
    Outcome.PING: 200,
    Outcome.UNSIGNED: 401,
    Outcome.MALFORMED: 400,
    Outcome.UNKNOWN_LINK: 404,
    Outcome.TOO_LARGE: 413,
    Outcome.UNAVAILABLE: 503,
}


@dataclass(frozen=True)
class Received:
    outcome: Outcome
    message: str
    event: RepositoryEvent | None = None

    @property
    def status(self) -> int:
        return STATUS[self.outcome]


@dataclass(frozen=True)
class KnownLink:
    """A link a delivery is addressed to, with its webhook secret (never logged, never answered)."""

    link: RepositoryLink
    secret: str = ""
    lookup_seconds: float = 0.0  # what finding it took of DEADLINE_SECONDS

    def __repr__(self) -> str:
        return f"KnownLink(link={self.link.id!r})"


class WebhookIntake:
    """Checks and stores deliveries; ``on_unavailable`` hears of every link a delivery could not be
    stored for (the catch-up's in-process note while the database is away)."""

    def __init__(
        self,
        hosts: HostRegistry,
        links: LinkStore,
        events: EventStore,
        clock: Clock,
        metrics: Metrics,
        *,
        on_unavailable: Callable[[str], None] = lambda link_id: None,
    ) -> None:
        self._hosts = hosts
        self._links = links
        self._events = events
        self._clock = clock
        self._metrics = metrics
        self._on_unavailable = on_unavailable

    async def find(self, provider: GitProvider, link_id: str) -> KnownLink | Received:
        """The link a delivery is addressed to, or the answer to give without reading its body."""
        if not _LINK_ID.match(link_id):
            return self.answered(provider, Received(Outcome.UNKNOWN_LINK, "No such webhook."))
        started = time.perf_counter()
        try:
            found = await self._links.for_delivery(link_id, deadline_seconds=DEADLINE_SECONDS)
        except ServiceUnavailableError:
            self._on_unavailable(link_id)
            return self.answered(provider, Received(Outcome.UNAVAILABLE, "Try again later."))
        if found is None or found[0].provider is not provider:
            return self.answered(provider, Received(Outcome.UNKNOWN_LINK, "No such webhook."))
        return KnownLink(*found, lookup_seconds=time.perf_counter() - started)

    async def accept(self, known: KnownLink, headers: Mapping[str, str], body: bytes) -> Received:
        """Check ``body`` against the link's secret, then answer, drop or store it (see the module docstring)."""
        started = time.perf_counter()
        link = known.link
        host = self._hosts.deliveries(link.provider)
        if not host.verify_delivery(headers, body, known.secret):
            log.info("webhook delivery refused: bad or missing signature", extra={"link_id": link.id})
            return self.answered(link.provider, Received(Outcome.UNSIGNED, "The signature does not match."))
        try:
            delivery = host.parse_delivery(headers, body)
        except BadUserInputError as exc:
            return self.answered(link.provider, Received(Outcome.MALFORMED, exc.message))
        received = await self._handle(
            link, delivery, max(_AT_LEAST_SECONDS, DEADLINE_SECONDS - known.lookup_seconds)
        )
        return self.answered(link.provider, received, time.perf_counter() - started)

    async def _handle(
        self, link: RepositoryLink, delivery: IncomingDelivery, deadline_seconds: float
    ) -> Received:
        if delivery.kind is DeliveryKind.PING:
            return Received(Outcome.PING, "pong")
        if delivery.kind is DeliveryKind.OTHER:
            return Received(Outcome.IGNORED, "Not an event this service keeps.")
        if delivery.kind is DeliveryKind.PUSH and delivery.branch != link.branch:
            return Received(Outcome.IGNORED, f"Not the linked branch ({link.branch}).")
        assert delivery.ref is not None and delivery.after is not None
        event = RepositoryEvent(
            link_id=link.id,
            sequence=0,  # numbered when stored
            kind=RepositoryEventKind.TAG_PUSH
            if delivery.kind is DeliveryKind.TAG_PUSH
            else RepositoryEventKind.PUSH,
            ref=delivery.ref,
            before=delivery.before,
            after=delivery.after,
            head_commit_message=delivery.head_commit_message,
            pusher=delivery.pusher,
            delivery_id=delivery.delivery_id,
            received_at=self._clock(),
        )
        try:
            stored = await self._events.store_once(
                event, known_sequence=link.event_sequence, deadline_seconds=deadline_seconds
            )
        except ServiceUnavailableError:
            self._on_unavailable(link.id)
            log.warning(
                "webhook delivery not stored: the database did not answer", extra={"link_id": link.id}
            )
            return Received(Outcome.UNAVAILABLE, "Try again later.")
        if not stored.created:
            return Received(Outcome.DUPLICATE, "Stored before.", stored.event)
        try:
            await self._links.note_event(link.id, stored.event.sequence, stored.event.received_at)
        except ServiceUnavailableError:  # the event is stored: only lastEventAt lags
            log.warning("could not note a link's last event", extra={"link_id": link.id})
        return Received(Outcome.STORED, "Stored.", stored.event)

    def note_unavailable(self, link_id: str) -> None:
        """A delivery for the link could not be taken now (database away, process busy)."""
        self._on_unavailable(link_id)

    def answered(self, provider: GitProvider, received: Received, seconds: float | None = None) -> Received:
        self._metrics.webhook_delivery(provider.value.lower(), received.outcome.value, seconds)
        return received
