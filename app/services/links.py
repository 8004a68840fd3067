"""Linking a repository (``linkRepository``), unlinking it, and what the caller has linked.

Linking sets up two things at the host with the integration's token: a webhook for pushes and tag
pushes, pointing at ``PUBLIC_URL/webhooks/{github|gitlab}/{link id}`` with a random secret, and read
access for the builder — this service's GitHub App where it is installed on the repository, otherwise a
read-only deploy key (GitHub) or a ``read_repository`` deploy token (GitLab). Linking again is the
link check: it returns the same link, puts back a hook or key deleted at the host, and catches up on
deliveries the service failed to store (``services.catch_up``).

Unlinking removes the hook and the key or token at the host first; when the host cannot be reached the
link goes all the same, and the answer says what stayed there.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

from app.domain.errors import BadUserInputError, MissingPermissionsError, NotFoundError, PublicError
from app.domain.links import ReadAccessKind, RepositoryLink
from app.domain.models import Integration, Repository
from app.hosts.base import GitHost
from app.hosts.deploy import GrantedReadAccess
from app.services.catch_up import RELINK_WINDOW, DeliveryCatchUp
from app.services.clock import Clock
from app.services.credentials import HostAccess, require_active
from app.storage.events import EventStore
from app.storage.integrations import IntegrationRepository
from app.storage.links import LinkStore, Reservation

log = logging.getLogger(__name__)

# Long enough for the host calls of one setup (each bounded by HTTP_TIMEOUT_SECONDS); a holder that
# died gives the link back after this.
SETUP_LEASE = timedelta(seconds=90)
MAX_BRANCH_LENGTH = 255
NO_SUCH_REPOSITORY = "No repository with this id."
NO_SUCH_LINK = "No repository link with this id."


@dataclass(frozen=True)
class Unlinked:
    link: RepositoryLink
    host_cleaned_up: bool
    message: str | None


def webhook_path(link: RepositoryLink) -> str:
    return f"/webhooks/{link.provider.value.lower()}/{link.id}"


def normalise_branch(branch: str | None) -> str | None:
    """The branch name to deploy (``refs/heads/`` dropped); BAD_USER_INPUT for a name Git refuses."""
    if branch is None or not branch.strip():
        return None
    name = branch.strip().removeprefix("refs/heads/")
    forbidden = (" ", "~", "^", ":", "?", "*", "[", "\\", "..", "@{", "//")
    if (
        len(name) > MAX_BRANCH_LENGTH
        or not name.isprintable()
        or any(part in name for part in forbidden)
        or name.startswith(("/", "-", "."))
        or name.endswith(("/", ".", ".lock"))
    ):
        raise BadUserInputError(f"{branch!r} is not a branch name Git accepts.")
    return name


@dataclass
class _Setup:
    """What one setup created at the host, to take back if a later step fails."""

    hook_id: str | None = None
    hook_created: bool = False
    granted: list[GrantedReadAccess] = field(default_factory=list)


class RepositoryLinks:
    """``linkRepository``, ``unlinkRepository`` and ``repositoryLinks``."""

    def __init__(
        self,
        access: HostAccess,
        integrations: IntegrationRepository,
        links: LinkStore,
        events: EventStore,
        clock: Clock,
        catch_up: DeliveryCatchUp,
        *,
        public_url: str,
    ) -> None:
        self._access = access
        self._integrations = integrations
        self._links = links
        self._events = events
        self._clock = clock
        self._catch_up = catch_up
        self._public_url = public_url.rstrip("/")

    def webhook_url(self, link: RepositoryLink) -> str:
        """Where the host posts the link's deliveries."""
        return f"{self._public_url}{webhook_path(link)}"

    async def link(
        self, owner: str, integration_id: str, repository_id: str, branch: str | None
    ) -> RepositoryLink:
        """Link the repository ``repository_id`` of the owner's integration (or check and repair its link).

        Raises ``NotFoundError`` (no such integration or repository), ``NeedsReconnectError``,
        ``MissingPermissionsError`` (no admin / Maintainer rights, a permission or scope the token lacks,
        deploy keys forbidden by the organization), ``ProviderUnavailableError`` and
        ``BadUserInputError`` (a branch name Git refuses, or none for an empty repository).
        """
        wanted_branch = normalise_branch(branch)
        integration = await self._integrations.get(owner, integration_id)
        if integration is None:
            raise NotFoundError(NO_SUCH_REPOSITORY)
        require_active(integration)

        async def read(host: GitHost, token: str) -> Repository:
            target = await host.link_target(token, integration, repository_id)
            if not target.can_administer:
                raise _cannot_administer(integration, target.repository, target.required_role)
            return target.repository

        repository = await self._access.call(integration, read)
        chosen = wanted_branch or repository.default_branch
        if chosen is None:
            raise BadUserInputError(
                f"{repository.full_name} has no default branch yet (it is empty): name the branch to deploy."
            )
        now = self._clock()
        holder = uuid.uuid4().hex
        reservation = await self._links.reserve(
            integration, repository, chosen, holder=holder, now=now, until=now + SETUP_LEASE
        )
        if reservation.holder is None:
            return reservation.link  # another request is setting this link up right now
        if not reservation.created and wanted_branch is None:
            chosen = reservation.link.branch  # linking again without a branch keeps the one chosen before
        setup = _Setup()
        try:
            return await self._set_up(integration, reservation, repository, chosen, setup)
        except BaseException:
            await self._undo(integration, reservation, repository, setup)
            raise

    async def _set_up(
        self,
        integration: Integration,
        reservation: Reservation,
        repository: Repository,
        branch: str,
        setup: _Setup,
    ) -> RepositoryLink:
        link, secrets = reservation.link, reservation.secrets
        assert reservation.holder is not None

        async def hook(host: GitHost, token: str) -> str:
            return await host.ensure_webhook(
                token,
                integration,
                repository,
                url=self.webhook_url(link),
                secret=secrets.webhook_secret,
                hook_id=link.hook_id,
            )

        setup.hook_id = await self._access.call(integration, hook)
        setup.hook_created = setup.hook_id != link.hook_id
        granted = await self._read_access(integration, link, repository, setup)
        done = await self._links.complete_setup(
            link.id,
            reservation.holder,
            repository=repository,
            branch=branch,
            hook_id=setup.hook_id,
            granted=granted,
            now=self._clock(),
        )
        if done is None:  # the lease ran out and another request took the link over
            found = await self._links.get(link.owner, link.id)
            if found is None:
                raise NotFoundError(NO_SUCH_LINK)
            return found
        if not reservation.created:
            # The link check: deliveries the host logged as failed are asked for again.
            try:
                await self._catch_up.request(link.id, self._clock() - RELINK_WINDOW)
            except PublicError as exc:
                log.warning("could not ask for a catch-up", extra={"link_id": link.id, "reason": exc.code})
        log.info(
            "repository linked" if reservation.created else "repository link checked",
            extra={"link_id": link.id, "repository": repository.full_name, "host": integration.host},
        )
        return done

    async def _read_access(
        self, integration: Integration, link: RepositoryLink, repository: Repository, setup: _Setup
    ) -> GrantedReadAccess | None:
        """The builder's read access: the app where installed, else the existing key if still there,
        else a new one. None: keep what the link holds."""
        current = link.read_access

        async def choose(host: GitHost, token: str) -> GrantedReadAccess | None:
            through_app = await host.app_read_access(repository)
            if through_app is not None:
                if current is not None and current.kind is not ReadAccessKind.APP_INSTALLATION:
                    await _quietly(host.delete_read_access(token, integration, repository, current))
                return GrantedReadAccess(through_app)
            if (
                current is not None
                and current.kind is not ReadAccessKind.APP_INSTALLATION
                and await host.read_access_exists(token, integration, repository, current)
            ):
                return None
            created = await host.create_read_access(
                token, integration, repository, title=f"Deploy platform, read-only (link {link.id})"
            )
            setup.granted.append(created)
            return created

        return await self._access.call(integration, choose)

    async def _undo(
        self, integration: Integration, reservation: Reservation, repository: Repository, setup: _Setup
    ) -> None:
        """After a failed setup: take back what this attempt created at the host (best effort) and, for
        a new link, the link itself."""
        assert reservation.holder is not None

        async def take_back(host: GitHost, token: str) -> None:
            for granted in setup.granted:
                await _quietly(host.delete_read_access(token, integration, repository, granted.access))
            if setup.hook_created and setup.hook_id is not None and reservation.created:
                await _quietly(host.delete_webhook(token, integration, repository, setup.hook_id))

        if setup.granted or setup.hook_created:
            try:
                await self._access.call(integration, take_back)
            except PublicError as exc:
                log.warning("could not take back a failed link's setup", extra={"reason": exc.code})
        try:
            await self._links.release(reservation.link.id, reservation.holder, remove=reservation.created)
        except PublicError as exc:  # the lease expires by itself
            log.warning("could not release a link's setup lease", extra={"reason": exc.code})

    async def unlink(self, owner: str, link_id: str) -> Unlinked | None:
        """Remove the link: its hook and key or token at the host first, then the link and its events.

        None when there is no such link. What could not be removed at the host (host down, connection
        gone or refused) is named in the message; the link goes all the same.
        """
        link = await self._links.get(owner, link_id)
        if link is None:
            return None
        stayed = await self._clean_up_host(link)
        if not await self._links.delete(owner, link_id):
            return None
        try:
            await self._events.delete_for_link(link_id)
        except PublicError:
            log.warning("could not remove an unlinked repository's events", extra={"link_id": link_id})
        log.info("repository unlinked", extra={"link_id": link_id, "host_cleaned_up": not stayed})
        if not stayed:
            return Unlinked(link, host_cleaned_up=True, message=None)
        return Unlinked(
            link,
            host_cleaned_up=False,
            message=f"Unlinked here, but {' and '.join(stayed)} could not be removed from "
            f"{link.repository.full_name} at {link.host}: remove {'them' if len(stayed) > 1 else 'it'} in "
            f"the repository's settings ({link.repository.web_url}).",
        )

    async def unlink_all(self, owner: str, integration_id: str) -> int:
        """Unlink every link of an integration (when it is disconnected); how many went."""
        removed = 0
        for link in await self._links.list_for_integration(owner, integration_id):
            removed += await self.unlink(owner, link.id) is not None
        return removed

    async def _clean_up_host(self, link: RepositoryLink) -> list[str]:
        """Remove the hook and the key or token at the host; what stayed there."""
        access = link.read_access
        if access is not None and access.kind is ReadAccessKind.APP_INSTALLATION:
            access = None  # the app's installation belongs to the user, not to the link
        steps: list[tuple[str, Callable[[GitHost, str, Integration], Awaitable[None]]]] = []
        if link.hook_id is not None:
            hook_id = link.hook_id
            steps.append(
                (
                    "the webhook",
                    lambda host, token, i: host.delete_webhook(token, i, link.repository, hook_id),
                )
            )
        if access is not None:
            what = "the deploy key" if access.kind is ReadAccessKind.DEPLOY_KEY else "the deploy token"
            steps.append(
                (what, lambda host, token, i: host.delete_read_access(token, i, link.repository, access))
            )
        if not steps:
            return []
        integration = await self._integrations.get(link.owner, link.integration_id)
        if integration is None:
            return [what for what, _ in steps]
        removed: list[str] = []

        async def remove(host: GitHost, token: str) -> None:
            for what, step in steps:
                try:
                    await step(host, token, integration)
                except (NotFoundError, MissingPermissionsError) as exc:  # this step only
                    log.info(
                        "not removed at the host",
                        extra={"link_id": link.id, "what": what, "reason": exc.code},
                    )
                else:
                    removed.append(what)

        try:
            await self._access.call(integration, remove)
        except PublicError as exc:  # the host is down, or refuses the connection altogether
            log.warning("could not clean up at the host", extra={"link_id": link.id, "reason": exc.code})
        return [what for what, _ in steps if what not in removed]


async def _quietly(step: Awaitable[None]) -> None:
    """Await ``step``; a host refusing or failing is logged, not raised (clean-up is best effort)."""
    try:
        await step
    except PublicError as exc:
        log.info("clean-up step failed", extra={"reason": exc.code})


def _cannot_administer(
    integration: Integration, repository: Repository, role: str
) -> MissingPermissionsError:
    article = "an" if role[:1].lower() in "aeiou" else "a"
    return MissingPermissionsError(
        f"You need the {role} role on {repository.full_name} at {integration.host} to link it: only "
        f"with it can the webhook and the deploy key the platform uses be added. Ask {article} {role} of "
        "the repository to link it, or to give you that role.",
        missing=[f"{role} on {repository.full_name}"],
        granted=list(integration.granted_permissions),
    )
