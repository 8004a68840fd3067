"""Checking a GitHub token before it is stored: the user behind it, its kind, scopes and installations.

- classic tokens (``ghp_``) and OAuth App logins (``gho_``) name their scopes in ``X-OAuth-Scopes``:
  one ``GET /user`` is enough (``verify_scopes``);
- GitHub App logins (``ghu_``) reach the repositories of the app's installations the user can access:
  the installation the login came back with must be among ``GET /user/installations`` and hold the
  permissions the service needs (``verify_app_login``);
- fine-grained tokens (``github_pat_``) have no scope header: ``app.hosts.github.fine_grained``.

The token only ever travels in the ``Authorization`` header: it is never part of a message, an
exception or a log line.
"""

from __future__ import annotations

import email.utils
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from app.domain.errors import InvalidTokenError, MissingPermissionsError, ProviderUnavailableError
from app.domain.models import GitAccount, RepositoryAccess, TokenKind, TokenResource, VerifiedToken
from app.domain.urls import checked_link, link_on_host
from app.hosts.github import messages
from app.hosts.github.constants import (
    CLASSIC_PREFIX,
    FINE_GRAINED_PREFIX,
    LOGIN_TOKEN_PREFIXES,
    MAX_TOKEN_LENGTH,
    MAX_VERIFICATION_PAGES,
    PER_PAGE,
    REQUIRED_CLASSIC_SCOPES,
    REQUIRED_FINE_GRAINED_PERMISSIONS,
)
from app.hosts.github.installations import PATH as INSTALLATIONS
from app.hosts.github.installations import Installation, parse_installations
from app.net.client import HostHTTP, json_body
from app.net.pagination import Paginator

logger = logging.getLogger(__name__)

_TOKEN_CHARACTERS = re.compile(r"[A-Za-z0-9_]+")


@dataclass(frozen=True)
class Session:
    """One token at one GitHub: ``http`` carries the token; URLs without a trailing slash."""

    http: HostHTTP
    api: str
    web: str

    @property
    def host(self) -> str:
        return self.http.host

    def unexpected(self, status: int, doing: str) -> ProviderUnavailableError:
        return ProviderUnavailableError(messages.unexpected_answer(self.host, status, doing))


@dataclass(frozen=True)
class User:
    """What ``GET /user`` told us about the token and its user."""

    account: GitAccount
    scopes: tuple[str, ...] | None  # None: no X-OAuth-Scopes header at all
    expires_at: datetime | None
    public_repos: int | None
    owned_private_repos: int | None


def sane_token(token: str) -> str:
    """The token without surrounding whitespace, or ``InvalidTokenError`` before any request."""
    token = token.strip()
    if not token:
        raise InvalidTokenError(messages.EMPTY_TOKEN)
    if len(token) > MAX_TOKEN_LENGTH:
        raise InvalidTokenError(messages.TOKEN_TOO_LONG)
    if not _TOKEN_CHARACTERS.fullmatch(token):
        # Also keeps anything odd (newlines, non-ASCII) out of the Authorization header.
        raise InvalidTokenError(messages.TOKEN_CHARACTERS)
    return token


def kind_from_prefix(token: str) -> TokenKind | None:
    """Classic or fine-grained by prefix; None when the prefix says nothing (legacy tokens)."""
    if token.startswith(CLASSIC_PREFIX):
        return TokenKind.GITHUB_CLASSIC
    if token.startswith(FINE_GRAINED_PREFIX):
        return TokenKind.GITHUB_FINE_GRAINED
    if token.startswith(LOGIN_TOKEN_PREFIXES):
        raise InvalidTokenError(messages.LOGIN_TOKEN_PASTED)
    return None


async def read_user(session: Session, token: str) -> User:
    """``GET /user``: the account behind the token, its scopes and its expiry."""
    response = await session.http.get(f"{session.api}/user")
    status = response.status_code
    if status == 401:
        raise InvalidTokenError(messages.REVOKED)
    if status == 403:  # a rate-limit 403 was already raised by HostHTTP
        raise InvalidTokenError(messages.refused_token(response, token))
    if status != 200:  # 3xx (never followed), or a wrong GitHub Enterprise API address
        raise session.unexpected(status, "reading the token's user")
    body = json_body(response, session.host)
    if not (isinstance(body, dict) and _is_int(body.get("id")) and isinstance(body.get("login"), str)):
        raise ProviderUnavailableError(messages.unexpected_body(session.host, "user record"))
    account = GitAccount(
        id=str(body["id"]),
        login=body["login"],
        name=_str_or_none(body.get("name")),
        # Links must be http(s), the profile on this GitHub (the URL rule, app.domain.urls).
        avatar_url=checked_link(body.get("avatar_url")),
        url=link_on_host(body.get("html_url"), session.web, body["login"]),
    )
    scopes_header = response.headers.get("x-oauth-scopes")
    return User(
        account=account,
        scopes=None if scopes_header is None else _split_scopes(scopes_header),
        expires_at=token_expiration(response.headers),
        public_repos=_int_or_none(body.get("public_repos")),
        owned_private_repos=_int_or_none(body.get("owned_private_repos")),
    )


def verify_scopes(user: User, kind: TokenKind, manage_url: str) -> VerifiedToken:
    """Classic tokens and OAuth App logins: judged by ``X-OAuth-Scopes``, never by what was requested.

    Scopes can be narrowed after the token was made (or by an organisation policy), so the header is
    read every time.
    """
    scopes = user.scopes or ()
    missing = [scope for scope in REQUIRED_CLASSIC_SCOPES if scope not in scopes]
    if missing:
        message = (
            messages.classic_scopes_missing(missing, manage_url)
            if kind is TokenKind.GITHUB_CLASSIC
            else messages.login_scopes_missing(missing, manage_url)
        )
        raise MissingPermissionsError(message, missing=missing, granted=list(scopes))
    return VerifiedToken(
        token_kind=kind,
        account=user.account,
        repository_access=RepositoryAccess.ALL,
        granted_permissions=scopes,
        expires_at=user.expires_at,
        manage_access_url=manage_url,
    )


async def verify_app_login(session: Session, user: User, installation_id: str | None) -> VerifiedToken:
    """A GitHub App user token: confirmed through the installations its user can access."""
    installations = await _user_installations(session)
    login = user.account.login
    if installation_id is None:
        chosen = installations[0] if installations else None
    else:
        chosen = next((i for i in installations if i.id == installation_id.strip()), None)
    if chosen is None:
        message = messages.no_installation(login, installation_id)
        raise MissingPermissionsError(message, missing=["installation"], granted=[])
    account = chosen.account or "this account"
    manage_url = _settings_page(chosen, session.web)
    missing = [name for name in REQUIRED_FINE_GRAINED_PERMISSIONS if name not in chosen.permissions]
    if missing:
        raise MissingPermissionsError(
            messages.installation_lacks(account, missing, manage_url),
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
        manage_access_url=manage_url,
        resource=TokenResource(kind="installations", ids=tuple(i.id for i in ordered)),
    )


async def _user_installations(session: Session) -> list[Installation]:
    """``GET /user/installations``: this app's installations the token's user can access."""

    def check(response: httpx.Response) -> None:
        if response.status_code in (401, 403):
            raise InvalidTokenError(messages.REVOKED)
        if response.status_code != 200:
            raise session.unexpected(response.status_code, "listing the app's installations")

    paginator = Paginator(session.http, session.api, check=check)
    found: list[Installation] = []
    walk = paginator.follow(
        INSTALLATIONS, {"per_page": PER_PAGE}, parse_installations, max_pages=MAX_VERIFICATION_PAGES
    )
    async for page in walk:
        found.extend(i for i in page if not i.suspended)  # a suspended installation grants nothing
    return found


def _settings_page(installation: Installation, web: str) -> str:
    # Shown to the user as a link: only ever one on this GitHub.
    return link_on_host(installation.html_url, web, f"settings/installations/{installation.id}")


# --- expiry ------------------------------------------------------------------------------------


def token_expiration(headers: httpx.Headers) -> datetime | None:
    """When the token expires, from ``GitHub-Authentication-Token-Expiration``, as an aware UTC datetime.

    The docs show ``2026-12-31 10:00:00 UTC`` (format [unverified]); a 2024 recording has that form
    and ``2025-09-05 17:55:53 +0500`` has been reported, so ISO forms and offsets are accepted too.
    """
    value = headers.get("github-authentication-token-expiration")
    expires_at = _parse_expiry(value) if value else None
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


def _parse_expiry(value: str) -> datetime | None:
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


def _split_scopes(header: str) -> tuple[str, ...]:
    return tuple(scope.strip() for scope in header.split(",") if scope.strip())


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_or_none(value: Any) -> int | None:
    return value if _is_int(value) else None


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None
