"""The URL rule: which links the service may hand to a frontend.

Hosts fill repositories and accounts with links (``html_url``, ``clone_url``, ``web_url``,
``avatar_url``) that a frontend renders as ``<a href>`` or ``<img src>``; a hostile or broken host
could answer ``javascript:alert(document.domain)`` or a look-alike page on another site. Every link
the service returns (``webUrl``, ``cloneUrl``, ``account.url``, ``avatarUrl``, ``manageAccessUrl``,
notice urls) passes ``checked_link``:

- it is an absolute ``http(s)`` URL with a host, without user info, whitespace, backslashes or
  control characters, ASCII, at most 2,048 characters;
- a link *into the host* (a repository, an account, a settings page) points at the integration's own
  host — same scheme, host and port, below its path — or, where the service knows the path
  (``owner/name``, the login), is rebuilt from the host and that path (``link_on_host``). Avatars may
  live on other hosts (avatars.githubusercontent.com, gravatar.com) but must be http(s) too.

Both hosts' parsers apply it; the GraphQL types apply it again to what was stored before.
"""

from __future__ import annotations

import functools
import re
from typing import Any
from urllib.parse import SplitResult, quote, urlsplit

MAX_LINK_LENGTH = 2048
_DEFAULT_PORTS = {"http": 80, "https": 443}
# What may follow the host's own prefix for a link to be taken without parsing it: a path of
# unreserved characters and percent escapes (no query, fragment, "@", ":" or backslash). Anything else
# goes through the full rule; both give the same verdict, this is only quicker (10,000 repositories
# carry 20,000 links).
_PLAIN_PATH = re.compile(r"[A-Za-z0-9._~%/+-]*")


def checked_link(value: Any, *, host: str | None = None) -> str | None:
    """``value`` when it may be returned as a link, else None.

    ``host``: the integration's web URL (``https://gitlab.example.com/gitlab``) when the link must
    point into it.
    """
    if host is not None and isinstance(value, str) and len(value) <= MAX_LINK_LENGTH:
        prefix = _plain_prefix(host)
        if prefix is not None and value.startswith(prefix) and _PLAIN_PATH.fullmatch(value, len(prefix)):
            return value
    parts = _http_parts(value)
    if parts is None or (host is not None and not _inside(parts, host)):
        return None
    return str(value)


def link_on_host(value: Any, host: str, path: str) -> str:
    """A link into the host at ``host``: ``value`` when the rule allows it, else ``host/path``."""
    return checked_link(value, host=host) or f"{host.rstrip('/')}/{quote(path.strip('/'), safe='/')}"


def _http_parts(value: Any) -> SplitResult | None:
    if not isinstance(value, str) or not value or len(value) > MAX_LINK_LENGTH or not value.isascii():
        return None
    if any(ch <= " " or ch in "\\\x7f" for ch in value):
        return None
    try:
        parts = urlsplit(value)
        port = parts.port  # raises for a port that is not a number in range
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname or "@" in parts.netloc or port == 0:
        return None
    return parts


@functools.lru_cache(maxsize=256)
def _plain_prefix(host: str) -> str | None:
    """``scheme://hostname[:port]/path/`` of the host as links into it begin, or None when the host
    is not plain enough to say (then every link takes the full rule)."""
    try:
        home = urlsplit(host)
        port = home.port
    except ValueError:
        return None
    scheme, hostname = home.scheme.lower(), (home.hostname or "").lower()
    if scheme not in _DEFAULT_PORTS or not hostname or "@" in home.netloc or not host.isascii():
        return None
    if not re.fullmatch(r"[a-z0-9.-]+", hostname) or not _PLAIN_PATH.fullmatch(home.path):
        return None
    netloc = hostname if port is None or port == _DEFAULT_PORTS[scheme] else f"{hostname}:{port}"
    return f"{scheme}://{netloc}{home.path.rstrip('/')}/"


def _inside(parts: SplitResult, host: str) -> bool:
    home = urlsplit(host)
    if (parts.scheme, parts.hostname) != (home.scheme.lower(), (home.hostname or "").lower()):
        return False
    if (parts.port or _DEFAULT_PORTS[parts.scheme]) != (home.port or _DEFAULT_PORTS.get(home.scheme, 443)):
        return False
    prefix = home.path.rstrip("/")
    return not prefix or parts.path == prefix or parts.path.startswith(prefix + "/")
