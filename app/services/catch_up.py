"""Catching up on deliveries the service could not store: the hosts' delivery logs, read and redelivered.

GitHub never retries a failed delivery, and GitLab does not either; so when a receiver answered 503
(the database away or too slow, the process too busy) or nobody answered at all (every replica down),
the delivery sits in the host's log as failed. This use case reads that log and asks the host to send
those deliveries again (same delivery id: one stored event, however it arrives).

**When a link is looked at** (processes hold no state of their own: the marks live in MongoDB):

1. A receiver that could not store a delivery notes the link in the process (``note``); the note
   becomes a mark on the link (``storage.catch_up_markers``) as soon as the database answers again —
   the only thing kept in memory, and only while the database cannot take it (bounded: past
   ``MAX_NOTES`` links the whole service is marked instead).
2. Every process writes a heartbeat while it serves; the first one to start after a gap longer than
   three intervals (every replica was down) marks every link from the last heartbeat on.
3. Every link check (``linkRepository`` on a linked repository) marks the link due now, back
   ``RELINK_WINDOW`` (the answer does not wait for the host's log: the next tick reads it).

Any process then takes due links one by one under a lease (``tick``, every ``DELIVERY_CATCH_UP_SECONDS``).

**Bounded work per look**: one hook check, at most ``LOG_PAGES`` pages of the log (newest first, back to
``since``), at most ``MAX_REDELIVERIES`` redeliveries, oldest first — what is left waits for the next
look, one interval later, when the redeliveries asked for have landed; a delivery the host already
tried ``MAX_ATTEMPTS`` times is given up (and logged); ``LINKS_PER_TICK`` looks per tick and process.
A look that fails (host down, rate limited) is retried with back-off, at most ``MAX_LOOKS`` times. A
hook found gone or disabled marks the link BROKEN (linking again repairs it).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from app.domain.errors import NeedsReconnectError, NotFoundError, ProviderUnavailableError, PublicError
from app.domain.links import LinkStatus, RepositoryLink
from app.domain.models import Integration, IntegrationStatus
from app.hosts.base import GitHost
from app.hosts.deploy import DeliveryAttempt, HookHealth
from app.metrics import Metrics
from app.services.clock import Clock
from app.services.credentials import HostAccess
from app.storage.catch_up_markers import CatchUpMarkers, DueCheck
from app.storage.events import EventStore
from app.storage.integrations import IntegrationRepository
from app.storage.links import LinkStore

log = logging.getLogger(__name__)

MARGIN = timedelta(minutes=5)  # the host's clock and ours need not agree
RELINK_WINDOW = timedelta(days=3)  # how far back a link check looks (GitHub redelivers recent ones only)
LEASE = timedelta(minutes=2)
LOG_PAGES = 20  # of 100: GitHub's log has no time filter, only pages, newest first
MAX_REDELIVERIES = 100
MAX_ATTEMPTS = 4  # attempts the host logged for one delivery before it is given up
LINKS_PER_TICK = 20
MAX_LOOKS = 10
MAX_NOTES = 10_000
# A delivery asked for is not asked for again before this: it may still be on its way.
ASK_AGAIN_AFTER = timedelta(minutes=2)


@dataclass(frozen=True)
class Look:
    """What one look at a link's hook and log found and did; ``more``: it left redeliveries for later."""

    redelivered: int
    broken: str | None = None
    more: bool = False
    asked: dict[str, datetime] = field(default_factory=dict)  # asked for and not stored yet, and when


def to_redeliver(attempts: Iterable[DeliveryAttempt]) -> list[DeliveryAttempt]:
    """The newest attempt of every push delivery that only ever failed on this service's side."""
    by_delivery: dict[str, list[DeliveryAttempt]] = {}
    for attempt in attempts:
        by_delivery.setdefault(attempt.delivery_id, []).append(attempt)
    chosen = []
    for delivery_id, tried in by_delivery.items():
        if not tried[0].is_push or not all(a.failed_on_our_side for a in tried):
            continue
        if len(tried) >= MAX_ATTEMPTS:
            log.warning("delivery given up after repeated failures", extra={"delivery_id": delivery_id})
            continue
        chosen.append(max(tried, key=_when))
    return sorted(chosen, key=_when)  # oldest first


def _when(attempt: DeliveryAttempt) -> tuple[bool, datetime | None]:
    return attempt.delivered_at is not None, attempt.delivered_at


class _Notes:
    """Links a delivery could not be stored for, and since when: kept until the database takes them."""

    def __init__(self) -> None:
        self.links: dict[str, datetime] = {}
        self.everything_since: datetime | None = None

    def add(self, link_id: str, at: datetime) -> None:
        if link_id in self.links:
            return
        if len(self.links) >= MAX_NOTES:
            self.everything_since = min(self.everything_since or at, *self.links.values())
            self.links.clear()
            return
        self.links[link_id] = at

    def take(self) -> tuple[dict[str, datetime], datetime | None]:
        taken = (self.links, self.everything_since)
        self.links, self.everything_since = {}, None
        return taken

    def give_back(self, links: dict[str, datetime], everything_since: datetime | None) -> None:
        for link_id, at in links.items():
            self.add(link_id, at)
        if everything_since is not None:
            self.everything_since = min(self.everything_since or everything_since, everything_since)


class DeliveryCatchUp:
    def __init__(
        self,
        access: HostAccess,
        integrations: IntegrationRepository,
        links: LinkStore,
        markers: CatchUpMarkers,
        events: EventStore,
        clock: Clock,
        metrics: Metrics,
        *,
        interval_seconds: float,
    ) -> None:
        self._access = access
        self._integrations = integrations
        self._links = links
        self._markers = markers
        self._events = events
        self._clock = clock
        self._metrics = metrics
        self.interval_seconds = interval_seconds
        self._notes = _Notes()
        self._holder = f"catch-up-{uuid.uuid4().hex}"
        self._started = False

    def note(self, link_id: str) -> None:
        """A delivery for ``link_id`` could not be stored now (the receivers call this)."""
        self._notes.add(link_id, self._clock())

    async def request(self, link_id: str, since: datetime) -> None:
        """Have the link looked at soon, from ``since`` on (a link check)."""
        await self._markers.mark([link_id], since, self._clock())

    async def run(self) -> None:
        """Tick every ``interval_seconds`` until cancelled (a periodic pass: the notes wait for the
        database, and the marks for their due time)."""
        while True:
            await asyncio.sleep(self.interval_seconds)
            try:
                await self.tick()
            except PublicError as exc:  # the database is away: the next tick tries again
                log.info("delivery catch-up postponed", extra={"reason": exc.code})
            except Exception:
                log.exception("delivery catch-up failed")

    async def tick(self) -> int:
        """Write pending notes, beat, and look at the links that are due; how many were looked at."""
        now = self._clock()
        await self._write_notes(now)
        previous = await self._markers.beat(now)
        if not self._started:
            self._started = True
            gap = timedelta(seconds=max(90.0, 3 * self.interval_seconds))
            if previous is not None and now - previous > gap:
                marked = await self._markers.mark_all(previous - MARGIN, now)
                log.warning(
                    "no process served deliveries for a while: catching up every link",
                    extra={"since": previous.isoformat(), "links": marked},
                )
        looked = 0
        while looked < LINKS_PER_TICK:
            now = self._clock()
            due = await self._markers.claim(self._holder, now, now + LEASE)
            if due is None:
                break
            looked += 1
            await self._look_at_due(due)
        return looked

    async def _write_notes(self, now: datetime) -> None:
        links, everything_since = self._notes.take()
        if not links and everything_since is None:
            return
        try:
            if everything_since is not None:
                await self._markers.mark_all(everything_since - MARGIN, now)
            if links:
                await self._markers.mark(list(links), min(links.values()) - MARGIN, now)
        except PublicError:
            self._notes.give_back(links, everything_since)
            raise

    async def _look_at_due(self, due: DueCheck) -> None:
        link = due.link
        integration = await self._integrations.get(link.owner, link.integration_id)
        if (
            integration is None
            or integration.status is IntegrationStatus.NEEDS_RECONNECT
            or link.hook_id is None
        ):
            await self._markers.finish(due, self._holder, retry_at=None)  # nothing this service can do
            return
        try:
            found = await self.look(link, integration, due.since, asked=due.asked)
        except (NeedsReconnectError, NotFoundError):
            await self._markers.finish(due, self._holder, retry_at=None)  # the link shows BROKEN
        except ProviderUnavailableError as exc:
            self._metrics.delivery_catch_up("failed")
            if due.attempts + 1 >= MAX_LOOKS:
                log.warning(
                    "delivery catch-up given up for a link", extra={"link_id": link.id, "reason": exc.code}
                )
                await self._markers.finish(due, self._holder, retry_at=None)
                return
            wait = max(exc.retry_after_seconds or 0, 30 * 2**due.attempts)
            await self._markers.finish(
                due, self._holder, retry_at=self._clock() + timedelta(seconds=min(wait, 3600))
            )
        else:
            # What is left waits until the deliveries asked for have landed (they are then stored).
            later = self._clock() + timedelta(seconds=self.interval_seconds) if found.more else None
            await self._markers.finish(due, self._holder, retry_at=later, failed=False, asked=found.asked)

    async def look(
        self,
        link: RepositoryLink,
        integration: Integration,
        since: datetime,
        *,
        asked: Mapping[str, datetime] | None = None,
    ) -> Look:
        """Check the link's hook and have the host send again what failed on this service's side since
        ``since`` — but not what an earlier look ``asked`` for less than ``ASK_AGAIN_AFTER`` ago (it may
        still be on its way). A hook gone or disabled marks the link BROKEN (nothing is redelivered)."""
        now = self._clock()
        on_the_way = {key: at for key, at in (asked or {}).items() if now - at < ASK_AGAIN_AFTER}
        hook_id = link.hook_id
        if hook_id is None:
            return Look(0)

        async def inspect(host: GitHost, token: str) -> Look:
            health = await host.webhook_health(token, integration, link.repository, hook_id)
            if health is not HookHealth.WORKING:
                return Look(0, broken=_broken(link, health))
            attempts = await host.delivery_log(
                token, integration, link.repository, hook_id, since=since, max_pages=LOG_PAGES
            )
            candidates = to_redeliver(attempts)
            stored = await self._events.stored_deliveries(link.id, [a.delivery_id for a in candidates])
            missing = [a for a in candidates if a.delivery_id not in stored]
            waiting = {
                a.delivery_id: on_the_way[a.delivery_id] for a in missing if a.delivery_id in on_the_way
            }
            todo = [a for a in missing if a.delivery_id not in waiting]
            chosen = todo[:MAX_REDELIVERIES]
            for attempt in chosen:
                await host.redeliver(token, integration, link.repository, hook_id, attempt)
            return Look(
                len(chosen),
                more=len(todo) > MAX_REDELIVERIES or bool(waiting),
                asked=waiting | dict.fromkeys((a.delivery_id for a in chosen), now),
            )

        found = await self._access.call(integration, inspect)
        self._metrics.delivery_catch_up("checked")
        if found.broken is not None:
            self._metrics.delivery_catch_up("broken")
            await self._links.set_status(link.id, LinkStatus.BROKEN, found.broken, hook_id=hook_id, now=now)
        elif link.status is LinkStatus.BROKEN:
            await self._links.set_status(link.id, LinkStatus.ACTIVE, None, hook_id=hook_id, now=now)
        if found.redelivered:
            self._metrics.delivery_catch_up("redelivered", found.redelivered)
            log.info(
                "asked the host to redeliver", extra={"link_id": link.id, "deliveries": found.redelivered}
            )
        return found


def _broken(link: RepositoryLink, health: HookHealth) -> str:
    full_name = link.repository.full_name
    if health is HookHealth.GONE:
        return f"The webhook of {full_name} was deleted at {link.host}: link the repository again to put it back."
    return (
        f"{link.host} stopped delivering to the webhook of {full_name} after repeated failures: link the "
        "repository again to put it back."
    )
