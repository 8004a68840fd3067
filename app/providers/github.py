"""GitHub client (github.com and GitHub Enterprise Server): checking a pasted access token.

``GitHubClient.verify_token`` finds out what a personal access token is and whether the service
may use it, without changing anything at GitHub:

- classic tokens (``ghp_``) name their scopes in ``X-OAuth-Scopes``: one ``GET /user`` is enough;
- fine-grained tokens (``github_pat_``) have no such header and no endpoint lists their grants, so
  their permissions are *probed* on one repository they cover: a read endpoint per permission, and
  a write endpoint per permission called with a deliberately invalid body (a token holding the
  permission gets 422 from validation, one lacking it gets 403; nothing is ever written);
- OAuth App / GitHub App tokens are refused here: they come from "Connect with GitHub".

Every request goes through ``HostHTTP`` (no redirects, bounded retries of GETs, rate limits raised
as ``RateLimitedError``). The token only ever travels in the ``Authorization`` header: it is never
part of a message, an exception or a log line.
"""

from __future__ import annotations

import asyncio
import email.utils
import enum
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx

from app.domain.errors import (
    InvalidTokenError,
    MissingPermissionsError,
    ProviderUnavailableError,
    RateLimitedError,
)
from app.domain.listing import Listing
from app.domain.models import (
    Branch,
    GitAccount,
    HostEndpoint,
    Integration,
    RepositoryAccess,
    TokenKind,
    TokenResource,
    VerifiedToken,
)
from app.providers import github_repositories
from app.providers.http import HostHTTP, RetryPolicy, json_body, parse_link_header

logger = logging.getLogger(__name__)

API_VERSION = "2022-11-28"
USER_AGENT = "git-integrations-service"

MAX_TOKEN_LENGTH = 255
_TOKEN_CHARACTERS = re.compile(r"[A-Za-z0-9_]+")
# Prefixes of tokens that come from a sign-in flow rather than from the token settings page.
_LOGIN_TOKEN_PREFIXES = ("gho_", "ghu_", "ghs_", "ghr_")
# Anything in a message from GitHub that looks like a credential makes us drop that message.
_CREDENTIAL_LIKE = re.compile(r"gh[pousr]_|github_pat_|\b[0-9a-fA-F]{40}\b")

REQUIRED_CLASSIC_SCOPES = ("repo", "admin:repo_hook")

# Fine-grained permission areas the product needs, with the words GitHub's token page uses for them.
PERMISSION_AREAS: Mapping[str, str] = {
    "administration": "Administration",
    "statuses": "Commit statuses",
    "contents": "Contents",
    "webhooks": "Webhooks",
}
REQUIRED_FINE_GRAINED_PERMISSIONS = tuple(
    f"{area}:{level}" for area in PERMISSION_AREAS for level in ("read", "write")
)

# /user/repos is read at most this many pages (100 repositories each) while verifying.
MAX_REPOSITORY_PAGES = 10
PROBE_FILE_PATH = ".git-integrations-permission-probe"
_COMMIT_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
# A 403 says "this token lacks a permission" in these words (provider-facts: fine-grained PAT).
_NOT_ACCESSIBLE = "resource not accessible by"

REVOKED_MESSAGE = "GitHub did not accept this token: it is unknown, expired or revoked."


class _Outcome(enum.Enum):
    GRANTED = "granted"
    MISSING = "missing"
    UNVERIFIED = "unverified"  # GitHub answered, but not in a way that proves either
    UNREACHABLE = "unreachable"  # GitHub was unavailable for this probe (reported as unverified)


@dataclass(frozen=True)
class _User:
    """What ``GET /user`` told us about the token and its user."""

    account: GitAccount
    scopes: tuple[str, ...] | None  # None: no X-OAuth-Scopes header at all
    expires_at: datetime | None
    public_repos: int | None
    owned_private_repos: int | None


@dataclass(frozen=True)
class _Installation:
    """The fields of a ``/user/installations`` entry that verification needs."""

    id: str
    account: str
    repository_selection: str  # "all" | "selected"
    permissions: tuple[str, ...]  # "contents:read", "contents:write", ...
    html_url: str


@dataclass(frozen=True)
class _Repo:
    """The fields of a ``/user/repos`` entry that verification needs."""

    owner: str
    name: str
    owner_id: int | None
    default_branch: str | None
    admin: bool
    private: bool
    archived: bool

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


def _verify_scopes(
    user: _User, kind: TokenKind, manage_url: str, refusal: Callable[[list[str]], str]
) -> VerifiedToken:
    """Classic tokens and OAuth App logins: judged by ``X-OAuth-Scopes``, never by what was requested.

    Scopes can be narrowed after the token was made (or by an organisation policy), so the header is
    read every time; ``refusal`` words the message for the scopes that are missing.
    """
    scopes = user.scopes or ()
    missing = [scope for scope in REQUIRED_CLASSIC_SCOPES if scope not in scopes]
    if missing:
        raise MissingPermissionsError(refusal(missing), missing=missing, granted=list(scopes))
    return VerifiedToken(
        token_kind=kind,
        account=user.account,
        repository_access=RepositoryAccess.ALL,
        granted_permissions=scopes,
        expires_at=user.expires_at,
        manage_access_url=manage_url,
    )


class GitHubClient:
    """A client for one GitHub host (github.com or a GitHub Enterprise Server)."""

    def __init__(
        self, client: httpx.AsyncClient, endpoint: HostEndpoint, *, retry: RetryPolicy | None = None
    ) -> None:
        self.endpoint = endpoint
        self._client = client
        self._retry = retry
        self._api = endpoint.api_url.rstrip("/")
        self._web = endpoint.web_url.rstrip("/")

    def _http(self, token: str) -> HostHTTP:
        return HostHTTP(
            self._client,
            self.endpoint.host,
            default_headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
                "User-Agent": USER_AGENT,
            },
            retry=self._retry,
        )

    async def verify_token(self, token: str) -> VerifiedToken:
        """Check a personal access token against GitHub before it is stored; changes nothing there.

        Classic tokens need the scopes ``repo`` and ``admin:repo_hook``; fine-grained tokens need
        Administration, Commit statuses, Contents and Webhooks (read and write) on the repositories
        they cover. Raises ``InvalidTokenError`` (malformed, OAuth/App, unknown, expired or revoked),
        ``MissingPermissionsError`` (what is missing, granted and unverified) or
        ``ProviderUnavailableError`` / ``RateLimitedError``.
        """
        token = _sane_token(token)
        kind = _kind_from_prefix(token)
        http = self._http(token)
        user = await self._get_user(http, token)
        if kind is None:
            # Unknown prefix (e.g. a legacy 40-hex token): only classic tokens carry the scope header.
            kind = TokenKind.GITHUB_CLASSIC if user.scopes is not None else TokenKind.GITHUB_FINE_GRAINED
        if kind is TokenKind.GITHUB_CLASSIC:
            return self._verify_classic(user)
        return await self._verify_fine_grained(http, user)

    async def verify_login_token(
        self, token: str, kind: TokenKind, installation_id: str | None = None
    ) -> VerifiedToken:
        """Check a token from "Connect with GitHub" before it is stored; changes nothing at GitHub.

        ``kind`` names the flow that issued it. An OAuth App token (``GITHUB_OAUTH_APP``, ``gho_``)
        needs ``repo`` and ``admin:repo_hook`` in ``X-OAuth-Scopes``, as a classic token does, and
        reaches all repositories. A GitHub App user token (``GITHUB_APP``, ``ghu_``) reaches the
        repositories of the app's installations the user can access: ``installation_id`` comes from a
        redirect anyone can edit, so it must be among ``GET /user/installations``, and that
        installation must hold the permissions the service needs. Raises ``InvalidTokenError``,
        ``MissingPermissionsError`` or ``ProviderUnavailableError`` / ``RateLimitedError``.
        """
        token = _sane_token(token)
        http = self._http(token)
        user = await self._get_user(http, token)
        if kind is TokenKind.GITHUB_OAUTH_APP:
            return self._verify_oauth_app(user)
        if kind is TokenKind.GITHUB_APP:
            return await self._verify_app_user(http, user, installation_id)
        raise ValueError(f"{kind.value} is not a kind of login token")

    def _verify_oauth_app(self, user: _User) -> VerifiedToken:
        manage_url = f"{self._web}/settings/applications"
        return _verify_scopes(
            user,
            TokenKind.GITHUB_OAUTH_APP,
            manage_url,
            lambda missing: (
                f"The GitHub login does not grant {' and '.join(missing)}. Connect with GitHub again and "
                f"approve all the access requested; {manage_url} lists the applications you authorised."
            ),
        )

    async def _verify_app_user(
        self, http: HostHTTP, user: _User, installation_id: str | None
    ) -> VerifiedToken:
        installations = await self._user_installations(http)
        login = user.account.login
        if installation_id is None:
            chosen = installations[0] if installations else None
        else:
            chosen = next((i for i in installations if i.id == installation_id.strip()), None)
        if chosen is None:
            if installation_id is None:
                message = (
                    f"The GitHub App is not installed on any account {login} can access. Connect with GitHub "
                    "again and install it (an organisation owner may have to approve the installation first)."
                )
            else:
                # A forged or stale installation_id, or one on an account this user cannot see.
                message = (
                    f"GitHub does not confirm that installation for {login}: it is not one {login} can "
                    "access. Start again with 'Connect with GitHub'."
                )
            raise MissingPermissionsError(message, missing=["installation"], granted=[])
        missing = [name for name in REQUIRED_FINE_GRAINED_PERMISSIONS if name not in chosen.permissions]
        if missing:
            raise MissingPermissionsError(
                f"The GitHub App installation on {chosen.account} lacks permissions the service needs: "
                f"{_in_words(missing)}. The app's owner must request them, and {chosen.account} must "
                f"accept them at {chosen.html_url}.",
                missing=missing,
                granted=list(chosen.permissions),
            )
        # The token reaches every installation of this app the user can access, so the picker lists
        # them all; the one just installed comes first and is where the user widens access.
        ordered = [chosen, *(i for i in installations if i is not chosen)]
        every_repository = all(i.repository_selection == "all" for i in ordered)
        return VerifiedToken(
            token_kind=TokenKind.GITHUB_APP,
            account=user.account,
            repository_access=RepositoryAccess.ALL if every_repository else RepositoryAccess.SELECTED,
            granted_permissions=chosen.permissions,
            expires_at=user.expires_at,
            manage_access_url=chosen.html_url,
            resource=TokenResource(kind="installations", ids=tuple(i.id for i in ordered)),
        )

    async def _user_installations(self, http: HostHTTP) -> list[_Installation]:
        """``GET /user/installations``: this app's installations the token's user can access."""
        url = f"{self._api}/user/installations"
        params: dict[str, str | int] | None = {"per_page": 100}
        found: list[_Installation] = []
        for _ in range(MAX_REPOSITORY_PAGES):
            response = await http.get(url, params=params)
            if response.status_code in (401, 403):
                raise InvalidTokenError(REVOKED_MESSAGE)
            if response.status_code != 200:
                raise self._unexpected(response.status_code, "listing the app's installations")
            body = json_body(response, self.endpoint.host)
            items = body.get("installations") if isinstance(body, dict) else None
            if not isinstance(items, list):
                raise ProviderUnavailableError(
                    f"{self.endpoint.host} answered with an unexpected installation list; try again later."
                )
            found.extend(i for i in (self._parse_installation(item) for item in items) if i is not None)
            next_url = parse_link_header(response.headers.get("link")).get("next")
            if next_url is None or not next_url.startswith(f"{self._api}/"):
                break
            url, params = next_url, None
        return found

    def _parse_installation(self, item: Any) -> _Installation | None:
        if not isinstance(item, dict) or not _is_int(item.get("id")):
            return None
        if item.get("suspended_at"):
            return None  # a suspended installation grants nothing
        account = item.get("account")
        login = account.get("login") if isinstance(account, dict) else None
        installation_id = str(item["id"])
        html_url = _str_or_none(item.get("html_url"))
        if not html_url or not html_url.startswith(f"{self._web}/"):
            # Shown to the user as a link: only ever one on this GitHub.
            html_url = f"{self._web}/settings/installations/{installation_id}"
        return _Installation(
            id=installation_id,
            account=login if isinstance(login, str) else "this account",
            repository_selection="all" if item.get("repository_selection") == "all" else "selected",
            permissions=_installation_permissions(item.get("permissions")),
            html_url=html_url,
        )

    # --- repositories and branches (the picker; see github_repositories) ---------------------------

    # GitHub has no name search on /user/repos: the service searches the cached full list.
    server_side_search = False

    async def list_repositories(
        self,
        token: str,
        integration: Integration,
        *,
        search: str | None = None,
        previous: Listing | None = None,
    ) -> Listing:
        """Every repository ``integration`` reaches, revalidating ``previous`` pages by ETag.

        ``search`` is ignored (see ``server_side_search``). Raises ``NeedsReconnectError`` (401 / 403),
        ``RateLimitedError`` or ``ProviderUnavailableError``.
        """
        return await github_repositories.list_repositories(
            self._http(token), self._api, integration, previous
        )

    async def list_branches(
        self, token: str, integration: Integration, repository_id: str, first: int
    ) -> list[Branch]:
        """The first ``first`` branches of the repository ``repository_id`` (its full name)."""
        return await github_repositories.list_branches(self._http(token), self._api, repository_id, first)

    # --- GET /user -------------------------------------------------------------------------------

    async def _get_user(self, http: HostHTTP, token: str) -> _User:
        response = await http.get(f"{self._api}/user")
        status = response.status_code
        if status == 401:
            raise InvalidTokenError(REVOKED_MESSAGE)
        if status == 403:  # a rate-limit 403 was already raised by HostHTTP
            raise InvalidTokenError(_refusal_message(response, token))
        if status != 200:  # 3xx (never followed), or a wrong GitHub Enterprise API address
            raise self._unexpected(status, "reading the token's user")
        body = json_body(response, self.endpoint.host)
        if not (isinstance(body, dict) and _is_int(body.get("id")) and isinstance(body.get("login"), str)):
            raise ProviderUnavailableError(
                f"{self.endpoint.host} answered with an unexpected user record; try again later."
            )
        account = GitAccount(
            id=str(body["id"]),
            login=body["login"],
            name=_str_or_none(body.get("name")),
            avatar_url=_str_or_none(body.get("avatar_url")),
            url=_str_or_none(body.get("html_url")),
        )
        scopes_header = response.headers.get("x-oauth-scopes")
        return _User(
            account=account,
            scopes=None if scopes_header is None else _split_scopes(scopes_header),
            expires_at=token_expiration(response.headers),
            public_repos=_int_or_none(body.get("public_repos")),
            owned_private_repos=_int_or_none(body.get("owned_private_repos")),
        )

    # --- classic tokens --------------------------------------------------------------------------

    def _verify_classic(self, user: _User) -> VerifiedToken:
        manage_url = f"{self._web}/settings/tokens"
        return _verify_scopes(
            user,
            TokenKind.GITHUB_CLASSIC,
            manage_url,
            lambda missing: (
                f"This classic token lacks the scope{'s' if len(missing) > 1 else ''} "
                f"{' and '.join(missing)}. Edit the token at {manage_url} and tick "
                f"{' and '.join(REQUIRED_CLASSIC_SCOPES)}, then paste it again."
            ),
        )

    # --- fine-grained tokens ---------------------------------------------------------------------

    async def _verify_fine_grained(self, http: HostHTTP, user: _User) -> VerifiedToken:
        manage_url = f"{self._web}/settings/personal-access-tokens"
        repos, complete = await self._list_token_repositories(http, user)
        if not repos:
            raise MissingPermissionsError(
                "This fine-grained token does not cover any repository. Edit it at "
                f"{manage_url}: under 'Repository access' choose 'All repositories' or select the "
                "repositories to deploy, and set Administration, Commit statuses, Contents and "
                "Webhooks to 'Read and write'.",
                missing=list(REQUIRED_FINE_GRAINED_PERMISSIONS),
                granted=[],
            )
        probe_repo = _pick_probe_repository(repos)
        outcomes = await self._probe_permissions(http, probe_repo)
        granted = _names_with(outcomes, _Outcome.GRANTED)
        missing = _names_with(outcomes, _Outcome.MISSING)
        unverified = _names_with(outcomes, _Outcome.UNVERIFIED, _Outcome.UNREACHABLE)
        if all(outcome is _Outcome.UNREACHABLE for outcome in outcomes.values()):
            # Nothing could be checked at all: accepting the token would be a guess.
            raise ProviderUnavailableError(
                f"{self.endpoint.host} is having trouble, so the token's permissions could not be "
                "checked; try again later."
            )
        if missing:
            raise MissingPermissionsError(
                _missing_permissions_message(missing, unverified, probe_repo, manage_url),
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

    async def _list_token_repositories(self, http: HostHTTP, user: _User) -> tuple[list[_Repo], bool]:
        """The repositories the token covers, and whether the list is complete.

        Further pages are only needed to tell "All repositories" from "Only select repositories"
        (see ``_repository_access``); without ``owned_private_repos`` that cannot be decided, so
        one page is enough to pick a probe repository.
        """
        expected = _owned_repository_count(user)
        url: str = f"{self._api}/user/repos"
        params: dict[str, str | int] | None = {"per_page": 100}
        repos: list[_Repo] = []
        for _ in range(MAX_REPOSITORY_PAGES):
            response = await http.get(url, params=params)
            if response.status_code == 401:
                raise InvalidTokenError(REVOKED_MESSAGE)
            if response.status_code == 403:
                # Listing needs no permission at all: a refusal here is about the token itself
                # (e.g. an organisation's SSO or approval policy). GitHub's words are not repeated
                # because the token is not at hand to check them against.
                raise InvalidTokenError(
                    "GitHub refused to list the repositories of this token (HTTP 403). Check that it is "
                    "still valid and allowed by the organisation that owns the repositories."
                )
            if response.status_code != 200:
                raise self._unexpected(response.status_code, "listing the token's repositories")
            body = json_body(response, self.endpoint.host)
            if not isinstance(body, list):
                raise ProviderUnavailableError(
                    f"{self.endpoint.host} answered with an unexpected repository list; try again later."
                )
            repos.extend(repo for repo in map(_parse_repo, body) if repo is not None)
            next_url = parse_link_header(response.headers.get("link")).get("next")
            if next_url is None:
                return repos, True
            if expected is None or _owned_by(repos, user) >= expected:
                return repos, False  # more pages would not change the answer
            if not next_url.startswith(f"{self._api}/"):
                # The Authorization header goes wherever we send it: stay on this API.
                logger.warning("github: ignoring a Link rel=next outside the API base")
                return repos, False
            url, params = next_url, None  # the next link already carries per_page and page
        return repos, False

    async def _probe_permissions(self, http: HostHTTP, repo: _Repo) -> dict[str, _Outcome]:
        """Probe the eight required permissions on ``repo`` concurrently; nothing is changed."""
        base = f"{self._api}/repos/{_segment(repo.owner)}/{_segment(repo.name)}"
        branch = repo.default_branch
        # The branch list is the Contents read probe and usually also names the default branch's head
        # commit, which the statuses write probe needs: one request serves both.
        branch_list = asyncio.ensure_future(http.get(f"{base}/branches", params={"per_page": 100}))
        probes: dict[str, Awaitable[_Outcome]] = {
            "administration:read": self._read_protection(http, base, branch),
            "administration:write": self._write(http, "PATCH", base, {"has_issues": "not-a-boolean"}),
            "statuses:read": (
                self._read(http.get(f"{base}/commits/{_segment(branch)}/statuses"))
                if branch
                else _unverified()
            ),
            "statuses:write": self._write_status(http, base, branch, branch_list),
            "contents:read": self._read(branch_list),
            "contents:write": self._write(http, "PUT", f"{base}/contents/{PROBE_FILE_PATH}", {}),
            "webhooks:read": self._read(http.get(f"{base}/hooks")),
            "webhooks:write": self._write(http, "POST", f"{base}/hooks", {"config": "not-an-object"}),
        }
        try:
            results = await asyncio.gather(*probes.values(), return_exceptions=True)
        finally:
            if not branch_list.done():
                branch_list.cancel()
        outcomes: dict[str, _Outcome] = {}
        errors: list[BaseException] = []
        for name, result in zip(probes, results, strict=True):
            if isinstance(result, BaseException):
                errors.append(result)
            else:
                outcomes[name] = result
        if errors:
            # A rate limit says how long to wait, so it wins over any other failure.
            raise next((e for e in errors if isinstance(e, RateLimitedError)), errors[0])
        for name, outcome in outcomes.items():
            if outcome is not _Outcome.GRANTED:
                logger.info("github: permission probe %s on %s: %s", name, repo.full_name, outcome.value)
        return outcomes

    async def _read(self, request: Awaitable[httpx.Response]) -> _Outcome:
        response = await _unless_unreachable(request)
        if response is None:
            return _Outcome.UNREACHABLE
        if response.is_success:
            return _Outcome.GRANTED
        return _classify_refusal(response)

    async def _read_protection(self, http: HostHTTP, base: str, branch: str | None) -> _Outcome:
        if not branch:
            return _Outcome.UNVERIFIED
        response = await _unless_unreachable(http.get(f"{base}/branches/{_segment(branch)}/protection"))
        if response is None:
            return _Outcome.UNREACHABLE
        if response.is_success:
            return _Outcome.GRANTED
        # Only a token that may read the settings learns that the branch has no protection.
        if response.status_code == 404 and _message(response).lower() == "branch not protected":
            return _Outcome.GRANTED
        return _classify_refusal(response)

    async def _write(self, http: HostHTTP, method: str, url: str, invalid_body: Any) -> _Outcome:
        # The body is deliberately invalid: GitHub checks authorisation first (403), then validates
        # (422), so nothing is ever changed. That order is [unverified] in the docs, hence the
        # "unverified" outcome for any other answer.
        response = await _unless_unreachable(http.send(method, url, json_body=invalid_body))
        if response is None:
            return _Outcome.UNREACHABLE
        if response.status_code == 422:
            return _Outcome.GRANTED
        if response.is_success:
            logger.warning(
                "github: write probe %s %s succeeded although its body is invalid", method, _path_of(url)
            )
            return _Outcome.GRANTED
        return _classify_refusal(response)

    async def _write_status(
        self, http: HostHTTP, base: str, branch: str | None, branch_list: Awaitable[httpx.Response]
    ) -> _Outcome:
        if not branch:
            return _Outcome.UNVERIFIED
        listing = await _unless_unreachable(branch_list)
        if listing is None:
            return _Outcome.UNREACHABLE
        sha = await self._head_sha(http, base, branch, listing)
        if sha is None:
            return _Outcome.UNVERIFIED  # no commit to address: the probe cannot be sent
        return await self._write(http, "POST", f"{base}/statuses/{sha}", {"state": "not-a-state"})

    async def _head_sha(self, http: HostHTTP, base: str, branch: str, listing: httpx.Response) -> str | None:
        """The head commit of ``branch``, preferably from the branch list already fetched."""
        if listing.status_code != 200:
            return None  # the single-branch endpoint needs the same (Contents read) access
        sha = _sha_from_branch_list(listing, branch)
        if sha is not None or "next" not in parse_link_header(listing.headers.get("link")):
            return sha
        # More than one page of branches and the default one is not on the first: ask for it.
        response = await _unless_unreachable(http.get(f"{base}/branches/{_segment(branch)}"))
        if response is None or response.status_code != 200:
            return None
        try:
            body = response.json()
        except ValueError:
            return None
        commit = body.get("commit") if isinstance(body, dict) else None
        return _valid_sha(commit.get("sha") if isinstance(commit, dict) else None)

    def _unexpected(self, status: int, doing: str) -> ProviderUnavailableError:
        return ProviderUnavailableError(
            f"{self.endpoint.host} answered HTTP {status} while {doing}; check the GitHub address or "
            "try again later."
        )


# --- token sanity and kind ---------------------------------------------------------------------


def _sane_token(token: str) -> str:
    """The token without surrounding whitespace, or ``InvalidTokenError`` before any request."""
    token = token.strip()
    if not token:
        raise InvalidTokenError("Paste a GitHub personal access token.")
    if len(token) > MAX_TOKEN_LENGTH:
        raise InvalidTokenError(
            f"This is longer than any GitHub token (at most {MAX_TOKEN_LENGTH} characters): "
            "paste only the token."
        )
    if not _TOKEN_CHARACTERS.fullmatch(token):
        # Also keeps anything odd (newlines, non-ASCII) out of the Authorization header.
        raise InvalidTokenError(
            "This does not look like a GitHub token: tokens contain only letters, digits and "
            "underscores. Copy it again from GitHub."
        )
    return token


def _kind_from_prefix(token: str) -> TokenKind | None:
    """Classic or fine-grained by prefix; None when the prefix says nothing (legacy tokens)."""
    if token.startswith("ghp_"):
        return TokenKind.GITHUB_CLASSIC
    if token.startswith("github_pat_"):
        return TokenKind.GITHUB_FINE_GRAINED
    if token.startswith(_LOGIN_TOKEN_PREFIXES):
        raise InvalidTokenError(
            "This token comes from an OAuth or GitHub App sign-in. Such access is connected with "
            "'Connect with GitHub'; to connect with a token, paste a personal access token "
            "(classic or fine-grained) instead."
        )
    return None


def _refusal_message(response: httpx.Response, token: str) -> str:
    """GitHub's reason for a 403 on /user when it is safe to show, else a generic sentence."""
    message = _message(response).strip()
    safe = (
        0 < len(message) <= 300
        and message.isprintable()
        and token not in message
        and not _CREDENTIAL_LIKE.search(message)
    )
    if safe:
        return f"GitHub refused this token: {message}"
    return (
        "GitHub refused this token (HTTP 403). Check that it is still valid and allowed by your organisation."
    )


# --- response helpers --------------------------------------------------------------------------


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
    """403 for a missing permission means missing; anything else proves nothing."""
    if response.status_code != 403:
        return _Outcome.UNVERIFIED  # 404, 409, a redirect, ...
    message = _message(response).lower()
    # Other 403s name another cause (an archived repository, branch protection needing a paid plan
    # on a private repository, SSO enforcement); those say nothing about the token's grants.
    if not message or _NOT_ACCESSIBLE in message or "x-accepted-github-permissions" in response.headers:
        return _Outcome.MISSING
    return _Outcome.UNVERIFIED


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    message = body.get("message") if isinstance(body, dict) else None
    return message if isinstance(message, str) else ""


def _split_scopes(header: str) -> tuple[str, ...]:
    return tuple(scope.strip() for scope in header.split(",") if scope.strip())


def token_expiration(headers: httpx.Headers) -> datetime | None:
    """When the token expires, from ``GitHub-Authentication-Token-Expiration``, as an aware UTC datetime.

    The docs show ``2026-12-31 10:00:00 UTC`` (format [unverified]); a 2024 recording has that form
    and ``2025-09-05 17:55:53 +0500`` has been reported, so ISO forms and offsets are accepted too.
    """
    value = headers.get("github-authentication-token-expiration")
    expires_at = _parse_timestamp(value) if value else None
    if expires_at is None:
        return None
    # GitHub has been seen sending the time of the request instead of the expiry for fine-grained
    # tokens (google/go-github#3708). A token that has just worked has not expired, so a value at or
    # before the answer's own Date is that glitch, not an expiry.
    answered_at = _parse_http_date(headers.get("date")) or datetime.now(UTC)
    if expires_at <= answered_at + timedelta(minutes=1):
        logger.info("github: ignoring a token expiry that is not in the future")
        return None
    return expires_at


def _parse_timestamp(value: str) -> datetime | None:
    text = value.strip()
    for zone in (" UTC", " GMT", "UTC", "GMT"):
        if text.upper().endswith(zone):
            text = text[: -len(zone)].strip() + "+00:00"
            break
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)  # GitHub states UTC
    return parsed.astimezone(UTC)


def _parse_http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# --- repositories ------------------------------------------------------------------------------


def _parse_repo(item: Any) -> _Repo | None:
    if not isinstance(item, dict):
        return None
    owner = item.get("owner")
    name = item.get("name")
    if not isinstance(owner, dict) or not isinstance(owner.get("login"), str) or not isinstance(name, str):
        return None
    permissions = item.get("permissions")
    return _Repo(
        owner=owner["login"],
        name=name,
        owner_id=owner["id"] if _is_int(owner.get("id")) else None,
        default_branch=_str_or_none(item.get("default_branch")) or None,
        admin=isinstance(permissions, dict) and permissions.get("admin") is True,
        private=item.get("private") is True,
        archived=item.get("archived") is True,
    )


def _pick_probe_repository(repos: Sequence[_Repo]) -> _Repo:
    """Where permissions are probed: a repository the user administers, else the first one.

    Archived repositories are read-only (every write answers 403) and branch protection of a
    private repository may need a paid plan (403), so among equals a live public one is preferred.
    """
    live = [repo for repo in repos if not repo.archived] or list(repos)
    admin = [repo for repo in live if repo.admin]
    if not admin:
        return live[0]
    return next((repo for repo in admin if not repo.private), admin[0])


def _owned_repository_count(user: _User) -> int | None:
    if user.owned_private_repos is None or user.public_repos is None:
        return None
    return user.public_repos + user.owned_private_repos


def _owned_by(repos: Sequence[_Repo], user: _User) -> int:
    """How many of ``repos`` belong to the user (by id, which survives renames; else by login)."""
    login = user.account.login.casefold()
    return sum(
        1
        for repo in repos
        if (str(repo.owner_id) == user.account.id)
        or (repo.owner_id is None and repo.owner.casefold() == login)
    )


def _repository_access(repos: Sequence[_Repo], complete: bool, user: _User) -> RepositoryAccess:
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


def _sha_from_branch_list(response: httpx.Response, branch: str) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, list):
        return None
    for item in body:
        if isinstance(item, dict) and item.get("name") == branch:
            commit = item.get("commit")
            return _valid_sha(commit.get("sha") if isinstance(commit, dict) else None)
    return None


def _valid_sha(value: Any) -> str | None:
    # The sha becomes part of a URL path: accept nothing but a commit id.
    return value if isinstance(value, str) and _COMMIT_SHA.fullmatch(value) else None


# --- GitHub App installations ------------------------------------------------------------------

# Installation permission names as the API spells them, in the words of the fine-grained vocabulary.
_INSTALLATION_PERMISSION_NAMES: Mapping[str, str] = {"repository_hooks": "webhooks"}


def _installation_permissions(value: Any) -> tuple[str, ...]:
    """``{"contents": "write", "repository_hooks": "write"}`` → ``("contents:read", "contents:write", ...)``.

    Write includes read, as on GitHub's settings pages; the required ones come first.
    """
    if not isinstance(value, dict):
        return ()
    names: set[str] = set()
    for raw_name, level in value.items():
        if not isinstance(raw_name, str) or level not in ("read", "write", "admin"):
            continue
        name = _INSTALLATION_PERMISSION_NAMES.get(raw_name, raw_name)
        names.add(f"{name}:read")
        if level in ("write", "admin"):
            names.add(f"{name}:write")
    required = [name for name in REQUIRED_FINE_GRAINED_PERMISSIONS if name in names]
    return (*required, *sorted(names - set(required)))


# --- messages and small helpers ----------------------------------------------------------------


def _names_with(outcomes: Mapping[str, _Outcome], *wanted: _Outcome) -> list[str]:
    return [name for name in REQUIRED_FINE_GRAINED_PERMISSIONS if outcomes.get(name) in wanted]


def _in_words(names: Sequence[str]) -> str:
    """Permission names in the words of GitHub's token page.

    ``statuses:read, statuses:write, webhooks:write`` → "Commit statuses: read and write; Webhooks: write".
    """
    parts = []
    for area, label in PERMISSION_AREAS.items():
        levels = [level for level in ("read", "write") if f"{area}:{level}" in names]
        if levels:
            parts.append(f"{label}: {' and '.join(levels)}")
    return "; ".join(parts)


def _missing_permissions_message(
    missing: Sequence[str], unverified: Sequence[str], repo: _Repo, manage_url: str
) -> str:
    message = (
        f"This fine-grained token lacks permissions the service needs (checked on {repo.full_name}): "
        f"{_in_words(missing)}. Edit the token at {manage_url} and set Administration, Commit statuses, "
        "Contents and Webhooks to 'Read and write'."
    )
    if unverified:
        message += f" Could not be checked: {_in_words(unverified)}."
    return message


def _segment(value: str | None) -> str:
    # Owner, repository and branch names go into a path: encode everything, "/" included (as octokit does).
    return quote(value or "", safe="")


def _path_of(url: str) -> str:
    return httpx.URL(url).path


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_or_none(value: Any) -> int | None:
    return value if _is_int(value) else None


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None
