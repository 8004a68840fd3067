"""What the demo prepares through the service's own API at start, and the pushes to linked repositories.

Nothing here writes to the service's database: the cases that need history (erin's earlier sign-in,
rita's token revoked since, lena's linked repository and its push) are made the way a user would make
them, through GraphQL and the fake hosts' pages.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit

import httpx

from demo import operations as ops
from demo import world
from tests.fakes.github import FakeGitHub
from tests.fakes.gitlab import FakeGitLab

PUSH_AFTER_LINK_SECONDS = 0.5  # after the hook was created: the link is stored, the ping answered


class _FormReader(HTMLParser):
    """The one form of a fake host's consent page: its action and its fields' values."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.action = values.get("action")
        elif tag == "input" and "name" in values and values.get("type") != "radio":
            self.fields[values["name"]] = values.get("value", "")


async def sign_in(
    http: httpx.AsyncClient, authorization_url: str, return_to: str, choices: dict[str, str]
) -> dict[str, str]:
    """Be the browser of a login: approve each consent page with ``choices`` (e.g. ``login``), follow
    the redirects until ``return_to``; what the service handed on there (``state``, ``code``, …)."""
    url = authorization_url
    for _ in range(10):
        if url.startswith(return_to):
            return dict(parse_qsl(urlsplit(url).query))
        response = await http.get(url)
        if response.status_code == 200 and "<form" in response.text:
            form = _FormReader()
            form.feed(response.text)
            fields = {**form.fields, "decision": "approve", **choices}
            response = await http.post(urljoin(url, form.action or ""), data=fields)
        if response.status_code not in (302, 303):
            raise RuntimeError(f"the sign-in stopped at {urlsplit(url).path}: {response.status_code}")
        url = urljoin(url, response.headers["location"])
    raise RuntimeError("the sign-in did not come back")


@dataclass
class Pusher:
    """Pushes once to every repository that got a webhook (a repository was linked), and on demand."""

    github: FakeGitHub
    gitlab: FakeGitLab
    pushed_hooks: set[tuple[str, int]] = field(default_factory=set)
    pushes: dict[str, list[str]] = field(default_factory=dict)  # webhook URL → delivery ids

    def push_new(self) -> int:
        """Push to the repositories whose hook has not seen a push from the demo yet."""
        return self._push(only_new=True)

    def push_all(self) -> int:
        """Push to every linked repository (the demo page's button). How many pushes."""
        return self._push(only_new=False)

    def _push(self, *, only_new: bool) -> int:
        count = 0
        hooks: list[tuple[str, str, Any]] = []
        with self.github.lock:
            hooks += [("github", r.full_name, h) for r in self.github.repositories.values() for h in r.hooks]
        with self.gitlab.lock:
            hooks += [
                ("gitlab", p.path_with_namespace, h) for p in self.gitlab.projects.values() for h in p.hooks
            ]
        for host, repository, hook in hooks:
            if only_new and (host, hook.id) in self.pushed_hooks:
                continue
            self.pushed_hooks.add((host, hook.id))
            message = f"Pushed by make demo to {repository}"
            if host == "github":
                guids = self.github.push(repository, message=message)
            else:
                guids = self.gitlab.push(repository, message=message)
            self.pushes.setdefault(hook.url, []).extend(guids)
            count += 1
        return count

    def hook_created(self, method: str, path: str) -> bool:
        """Whether a request to a fake creates a repository webhook (GitHub and GitLab spell it alike)."""
        return method == "POST" and path.rstrip("/").endswith("/hooks")

    async def delivered(self, webhook_url: str, within_seconds: float = 15) -> None:
        """Until a push to ``webhook_url`` was answered 200 by the service."""
        deadline = asyncio.get_running_loop().time() + within_seconds
        while asyncio.get_running_loop().time() < deadline:
            ids = set(self.pushes.get(webhook_url, ()))
            attempts = [*self.github.outbox.attempts, *self.gitlab.outbox.attempts]
            if any(a.delivery_id in ids and a.status == 200 for a in attempts):
                return
            await asyncio.sleep(0.05)
        raise RuntimeError(f"no push reached {webhook_url}")


@contextlib.asynccontextmanager
async def delivering(pusher: Pusher, service: httpx.AsyncClient) -> AsyncIterator[None]:
    """While the block runs: the fakes' webhook deliveries go to the service, and a repository that got
    a webhook receives a push shortly after (a push arriving on a linked repository)."""
    loop = asyncio.get_running_loop()
    pending: set[asyncio.Task[None]] = set()

    async def push_soon() -> None:
        await asyncio.sleep(PUSH_AFTER_LINK_SECONDS)
        pusher.push_new()

    def schedule() -> None:
        task = loop.create_task(push_soon())
        pending.add(task)
        task.add_done_callback(pending.discard)

    def arrived(request: Any) -> None:  # called from the fake's server thread
        if pusher.hook_created(request.method, request.path):
            loop.call_soon_threadsafe(schedule)

    pusher.github.on_arrival = pusher.gitlab.on_arrival = arrived
    try:
        async with pusher.github.outbox.pumping(service), pusher.gitlab.outbox.pumping(service):
            yield
    finally:
        pusher.github.on_arrival = pusher.gitlab.on_arrival = None
        for task in pending:
            task.cancel()


@dataclass(frozen=True)
class Seeded:
    """What seeding made: lena's link (its webhook URL) for the cheat sheet."""

    lena_link: str
    lena_webhook: str


async def seed(
    service_url: str, return_to: str, jwts: dict[str, str], github: FakeGitHub, pusher: Pusher
) -> Seeded:
    """erin signs in with GitHub; rita connects a token that GitHub then revokes; lena links a repository."""
    async with httpx.AsyncClient(timeout=60) as api, httpx.AsyncClient(timeout=60) as browser:
        # erin: a GitHub App sign-in whose refresh token ends in two days (the fake's setting for erin).
        started = await ops.execute(
            api,
            service_url,
            jwts["erin"],
            ops.CONNECT_OAUTH,
            {"input": {"provider": "GITHUB", "returnTo": return_to}},
        )
        handed = await sign_in(
            browser,
            started["connectGitOAuth"]["authorizationUrl"],
            return_to,
            {"login": "erin", "repository_selection": "all"},
        )
        done = await ops.execute(
            api,
            service_url,
            jwts["erin"],
            ops.COMPLETE_OAUTH,
            {"input": {k: handed[k] for k in ("state", "code", "installationId") if k in handed}},
        )
        _expect(done["completeGitOAuth"], "Integration", "erin's sign-in")

        # rita: connected, then revoked at GitHub; the next check finds out.
        connected = await ops.execute(
            api,
            service_url,
            jwts["rita"],
            ops.CONNECT_TOKEN,
            {"input": {"provider": "GITHUB", "token": world.GH_RITA}},
        )
        rita = _expect(connected["connectGitToken"], "Integration", "rita's token")
        github.revoke_token(world.GH_RITA)
        await ops.execute(api, service_url, jwts["rita"], ops.VERIFY, {"input": {"id": rita["id"]}})

        # lena: one repository linked; the webhook brings a push.
        connected = await ops.execute(
            api,
            service_url,
            jwts["lena"],
            ops.CONNECT_TOKEN,
            {"input": {"provider": "GITHUB", "token": world.GH_LENA}},
        )
        lena = _expect(connected["connectGitToken"], "Integration", "lena's token")
        listed = await ops.execute(
            api, service_url, jwts["lena"], ops.REPOSITORIES, {"id": lena["id"], "first": 10}
        )
        edges = listed["integration"]["repositories"]["edges"]
        repository = next(e["node"]["id"] for e in edges if e["node"]["fullName"] == world.LINKED)
        linked = await ops.execute(
            api, service_url, jwts["lena"], ops.LINK, {"input": {"repositoryId": repository}}
        )
        link = _expect(linked["linkRepository"], "RepositoryLink", "lena's link")
        pusher.push_new()
        await pusher.delivered(link["webhookUrl"])
        return Seeded(link["id"], link["webhookUrl"])


def _expect(result: dict[str, Any], typename: str, what: str) -> dict[str, Any]:
    if result.get("__typename") != typename:
        raise RuntimeError(f"{what}: {result.get('__typename')}: {result.get('message')}")
    return result
