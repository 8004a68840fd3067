"""Checking a fine-grained personal access token (``github_pat_``) without changing anything at GitHub.

No endpoint lists a fine-grained token's grants, so its permissions are *probed* on one repository
it covers: a read endpoint per permission, and a write endpoint per permission called with a
deliberately invalid body (a token holding the permission gets 422 from validation, one lacking it
gets 403; nothing is ever written). Which repositories it covers also decides whether it was made
for "All repositories" or only selected ones.

How GitHub really answers (``/work/shared/provider-facts.md``, "Learned since"):

- ``X-Accepted-GitHub-Permissions`` comes with *every* answer to a fine-grained token, so it proves
  nothing. Only the message "Resource not accessible by personal access token" (or "... by
  integration") says that a permission is missing; other 403s ("Upgrade to GitHub Pro ...",
  "Repository was archived so is read-only.", "Must have admin rights to Repository.") are about the
  plan, the repository or the user's role, and leave the permission unverified.
- Administration read is probed with the deploy keys list, which answers on every plan (branch
  protection of a private repository needs a paid one).
- GitHub asks integrators to send mutating requests one at a time: the reads go out together, the
  write probes one after another.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import httpx

from app.domain.errors import (
    InvalidTokenError,
    MissingPermissionsError,
    ProviderUnavailableError,
    RateLimitedError,
)
from app.domain.models import RepositoryAccess, TokenKind, VerifiedToken
from app.hosts.github import messages
from app.hosts.github.constants import MAX_VERIFICATION_PAGES, PER_PAGE, REQUIRED_FINE_GRAINED_PERMISSIONS
from app.hosts.github.repositories import USER_REPOS, RepositoryEntry, parse_repository_entry
from app.hosts.github.tokens import Session, User
from app.hosts.parsing import parse_branch, parse_branches
from app.net.client import parse_json
from app.net.pagination import Paginator

logger = logging.getLogger(__name__)

PROBE_FILE_PATH = ".git-integrations-permission-probe"
_COMMIT_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
# A 403 says "this token lacks a permission" in these words (provider-facts: fine-grained PAT).
_NOT_ACCESSIBLE = "resource not accessible by"


class _Outcome(enum.Enum):
    GRANTED = "granted"
    MISSING = "missing"
    UNVERIFIED = "unverified"  # GitHub answered, but not in a way that proves either
    UNREACHABLE = "unreachable"  # GitHub was unavailable for this probe (reported as unverified)


async def verify_fine_grained(session: Session, user: User) -> VerifiedToken:
    """What a fine-grained token may do; ``MissingPermissionsError`` says what is missing where."""
    manage_url = f"{session.web}/settings/personal-access-tokens"
    repos, complete = await _token_repositories(session, user)
    if not repos:
        raise MissingPermissionsError(
            messages.no_repository_covered(manage_url),
            missing=list(REQUIRED_FINE_GRAINED_PERMISSIONS),
            granted=[],
        )
    probe_repo = _pick_probe_repository(repos)
    outcomes = await _Probes(session, probe_repo).run()
    granted = _names_with(outcomes, _Outcome.GRANTED)
    missing = _names_with(outcomes, _Outcome.MISSING)
    unverified = _names_with(outcomes, _Outcome.UNVERIFIED, _Outcome.UNREACHABLE)
    if all(outcome is _Outcome.UNREACHABLE for outcome in outcomes.values()):
        # Nothing could be checked at all: accepting the token would be a guess.
        raise ProviderUnavailableError(messages.probes_unreachable(session.host))
    if missing:
        raise MissingPermissionsError(
            messages.fine_grained_lacks(missing, unverified, probe_repo.repository.full_name, manage_url),
            missing=missing,
            granted=granted,
            unverified=unverified,
        )
    return VerifiedToken(
        token_kind=TokenKind.GITHUB_FINE_GRAINED,
        account=user.account,
        repository_access=_repository_access(repos, complete, user),
        granted_permissions=tuple(granted),
        unverified_permissions=tuple(unverified),
        expires_at=user.expires_at,
        manage_access_url=manage_url,
    )


async def _token_repositories(session: Session, user: User) -> tuple[list[RepositoryEntry], bool]:
    """The repositories the token covers, and whether the list is complete.

    Further pages are only needed to tell "All repositories" from "Only select repositories"
    (see ``_repository_access``); without ``owned_private_repos`` that cannot be decided, so
    one page is enough to pick a probe repository.
    """

    def check(response: httpx.Response) -> None:
        if response.status_code == 401:
            raise InvalidTokenError(messages.REVOKED)
        if response.status_code == 403:
            # Listing needs no permission at all: a refusal here is about the token itself (e.g. an
            # organisation's SSO or approval policy). GitHub's words are not repeated because the
            # token is not at hand to check them against.
            raise InvalidTokenError(messages.TOKEN_LISTING_REFUSED)
        if response.status_code != 200:
            raise session.unexpected(response.status_code, "listing the token's repositories")

    expected = _owned_repository_count(user)
    repos: list[RepositoryEntry] = []
    paginator = Paginator(session.http, session.api, check=check)
    walk = paginator.follow(
        USER_REPOS, {"per_page": PER_PAGE}, _entries(session), max_pages=MAX_VERIFICATION_PAGES
    )
    async for page in walk:
        repos.extend(page)
        if not walk.complete and (expected is None or _owned_by(repos, user) >= expected):
            break  # more pages would not change the answer
    return repos, walk.complete


def _entries(session: Session) -> Callable[[Any], list[RepositoryEntry]]:
    def parse(body: Any) -> list[RepositoryEntry]:
        if not isinstance(body, list):
            raise ProviderUnavailableError(messages.unexpected_body(session.host, "repository list"))
        entries = (parse_repository_entry(raw, session.web) for raw in body)
        return [entry for entry in entries if entry is not None]

    return parse


def _pick_probe_repository(repos: Sequence[RepositoryEntry]) -> RepositoryEntry:
    """Where permissions are probed: a live repository the user administers, else the first one.

    Archived repositories are read-only (every write answers 403) and deploy keys and webhooks need
    admin on the repository, so such a repository can leave permissions unverified.
    """
    live = [entry for entry in repos if not entry.repository.archived] or list(repos)
    return next((entry for entry in live if entry.admin), live[0])


def _owned_repository_count(user: User) -> int | None:
    if user.owned_private_repos is None or user.public_repos is None:
        return None
    return user.public_repos + user.owned_private_repos


def _owned_by(repos: Sequence[RepositoryEntry], user: User) -> int:
    """How many of ``repos`` belong to the user (by id, which survives renames; else by login)."""
    login = user.account.login.casefold()
    return sum(
        1
        for entry in repos
        if (str(entry.owner_id) == user.account.id)
        or (entry.owner_id is None and entry.repository.owner.casefold() == login)
    )


def _repository_access(repos: Sequence[RepositoryEntry], complete: bool, user: User) -> RepositoryAccess:
    """ALL or SELECTED for a fine-grained token.

    No API says whether a fine-grained token was created for "All repositories" or "Only select
    repositories". The token can only be said to cover *all* when it sees every repository its
    owner has: the listed repositories owned by the user number ``public_repos +
    owned_private_repos`` from ``GET /user`` (that field is only there with access to the private
    profile). Anything else, including tokens whose resource owner is an organisation, is SELECTED:
    the conservative answer, after which the UI tells the user where to add repositories.
    """
    expected = _owned_repository_count(user)
    if expected is None:
        return RepositoryAccess.SELECTED
    owned = _owned_by(repos, user)
    # owned > 0: a user with no repositories of their own whose token lists only organisation or
    # collaborator repositories would otherwise match 0 == 0.
    if owned > 0 and owned == expected:
        return RepositoryAccess.ALL
    if not complete:
        logger.info("github: repository list not read to the end; assuming selected repositories")
    return RepositoryAccess.SELECTED


class _Probes:
    """The eight permission probes on one repository; nothing is changed.

    The reads are sent together; the writes one after another, as GitHub asks of mutating requests
    ("make requests serially instead of concurrently", REST API best practices).
    """

    def __init__(self, session: Session, entry: RepositoryEntry) -> None:
        repo = entry.repository
        self._http = session.http
        self._repo = repo.full_name
        self._base = f"{session.api}/repos/{_segment(repo.owner)}/{_segment(repo.name)}"
        self._branch = repo.default_branch

    async def run(self) -> dict[str, _Outcome]:
        http, base, branch = self._http, self._base, self._branch
        # The branch list is the Contents read probe and usually also names the default branch's head
        # commit, which the statuses write probe needs: one request serves both.
        branch_list = asyncio.ensure_future(http.get(f"{base}/branches", params={"per_page": PER_PAGE}))
        reads: dict[str, Awaitable[_Outcome]] = {
            # The deploy keys list: Administration read on every plan.
            "administration:read": self._read(http.get(f"{base}/keys")),
            "statuses:read": (
                self._read(http.get(f"{base}/commits/{_segment(branch)}/statuses"))
                if branch
                else _unverified()
            ),
            "contents:read": self._read(branch_list),
            "webhooks:read": self._read(http.get(f"{base}/hooks")),
        }
        writes: dict[str, Callable[[], Awaitable[_Outcome]]] = {
            "administration:write": lambda: self._write("PATCH", base, {"has_issues": "not-a-boolean"}),
            "statuses:write": lambda: self._write_status(branch_list),
            "contents:write": lambda: self._write("PUT", f"{base}/contents/{PROBE_FILE_PATH}", {}),
            "webhooks:write": lambda: self._write("POST", f"{base}/hooks", {"config": "not-an-object"}),
        }
        try:
            outcomes = await _gathered(reads)
            for name, probe in writes.items():
                outcomes[name] = await probe()
        finally:
            if not branch_list.done():
                branch_list.cancel()
        for name in REQUIRED_FINE_GRAINED_PERMISSIONS:
            outcome = outcomes[name]
            if outcome is not _Outcome.GRANTED:
                logger.info("github: permission probe %s on %s: %s", name, self._repo, outcome.value)
        return outcomes

    async def _read(self, request: Awaitable[httpx.Response]) -> _Outcome:
        response = await _unless_unreachable(request)
        if response is None:
            return _Outcome.UNREACHABLE
        if response.is_success:
            return _Outcome.GRANTED
        return _classify_refusal(response)

    async def _write(self, method: str, url: str, invalid_body: Any) -> _Outcome:
        # The body is deliberately invalid: GitHub checks authorisation first (403), then validates
        # (422), so nothing is ever changed. That order is [unverified] in the docs, hence the
        # "unverified" outcome for any other answer.
        response = await _unless_unreachable(self._http.send(method, url, json_body=invalid_body))
        if response is None:
            return _Outcome.UNREACHABLE
        if response.status_code == 422:
            return _Outcome.GRANTED
        if response.is_success:
            logger.warning(
                "github: write probe %s %s succeeded although its body is invalid",
                method,
                httpx.URL(url).path,
            )
            return _Outcome.GRANTED
        return _classify_refusal(response)

    async def _write_status(self, branch_list: Awaitable[httpx.Response]) -> _Outcome:
        if not self._branch:
            return _Outcome.UNVERIFIED
        listing = await _unless_unreachable(branch_list)
        if listing is None:
            return _Outcome.UNREACHABLE
        sha = await self._head_sha(self._branch, listing)
        if sha is None:
            return _Outcome.UNVERIFIED  # no commit to address: the probe cannot be sent
        return await self._write("POST", f"{self._base}/statuses/{sha}", {"state": "not-a-state"})

    async def _head_sha(self, branch: str, listing: httpx.Response) -> str | None:
        """The head commit of ``branch``, preferably from the branch list already fetched."""
        if listing.status_code != 200:
            return None  # the single-branch endpoint needs the same (Contents read) access
        sha = _sha_of(branch, _json(listing))
        if sha is not None or "next" not in listing.links:
            return sha
        # More than one page of branches and the default one is not on the first: ask for it.
        response = await _unless_unreachable(self._http.get(f"{self._base}/branches/{_segment(branch)}"))
        if response is None or response.status_code != 200:
            return None
        found = parse_branch(_json(response), "sha")
        return _valid_sha(found.commit_sha if found is not None else None)


def _sha_of(branch: str, body: Any) -> str | None:
    """The head commit of ``branch`` in a branch list, when it is a valid commit id."""
    if not isinstance(body, list):
        return None
    found = next((b for b in parse_branches(body, "sha") if b.name == branch), None)
    return _valid_sha(found.commit_sha if found is not None else None)


def _valid_sha(value: str | None) -> str | None:
    # The sha becomes part of a URL path: accept nothing but a commit id.
    return value if value is not None and _COMMIT_SHA.fullmatch(value) else None


def _json(response: httpx.Response) -> Any:
    try:
        return parse_json(response)
    except ValueError:
        return None


async def _unless_unreachable(request: Awaitable[httpx.Response]) -> httpx.Response | None:
    """The response, or None when GitHub was unavailable (5xx after retries, transport failure).

    Rate limits are not swallowed: the caller must wait, and says so.
    """
    try:
        return await request
    except RateLimitedError:
        raise
    except ProviderUnavailableError:
        return None


async def _unverified() -> _Outcome:
    return _Outcome.UNVERIFIED


def _classify_refusal(response: httpx.Response) -> _Outcome:
    """Missing only when GitHub's message says so; any other refusal proves nothing.

    ``X-Accepted-GitHub-Permissions`` is not a sign: GitHub sends it with every answer to a
    fine-grained token. Other 403s name another cause (an archived repository, a feature of a paid
    plan, the user's role, SSO enforcement) and say nothing about the token's grants.
    """
    if response.status_code != 403:
        return _Outcome.UNVERIFIED  # 404, 409, a redirect, ...
    if _NOT_ACCESSIBLE in messages.message_of(response).lower():
        return _Outcome.MISSING
    return _Outcome.UNVERIFIED


async def _gathered(probes: Mapping[str, Awaitable[_Outcome]]) -> dict[str, _Outcome]:
    """Run ``probes`` together; a rate limit among their failures wins (it says how long to wait)."""
    results = await asyncio.gather(*probes.values(), return_exceptions=True)
    outcomes: dict[str, _Outcome] = {}
    errors: list[BaseException] = []
    for name, result in zip(probes, results, strict=True):
        if isinstance(result, BaseException):
            errors.append(result)
        else:
            outcomes[name] = result
    if errors:
        raise next((e for e in errors if isinstance(e, RateLimitedError)), errors[0])
    return outcomes


def _names_with(outcomes: Mapping[str, _Outcome], *wanted: _Outcome) -> list[str]:
    return [name for name in REQUIRED_FINE_GRAINED_PERMISSIONS if outcomes.get(name) in wanted]


def _segment(value: str | None) -> str:
    # Owner, repository and branch names go into a path: encode everything, "/" included (as octokit does).
    return quote(value or "", safe="")
