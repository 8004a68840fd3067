"""Checking a GitLab access token (personal, group, project or OAuth) before it is stored.

``TokenCheck.run`` finds out what the token is, whether it carries the scopes the product needs
(``api``, ``read_repository``, ``write_repository``) and whether its user holds the Maintainer role or
higher somewhere (``app.hosts.gitlab.roles``). It only reads: nothing is changed at the host. The
first answer also decides whether the address is GitLab at all.

Every request goes through ``HostHTTP`` (bounded retries of GETs, rate limits, no redirects). The
token travels only in a request header; it is never part of a URL, a message or a log line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from app.domain.errors import (
    HostNotAllowedError,
    InvalidTokenError,
    MissingPermissionsError,
    ProviderUnavailableError,
)
from app.domain.models import GitAccount, RepositoryAccess, TokenKind, TokenResource, VerifiedToken
from app.domain.urls import checked_link, link_on_host
from app.hosts.gitlab import messages
from app.hosts.gitlab.constants import GUEST, MAINTAINER, MAX_TOKEN_LENGTH, REQUIRED_SCOPES
from app.hosts.gitlab.roles import (
    Membership,
    access_level,
    group_membership,
    highest_level,
    insufficient_role,
    pick_resource,
    project_membership,
)
from app.net.client import HostHTTP, json_body, parse_json

# Group and project access tokens belong to bot users named ``group_{id}_bot_…`` / ``project_{id}_bot_…``
# (older instances: without the random suffix). Other bots with tokens are service accounts
# (``service_account_…``, ``service_account_group_{id}_…``, or a name chosen at creation): their
# tokens are personal access tokens of that bot user.
_BOT_NAME = re.compile(r"^(?P<kind>group|project)_(?P<id>\d+)_bot")

# A token is printable ASCII without spaces: anything else was copied with surrounding text.
_TOKEN_CHARS = re.compile(r"^[\x21-\x7e]+$")


@dataclass(frozen=True)
class _TokenInfo:
    """What the host says about the token itself; ``scopes`` is None when the host cannot tell (< 15.5)."""

    scopes: tuple[str, ...] | None
    expires_at: datetime | None


class TokenCheck:
    """One check of one token against one GitLab instance (``http`` carries the token)."""

    def __init__(self, http: HostHTTP, api_url: str, web_url: str) -> None:
        self._http = http
        self._host = http.host
        self._api = api_url.rstrip("/")
        self._web = web_url.rstrip("/")

    async def run(self, *, oauth: bool) -> VerifiedToken:
        """Check the token against the instance and describe it, without changing anything there.

        Raises ``InvalidTokenError`` (malformed, unknown, expired, revoked), ``MissingPermissionsError``
        (scopes), ``InsufficientRoleError`` (below Maintainer), ``HostNotAllowedError`` (a redirect, or
        a host that is not GitLab) and lets ``ProviderUnavailableError`` / ``RateLimitedError`` from
        ``HostHTTP`` propagate.
        """
        info = await (self._oauth_token_info() if oauth else self._token_info())
        if info.scopes is not None:
            require_scopes(info.scopes)
        account = await self._user(scopes_known=info.scopes is not None)

        token_kind, bot_id = (TokenKind.GITLAB_OAUTH, None) if oauth else kind_from_user(account)
        # The associations endpoint exists from 17.4 and refuses every token that is not a personal
        # access token (GitLab answers 400 "requires token type to be a personal access token"), so
        # OAuth tokens and instances older than 15.5 (no /self either) go straight to the fallback.
        use_associations = not oauth and info.scopes is not None
        memberships = await self._maintainer_memberships(token_kind, use_associations=use_associations)
        resource, manage_url = await self._resource(token_kind, bot_id, memberships, bot=account.bot)
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

    async def _get(self, url: str, params: Mapping[str, str | int] | None = None) -> httpx.Response:
        """GET with the answers every call treats alike: a redirect, and a token GitLab refuses."""
        response = await self._http.get(url, params=params)
        if 300 <= response.status_code < 400 and response.status_code != 304:
            raise HostNotAllowedError(messages.redirected(self._host), host=self._host)
        if response.status_code == 401:
            raise InvalidTokenError(messages.NOT_ACCEPTED)
        return response

    async def _get_json(self, url: str, params: Mapping[str, str | int] | None = None) -> Any:
        """GET a resource that must exist once the host is known to be GitLab."""
        response = await self._get(url, params)
        if response.status_code != 200:
            raise self._unexpected(response)
        return json_body(response, self._host)

    def _expect_gitlab_json(self, response: httpx.Response) -> dict[str, Any]:
        """The first answer decides whether this is GitLab at all: a JSON object, on 200 or as one of
        GitLab's 404s. An HTML page (sign-in page, proxy error, another product) is not.

        GitLab's 404s: ``{"message": "404 ... Not Found"}`` for a missing resource, and
        ``{"error": "404 Not Found"}`` for a route the instance does not have (``route :any, '*path'``
        → ``error!('404 Not Found', 404)`` in lib/api/api.rb), e.g. ``/personal_access_tokens/self``
        on an instance older than 15.5.
        """
        body = _json_or_none(response)
        status = response.status_code
        if status == 404 and isinstance(body, dict) and _gitlab_404(body):
            return body
        if status == 200 and isinstance(body, dict):
            return body
        if status == 200 and body is None and "json" in response.headers.get("content-type", "").lower():
            # Announced as JSON but unreadable: a garbled answer (a proxy, a cut connection) of a host
            # that may well be GitLab, not another product. Telling the user to check the address
            # (of gitlab.com, even) would be wrong: it may pass.
            json_body(response, self._host)  # raises ProviderUnavailableError
        if status in (200, 404) or body is None:
            raise self._not_gitlab()
        raise self._unexpected(response)

    async def _token_info(self) -> _TokenInfo:
        """``GET /personal_access_tokens/self`` (15.5+): scopes, state and expiry of the token."""
        response = await self._get(f"{self._api}/personal_access_tokens/self")
        body = self._expect_gitlab_json(response)
        if response.status_code == 404:
            # GitLab's own JSON 404: an instance older than 15.5 that cannot describe a token.
            return _TokenInfo(scopes=None, expires_at=None)
        if not isinstance(body.get("scopes"), list):
            raise self._not_gitlab()
        if body.get("revoked") is True:
            raise InvalidTokenError(messages.REVOKED)
        if body.get("active") is False:
            raise InvalidTokenError(messages.INACTIVE)
        return _TokenInfo(scopes=_strings(body["scopes"]), expires_at=_parse_expiry(body.get("expires_at")))

    async def _oauth_token_info(self) -> _TokenInfo:
        """``GET {web}/oauth/token/info`` (Doorkeeper): ``scope`` (list) and ``expires_in_seconds``."""
        response = await self._get(f"{self._web}/oauth/token/info")
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

    async def _user(self, *, scopes_known: bool) -> GitAccount:
        """``GET /user``: the account behind the token (for group/project tokens, their bot user)."""
        response = await self._get(f"{self._api}/user")
        if response.status_code == 403 and not scopes_known:
            # Only reachable on instances older than 15.5, where the scopes could not be read first:
            # GitLab answers 403 insufficient_scope to a token that may not read the API.
            raise MissingPermissionsError(
                messages.NO_API_ACCESS,
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
            # Links must be http(s), the profile on this instance (the URL rule, app.domain.urls).
            avatar_url=checked_link(body.get("avatar_url")),
            url=link_on_host(body.get("web_url"), self._web, str(body["username"])),
            bot=bool(body.get("bot")),
        )

    # -- role ------------------------------------------------------------------------------------

    async def _maintainer_memberships(self, kind: TokenKind, *, use_associations: bool) -> list[Membership]:
        """Groups and projects where the token's user is Maintainer or higher; raises when there are none."""
        memberships = await self._associations(MAINTAINER) if use_associations else None
        if memberships is not None:
            if memberships:
                return memberships
            # Ask again only to name the role held. At Guest, not without a level: unfiltered, the
            # endpoint lists every group and project the user can *see* (on gitlab.com, all public
            # ones), which is slow and says nothing about a role. Only the first 100 of each are read.
            highest = highest_level(await self._associations(GUEST) or [])
            raise insufficient_role(kind, highest)
        # Fallback for instances older than 17.4 (and OAuth tokens). /projects?membership=true and
        # /groups filter by the user's own access level (inherited from groups included) but, with
        # ``simple=true``, do not say which level it is: so first ask only whether any project or group
        # reaches Maintainer (per_page=1, cheap); only when none does, list the projects with their
        # ``permissions`` (project_access / group_access, either null when inherited) to name the role.
        memberships = await self._legacy_memberships()
        if memberships:
            return memberships
        raise insufficient_role(kind, await self._legacy_highest_level())

    async def _associations(self, min_level: int) -> list[Membership] | None:
        """``/personal_access_tokens/self/associations`` (17.4+); None when the instance lacks it."""
        response = await self._get(
            f"{self._api}/personal_access_tokens/self/associations",
            {"min_access_level": min_level, "per_page": 100},
        )
        # 404: older than 17.4. 400: the endpoint refuses this kind of token. Both: use the fallback.
        if response.status_code in (400, 404):
            return None
        if response.status_code != 200:
            raise self._unexpected(response)
        body = json_body(response, self._host)
        if not isinstance(body, dict):
            raise self._unexpected(response)
        groups = [group_membership(g, self._web) for g in _dicts(body.get("groups"))]
        projects = [project_membership(p) for p in _dicts(body.get("projects"))]
        return groups + projects

    async def _legacy_memberships(self) -> list[Membership]:
        """Maintainer-or-higher memberships through /projects and /groups (any GitLab version)."""
        projects = await self._get_json(
            f"{self._api}/projects",
            {"membership": "true", "min_access_level": MAINTAINER, "simple": "true", "per_page": 1},
        )
        found = [project_membership(p) for p in _dicts(projects)]
        if found:
            return found
        groups = await self._get_json(f"{self._api}/groups", {"min_access_level": MAINTAINER, "per_page": 1})
        return [group_membership(g, self._web) for g in _dicts(groups)] + found

    async def _legacy_highest_level(self) -> int | None:
        """The highest role in the user's projects (first 100), from ``permissions`` of each project."""
        projects = await self._get_json(f"{self._api}/projects", {"membership": "true", "per_page": 100})
        levels = []
        for project in _dicts(projects):
            permissions = project.get("permissions")
            if not isinstance(permissions, dict):
                continue
            # Either side may be null when the access is inherited from a group: take the maximum.
            for side in ("project_access", "group_access"):
                access = permissions.get(side)
                if isinstance(access, dict):
                    levels.append(access_level(access.get("access_level")))
        return max((level for level in levels if level is not None), default=None)

    # -- resource (group and project tokens) ------------------------------------------------------

    async def _resource(
        self, kind: TokenKind, bot_id: str | None, memberships: Sequence[Membership], *, bot: bool
    ) -> tuple[TokenResource | None, str | None]:
        """What a group/project token is bound to, and where its settings page is."""
        if kind is TokenKind.GITLAB_PERSONAL:
            # A service account's tokens are managed by whoever administers the account (its group's
            # owners or the instance's administrators), not on the signed-in user's own token page.
            return None, None if bot else f"{self._web}/-/user_settings/personal_access_tokens"
        if kind is TokenKind.GITLAB_OAUTH:
            return None, f"{self._web}/-/user_settings/applications"
        scope = "group" if kind is TokenKind.GITLAB_GROUP else "project"
        entry = pick_resource(scope, bot_id, memberships)
        if entry is None or entry.path is None or entry.web_url is None:
            # Not listed (only the first page was read, or the legacy probe saw another one) or listed
            # without its path: ask for the group / project itself.
            resource_id = bot_id or (entry.id if entry else None)
            entry = await self._fetch_resource(scope, resource_id) if resource_id else entry
        if entry is None:
            return None, None
        resource = TokenResource(kind=scope, ids=(entry.id,), path=entry.path)
        home = (
            link_on_host(entry.web_url, self._web, entry.path)
            if entry.path
            else checked_link(entry.web_url, host=self._web)
        )
        manage_url = f"{home.rstrip('/')}/-/settings/access_tokens" if home else None
        return resource, manage_url

    async def _fetch_resource(self, scope: str, resource_id: str) -> Membership | None:
        if scope == "group":
            url, params = f"{self._api}/groups/{resource_id}", {"with_projects": "false"}
        else:
            url, params = f"{self._api}/projects/{resource_id}", {}
        response = await self._get(url, params)
        if response.status_code == 404:
            return Membership(kind=scope, id=resource_id)
        if response.status_code != 200:
            raise self._unexpected(response)
        body = json_body(response, self._host)
        if not isinstance(body, dict):
            raise self._unexpected(response)
        return group_membership(body, self._web) if scope == "group" else project_membership(body)

    # -- errors ----------------------------------------------------------------------------------

    def _not_gitlab(self) -> HostNotAllowedError:
        return HostNotAllowedError(messages.not_gitlab(self._host), host=self._host)

    def _unexpected(self, response: httpx.Response) -> ProviderUnavailableError:
        return ProviderUnavailableError(messages.unexpected_answer(self._host, response.status_code))


def sanitised(token: str) -> str:
    """Refuse what cannot be a GitLab token before sending it anywhere (the prefix is not checked:
    instances can change ``glpat-``). Messages never repeat the token or any part of it."""
    token = token.strip()
    if not token:
        raise InvalidTokenError(messages.EMPTY_TOKEN)
    if len(token) > MAX_TOKEN_LENGTH:
        raise InvalidTokenError(messages.TOKEN_TOO_LONG)
    if not _TOKEN_CHARS.match(token):
        raise InvalidTokenError(messages.TOKEN_CHARACTERS)
    return token


def require_scopes(scopes: Sequence[str]) -> None:
    """``MissingPermissionsError`` naming the required scopes the token lacks."""
    missing = [scope for scope in REQUIRED_SCOPES if scope not in scopes]
    if missing:
        raise MissingPermissionsError(messages.missing_scopes(missing), missing=missing, granted=list(scopes))


def kind_from_user(account: GitAccount) -> tuple[TokenKind, str | None]:
    """Token kind and bound group/project id from the user.

    A group or project access token's bot is named after what it is bound to; any other bot is a
    service account (``"bot": true`` without the ``group_`` / ``project_`` prefix), whose tokens are
    personal access tokens of that bot, reaching whatever it is a member of.
    """
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
    return TokenKind.GITLAB_PERSONAL, None


def _gitlab_404(body: dict[str, Any]) -> bool:
    """GitLab's JSON 404: ``{"message": ...}`` (a missing resource) or ``{"error": ...}`` (no such route)."""
    return isinstance(body.get("message"), str) or isinstance(body.get("error"), str)


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
        return parse_json(response)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError are both ValueErrors
        return None


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _strings(values: Iterable[Any]) -> tuple[str, ...]:
    return tuple(str(v) for v in values)
