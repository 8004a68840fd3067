"""GitLab (gitlab.com or a self-managed instance): checking an access token before it is stored.

``GitLabClient.verify_token`` finds out what a pasted token is (personal, group, project or OAuth),
whether it carries the scopes the product needs (``api``, ``read_repository``, ``write_repository``)
and whether its user holds the Maintainer role or higher somewhere. It only reads: nothing is
changed at the host.

Every request goes through ``HostHTTP`` (bounded retries of GETs, rate limits, no redirects). The
token travels only in a request header; it is never part of a URL, a message or a log line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx

from app.domain.errors import (
    HostNotAllowedError,
    InsufficientRoleError,
    InvalidTokenError,
    MissingPermissionsError,
    ProviderUnavailableError,
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
from app.providers import gitlab_repositories
from app.providers.http import HostHTTP, RetryPolicy, json_body

REQUIRED_SCOPES: tuple[str, ...] = ("api", "read_repository", "write_repository")
GUEST = 10
MAINTAINER = 40
MAX_TOKEN_LENGTH = 255

# GitLab access levels. 5 and 25 are not roles a member picks in the UI but the API can report them.
ROLE_NAMES: Mapping[int, str] = {
    5: "Minimal Access",
    10: "Guest",
    15: "Planner",
    20: "Reporter",
    25: "Security Manager",
    30: "Developer",
    40: "Maintainer",
    50: "Owner",
}

NOT_ACCEPTED_MESSAGE = "GitLab did not accept this token: it is unknown, expired or revoked."

# Group and project access tokens belong to bot users named ``group_{id}_bot_…`` / ``project_{id}_bot_…``
# (older instances: without the random suffix).
_BOT_NAME = re.compile(r"^(?P<kind>group|project)_(?P<id>\d+)_bot")

# A token is printable ASCII without spaces: anything else was copied with surrounding text.
_TOKEN_CHARS = re.compile(r"^[\x21-\x7e]+$")


@dataclass(frozen=True)
class _TokenInfo:
    """What the host says about the token itself; ``scopes`` is None when the host cannot tell (< 15.5)."""

    scopes: tuple[str, ...] | None
    expires_at: datetime | None


@dataclass(frozen=True)
class _Membership:
    """A group or project the token's user belongs to; ``level`` None means "at least what was asked for"."""

    kind: str  # "group" | "project"
    id: str
    level: int | None = None
    path: str | None = None
    web_url: str | None = None
    parent_id: str | None = None


class GitLabClient:
    """A client for one GitLab instance (``endpoint``), sharing the service's ``httpx.AsyncClient``."""

    def __init__(
        self, client: httpx.AsyncClient, endpoint: HostEndpoint, *, retry: RetryPolicy | None = None
    ) -> None:
        self._client = client
        self.endpoint = endpoint
        self._retry = retry
        self._api_url = endpoint.api_url.rstrip("/")
        self._web_url = endpoint.web_url.rstrip("/")

    # ----------------------------------------------------------------------------------------------
    # Public API

    async def verify_token(self, token: str, *, oauth: bool = False) -> VerifiedToken:
        """Check ``token`` against the instance and describe it, without changing anything there.

        ``oauth=True`` for an OAuth access token (sent as ``Authorization: Bearer``); otherwise a
        personal, group or project access token (sent as ``PRIVATE-TOKEN``).

        Raises ``InvalidTokenError`` (malformed, unknown, expired, revoked), ``MissingPermissionsError``
        (scopes), ``InsufficientRoleError`` (below Maintainer), ``HostNotAllowedError`` (a redirect, or
        a host that is not GitLab) and lets ``ProviderUnavailableError`` / ``RateLimitedError`` from
        ``HostHTTP`` propagate.
        """
        token = _sanitise(token)
        http = self._http(token, oauth=oauth)

        info = await (self._oauth_token_info(http) if oauth else self._token_info(http))
        if info.scopes is not None:
            _require_scopes(info.scopes)
        account = await self._user(http, scopes_known=info.scopes is not None)

        kind, bot_id = (TokenKind.GITLAB_OAUTH, None) if oauth else _kind_from_user(account)
        # The associations endpoint exists from 17.4 and refuses every token that is not a personal
        # access token (GitLab answers 400 "requires token type to be a personal access token"), so
        # OAuth tokens and instances older than 15.5 (no /self either) go straight to the fallback.
        use_associations = not oauth and info.scopes is not None
        memberships = await self._maintainer_memberships(http, kind, use_associations=use_associations)

        # A bot whose name does not say what it is bound to: decide from its memberships.
        token_kind = kind or _kind_from_memberships(memberships)
        resource, manage_url = await self._resource(http, token_kind, bot_id, memberships)
        return VerifiedToken(
            token_kind=token_kind,
            account=account,
            repository_access=(
                RepositoryAccess.SELECTED
                if token_kind in (TokenKind.GITLAB_GROUP, TokenKind.GITLAB_PROJECT)
                else RepositoryAccess.ALL
            ),
            granted_permissions=info.scopes or (),
            unverified_permissions=REQUIRED_SCOPES if info.scopes is None else (),
            expires_at=info.expires_at,
            manage_access_url=manage_url,
            resource=resource,
        )

    # ----------------------------------------------------------------------------------------------
    # Repositories and branches (the picker; see gitlab_repositories)

    # GitLab searches names and paths itself (``search=``): one search costs a page or two, not the list.
    server_side_search = True

    async def list_repositories(
        self,
        token: str,
        integration: Integration,
        *,
        search: str | None = None,
        previous: Listing | None = None,
    ) -> Listing:
        """The projects ``integration`` reaches (matching ``search``), revalidating ``previous`` pages by ETag.

        Raises ``NeedsReconnectError`` (401 / 403 / the token's group or project gone),
        ``RateLimitedError`` or ``ProviderUnavailableError``.
        """
        http = self._http(token, oauth=integration.token_kind is TokenKind.GITLAB_OAUTH)
        return await gitlab_repositories.list_repositories(http, self._api_url, integration, search, previous)

    async def list_branches(
        self, token: str, integration: Integration, repository_id: str, first: int
    ) -> list[Branch]:
        """The first ``first`` branches of the project ``repository_id`` (its numeric id)."""
        http = self._http(token, oauth=integration.token_kind is TokenKind.GITLAB_OAUTH)
        return await gitlab_repositories.list_branches(http, self._api_url, repository_id, first)

    # ----------------------------------------------------------------------------------------------
    # Requests

    def _http(self, token: str, *, oauth: bool) -> HostHTTP:
        auth = {"Authorization": f"Bearer {token}"} if oauth else {"PRIVATE-TOKEN": token}
        return HostHTTP(
            self._client,
            self.endpoint.host,
            default_headers={"Accept": "application/json", **auth},
            retry=self._retry,
        )

    async def _get(
        self, http: HostHTTP, url: str, params: Mapping[str, str | int] | None = None
    ) -> httpx.Response:
        """GET with the answers every call treats alike: a redirect, and a token GitLab refuses."""
        response = await http.get(url, params=params)
        if 300 <= response.status_code < 400 and response.status_code != 304:
            raise HostNotAllowedError(
                f"{self.endpoint.host} redirected the request to another address (for example from http "
                "to https, or to a different path prefix). Redirects are not followed: enter the exact "
                "address GitLab is served from.",
                host=self.endpoint.host,
            )
        if response.status_code == 401:
            raise InvalidTokenError(NOT_ACCEPTED_MESSAGE)
        return response

    async def _get_json(self, http: HostHTTP, url: str, params: Mapping[str, str | int] | None = None) -> Any:
        """GET a resource that must exist once the host is known to be GitLab."""
        response = await self._get(http, url, params)
        if response.status_code != 200:
            raise self._unexpected(response)
        return json_body(response, self.endpoint.host)

    def _expect_gitlab_json(self, response: httpx.Response) -> dict[str, Any]:
        """The first answer decides whether this is GitLab at all: a JSON object, on 200 or as GitLab's
        ``{"message": ...}`` 404. An HTML page (sign-in page, proxy error, another product) is not."""
        body = _json_or_none(response)
        status = response.status_code
        if status == 404 and isinstance(body, dict) and isinstance(body.get("message"), str):
            return body
        if status == 200 and isinstance(body, dict):
            return body
        if status == 200 and body is None and "json" in response.headers.get("content-type", "").lower():
            # Announced as JSON but unreadable: a garbled answer (a proxy, a cut connection) of a host
            # that may well be GitLab, not another product. Telling the user to check the address
            # (of gitlab.com, even) would be wrong: it may pass.
            json_body(response, self.endpoint.host)  # raises ProviderUnavailableError
        if status in (200, 404) or body is None:
            raise self._not_gitlab()
        raise self._unexpected(response)

    async def _token_info(self, http: HostHTTP) -> _TokenInfo:
        """``GET /personal_access_tokens/self`` (15.5+): scopes, state and expiry of the token."""
        response = await self._get(http, f"{self._api_url}/personal_access_tokens/self")
        body = self._expect_gitlab_json(response)
        if response.status_code == 404:
            # GitLab's own JSON 404: an instance older than 15.5 that cannot describe a token.
            return _TokenInfo(scopes=None, expires_at=None)
        if not isinstance(body.get("scopes"), list):
            raise self._not_gitlab()
        if body.get("revoked") is True:
            raise InvalidTokenError("GitLab reports this token as revoked: create a new one.")
        if body.get("active") is False:
            raise InvalidTokenError("GitLab reports this token as no longer active (expired or revoked).")
        return _TokenInfo(scopes=_strings(body["scopes"]), expires_at=_parse_expiry(body.get("expires_at")))

    async def _oauth_token_info(self, http: HostHTTP) -> _TokenInfo:
        """``GET {web}/oauth/token/info`` (Doorkeeper): ``scope`` (list) and ``expires_in_seconds``."""
        response = await self._get(http, f"{self._web_url}/oauth/token/info")
        body = self._expect_gitlab_json(response)
        if response.status_code == 404:  # the instance has no OAuth token info at this address
            raise self._not_gitlab()
        # GitLab sends both ``scope`` and the older ``scopes``; a string form is tolerated too.
        raw = body.get("scope", body.get("scopes"))
        if isinstance(raw, str):
            raw = raw.split()
        if not isinstance(raw, list):
            raise self._not_gitlab()
        expires_at = None
        seconds = body.get("expires_in_seconds", body.get("expires_in"))
        if isinstance(seconds, int) and not isinstance(seconds, bool):
            expires_at = datetime.now(UTC) + timedelta(seconds=seconds)
        return _TokenInfo(scopes=_strings(raw), expires_at=expires_at)

    async def _user(self, http: HostHTTP, *, scopes_known: bool) -> GitAccount:
        """``GET /user``: the account behind the token (for group/project tokens, their bot user)."""
        response = await self._get(http, f"{self._api_url}/user")
        if response.status_code == 403 and not scopes_known:
            # Only reachable on instances older than 15.5, where the scopes could not be read first:
            # GitLab answers 403 insufficient_scope to a token that may not read the API.
            raise MissingPermissionsError(
                "This GitLab token may not use the API: create one with the scopes api, read_repository "
                "and write_repository.",
                missing=["api"],
                granted=[],
                unverified=[s for s in REQUIRED_SCOPES if s != "api"],
            )
        body = _json_or_none(response)
        if response.status_code != 200 or not isinstance(body, dict) or "username" not in body:
            # When /self answered, this is GitLab and a strange answer is trouble at the host; when it
            # did not (< 15.5 or something else), /user is the first proof that GitLab is there at all.
            raise self._unexpected(response) if scopes_known else self._not_gitlab()
        return GitAccount(
            id=str(body["id"]),
            login=str(body["username"]),
            name=body.get("name"),
            avatar_url=body.get("avatar_url"),
            url=body.get("web_url"),
            bot=bool(body.get("bot")),
        )

    # ----------------------------------------------------------------------------------------------
    # Role

    async def _maintainer_memberships(
        self, http: HostHTTP, kind: TokenKind | None, *, use_associations: bool
    ) -> list[_Membership]:
        """Groups and projects where the token's user is Maintainer or higher; raises when there are none."""
        memberships = await self._associations(http, MAINTAINER) if use_associations else None
        if memberships is not None:
            if memberships:
                return memberships
            # Ask again only to name the role held. At Guest, not without a level: unfiltered, the
            # endpoint lists every group and project the user can *see* (on gitlab.com, all public
            # ones), which is slow and says nothing about a role. Only the first 100 of each are read.
            highest = _highest_level(await self._associations(http, GUEST) or [])
            raise _insufficient_role(kind, highest)
        # Fallback for instances older than 17.4 (and OAuth tokens). /projects?membership=true and
        # /groups filter by the user's own access level (inherited from groups included) but, with
        # ``simple=true``, do not say which level it is: so first ask only whether any project or group
        # reaches Maintainer (per_page=1, cheap); only when none does, list the projects with their
        # ``permissions`` (project_access / group_access, either null when inherited) to name the role.
        memberships = await self._legacy_memberships(http, need_both=kind is None)
        if memberships:
            return memberships
        raise _insufficient_role(kind, await self._legacy_highest_level(http))

    async def _associations(self, http: HostHTTP, min_level: int) -> list[_Membership] | None:
        """``/personal_access_tokens/self/associations`` (17.4+); None when the instance lacks it."""
        response = await self._get(
            http,
            f"{self._api_url}/personal_access_tokens/self/associations",
            {"min_access_level": min_level, "per_page": 100},
        )
        # 404: older than 17.4. 400: the endpoint refuses this kind of token. Both: use the fallback.
        if response.status_code in (400, 404):
            return None
        if response.status_code != 200:
            raise self._unexpected(response)
        body = json_body(response, self.endpoint.host)
        if not isinstance(body, dict):
            raise self._unexpected(response)
        groups = [_group_membership(g, self._web_url) for g in _dicts(body.get("groups"))]
        projects = [_project_membership(p) for p in _dicts(body.get("projects"))]
        return groups + projects

    async def _legacy_memberships(self, http: HostHTTP, *, need_both: bool) -> list[_Membership]:
        """Maintainer-or-higher memberships through /projects and /groups (any GitLab version)."""
        projects = await self._get_json(
            http,
            f"{self._api_url}/projects",
            {"membership": "true", "min_access_level": MAINTAINER, "simple": "true", "per_page": 1},
        )
        found = [_project_membership(p) for p in _dicts(projects)]
        if found and not need_both:
            return found
        groups = await self._get_json(
            http, f"{self._api_url}/groups", {"min_access_level": MAINTAINER, "per_page": 1}
        )
        return [_group_membership(g, self._web_url) for g in _dicts(groups)] + found

    async def _legacy_highest_level(self, http: HostHTTP) -> int | None:
        """The highest role in the user's projects (first 100), from ``permissions`` of each project."""
        projects = await self._get_json(
            http, f"{self._api_url}/projects", {"membership": "true", "per_page": 100}
        )
        levels = []
        for project in _dicts(projects):
            permissions = project.get("permissions")
            if not isinstance(permissions, dict):
                continue
            # Either side may be null when the access is inherited from a group: take the maximum.
            for side in ("project_access", "group_access"):
                access = permissions.get(side)
                if isinstance(access, dict):
                    levels.append(_access_level(access.get("access_level")))
        return max((level for level in levels if level is not None), default=None)

    # ----------------------------------------------------------------------------------------------
    # Resource (group and project tokens)

    async def _resource(
        self, http: HostHTTP, kind: TokenKind, bot_id: str | None, memberships: Sequence[_Membership]
    ) -> tuple[TokenResource | None, str | None]:
        """What a group/project token is bound to, and where its settings page is."""
        if kind is TokenKind.GITLAB_PERSONAL:
            return None, f"{self._web_url}/-/user_settings/personal_access_tokens"
        if kind is TokenKind.GITLAB_OAUTH:
            return None, f"{self._web_url}/-/user_settings/applications"
        scope = "group" if kind is TokenKind.GITLAB_GROUP else "project"
        entry = _pick_resource(scope, bot_id, memberships)
        if entry is None or entry.path is None or entry.web_url is None:
            # Not listed (only the first page was read, or the legacy probe saw another one) or listed
            # without its path: ask for the group / project itself.
            resource_id = bot_id or (entry.id if entry else None)
            entry = await self._fetch_resource(http, scope, resource_id) if resource_id else entry
        if entry is None:
            return None, None
        resource = TokenResource(kind=scope, ids=(entry.id,), path=entry.path)
        manage_url = f"{entry.web_url.rstrip('/')}/-/settings/access_tokens" if entry.web_url else None
        return resource, manage_url

    async def _fetch_resource(self, http: HostHTTP, scope: str, resource_id: str) -> _Membership | None:
        if scope == "group":
            url, params = f"{self._api_url}/groups/{resource_id}", {"with_projects": "false"}
        else:
            url, params = f"{self._api_url}/projects/{resource_id}", {}
        response = await self._get(http, url, params)
        if response.status_code == 404:
            return _Membership(kind=scope, id=resource_id)
        if response.status_code != 200:
            raise self._unexpected(response)
        body = json_body(response, self.endpoint.host)
        if not isinstance(body, dict):
            raise self._unexpected(response)
        return _group_membership(body, self._web_url) if scope == "group" else _project_membership(body)

    # ----------------------------------------------------------------------------------------------
    # Errors

    def _not_gitlab(self) -> HostNotAllowedError:
        return HostNotAllowedError(
            f"{self.endpoint.host} does not answer like a GitLab instance: check the address, including "
            "any path prefix GitLab is served under.",
            host=self.endpoint.host,
        )

    def _unexpected(self, response: httpx.Response) -> ProviderUnavailableError:
        return ProviderUnavailableError(
            f"{self.endpoint.host} gave an unexpected answer (HTTP {response.status_code}) while the token "
            "was being checked; try again later."
        )


# --------------------------------------------------------------------------------------------------
# Pure helpers


def _sanitise(token: str) -> str:
    """Refuse what cannot be a GitLab token before sending it anywhere (the prefix is not checked:
    instances can change ``glpat-``). Messages never repeat the token or any part of it."""
    token = token.strip()
    if not token:
        raise InvalidTokenError("Paste a GitLab access token: the token is empty.")
    if len(token) > MAX_TOKEN_LENGTH:
        raise InvalidTokenError(
            f"This is longer than a GitLab token can be ({MAX_TOKEN_LENGTH} characters): copy only the token."
        )
    if not _TOKEN_CHARS.match(token):
        raise InvalidTokenError(
            "This token contains spaces or characters a GitLab token never has: copy only the token."
        )
    return token


def _require_scopes(scopes: Sequence[str]) -> None:
    missing = [scope for scope in REQUIRED_SCOPES if scope not in scopes]
    if missing:
        raise MissingPermissionsError(
            f"This GitLab token lacks the scope{'s' if len(missing) > 1 else ''} {', '.join(missing)}. "
            f"Create a token with the scopes {', '.join(REQUIRED_SCOPES)}.",
            missing=missing,
            granted=list(scopes),
        )


def _kind_from_user(account: GitAccount) -> tuple[TokenKind | None, str | None]:
    """Token kind and bound group/project id from the user; ``None`` kind for a bot named otherwise."""
    if not account.bot:
        return TokenKind.GITLAB_PERSONAL, None
    match = _BOT_NAME.match(account.login)
    if match:
        kind = TokenKind.GITLAB_GROUP if match["kind"] == "group" else TokenKind.GITLAB_PROJECT
        return kind, match["id"]
    if account.login.startswith("group_"):
        return TokenKind.GITLAB_GROUP, None
    if account.login.startswith("project_"):
        return TokenKind.GITLAB_PROJECT, None
    return None, None


def _kind_from_memberships(memberships: Sequence[_Membership]) -> TokenKind:
    """A bot of unknown naming: one project and no group is a project token, anything else a group token."""
    groups = [m for m in memberships if m.kind == "group"]
    projects = [m for m in memberships if m.kind == "project"]
    if not groups and len(projects) == 1:
        return TokenKind.GITLAB_PROJECT
    return TokenKind.GITLAB_GROUP


def _pick_resource(scope: str, bot_id: str | None, memberships: Sequence[_Membership]) -> _Membership | None:
    candidates = [m for m in memberships if m.kind == scope]
    if bot_id is not None:
        return next((m for m in candidates if m.id == bot_id), None)
    if scope == "group":
        # A group token also reaches the group's subgroups: the bound group is the one without a
        # parent among those listed.
        ids = {m.id for m in candidates}
        roots = [m for m in candidates if m.parent_id not in ids]
        candidates = roots or candidates
    return candidates[0] if candidates else None


_ROLE_SUBJECTS: Mapping[TokenKind | None, str] = {
    TokenKind.GITLAB_GROUP: "This group access token",
    TokenKind.GITLAB_PROJECT: "This project access token",
    None: "This access token",  # a bot whose name does not say what it is bound to
}


def _insufficient_role(kind: TokenKind | None, level: int | None) -> InsufficientRoleError:
    actual = _role_name(level)
    subject = _ROLE_SUBJECTS.get(kind, "The GitLab user of this token")
    if actual is None:
        message = f"{subject} is not a member of any group or project; it needs Maintainer or higher."
    else:
        message = f"{subject} has the {actual} role at most; it needs Maintainer or higher."
    return InsufficientRoleError(message, required=ROLE_NAMES[MAINTAINER], actual=actual)


def _role_name(level: int | None) -> str | None:
    """The name of a level; an unknown level is named after the highest known role below it."""
    if level is None:
        return None
    known = [value for value in ROLE_NAMES if value <= level]
    return ROLE_NAMES[max(known)] if known else None


def _highest_level(memberships: Iterable[_Membership]) -> int | None:
    return max((m.level for m in memberships if m.level is not None), default=None)


def _access_level(value: Any) -> int | None:
    """An access level as GitLab sends it: an int, or ``{"project_access_level": …, "group_access_level": …}``
    (either may be null) for projects in the associations. The maximum counts."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, dict):
        levels = [_access_level(v) for v in value.values()]
        return max((level for level in levels if level is not None), default=None)
    return None


def _group_membership(group: Mapping[str, Any], web_root: str) -> _Membership:
    web_url = _optional_str(group.get("web_url"))
    path = _optional_str(group.get("full_path")) or _group_path_from_url(web_url, web_root)
    parent = group.get("parent_id")
    return _Membership(
        kind="group",
        id=str(group.get("id")),
        level=_access_level(group.get("access_levels")),
        path=path,
        web_url=web_url,
        parent_id=str(parent) if parent is not None else None,
    )


def _project_membership(project: Mapping[str, Any]) -> _Membership:
    return _Membership(
        kind="project",
        id=str(project.get("id")),
        level=_access_level(project.get("access_levels")),
        path=_optional_str(project.get("path_with_namespace")),
        web_url=_optional_str(project.get("web_url")),
    )


def _group_path_from_url(web_url: str | None, web_root: str) -> str | None:
    """Associations list groups without ``full_path``; their ``web_url`` is ``{root}/groups/{full_path}``."""
    if not web_url:
        return None
    path = urlsplit(web_url).path
    prefix = urlsplit(web_root).path.rstrip("/") + "/groups/"
    if not path.startswith(prefix):
        return None
    return path[len(prefix) :].strip("/") or None


def _parse_expiry(value: Any) -> datetime | None:
    """``expires_at`` is a date ("2026-12-31"); GitLab tokens stop working at the start of that day, UTC."""
    if not isinstance(value, str) or not value:
        return None
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        # Tolerate a full timestamp in case an instance ever sends one.
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:  # JSONDecodeError and UnicodeDecodeError are both ValueErrors
        return None


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _strings(values: Iterable[Any]) -> tuple[str, ...]:
    return tuple(str(v) for v in values)


def _optional_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
