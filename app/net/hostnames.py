"""Host names: what a user typed for a self-managed GitLab, parsed and normalised (``ParsedHost``).

``normalize_gitlab_host`` only *parses*: it accepts the spellings people paste (a bare name, a URL with
a trailing slash, a port, GitLab installed under a path, a copied ``/api/v4`` or ``/-/`` page URL) and
refuses what can never be a Git host address (other schemes, user info, queries, fragments, a token
pasted into the wrong field). Whether the host may be contacted is ``app.net.guard``'s decision.

Messages are shown to end users: they say what was refused and why, and never repeat anything that
could be a secret (user names, passwords, query strings; not even the raw input, which is sometimes a
token pasted into the wrong field).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

import idna

from app.domain.errors import HostNotAllowedError
from app.net.addresses import IPAddress, looks_numeric, parse_ip_literal, parse_legacy_ipv4
from app.security.token_shapes import starts_like_token

DEFAULT_PORTS: dict[str, int] = {"https": 443, "http": 80}

_EXAMPLE_HOST = "gitlab.yourcompany.com"
EXAMPLE = f"for example {_EXAMPLE_HOST}"

_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*)://")
_SCP_LIKE_RE = re.compile(r"[\w.\-]+@[\w.\-]+:(?!\d+/?$)")  # git@gitlab.com:group/project.git
_BRACKETED_RE = re.compile(r"\[([^\[\]]*)\](?::(.*))?")
_PATH_SEGMENT_RE = re.compile(r"[A-Za-z0-9._~\-]+")
_ZONE_RE = re.compile(r"[A-Za-z0-9._~\-]+")


def idna_hostname(name: str) -> str | None:
    """``name`` lower-cased and IDNA (punycode) encoded, without a trailing dot; None if invalid."""
    name = name.strip()
    if name.endswith("."):
        name = name[:-1]
    if not name:
        return None
    try:
        encoded = idna.encode(name, uts46=True).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError, ValueError):
        return None
    if len(encoded) > 253:
        return None
    return encoded


def canonical_name(hostname: str) -> str:
    """A host name or IP literal as the guard compares it (best effort, never raises)."""
    ip = parse_ip_literal(hostname)
    if ip is not None:
        return str(ip)
    text = hostname.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    return idna_hostname(text) or text.lower().rstrip(".")


def host_key_of(url: str) -> str:
    """The host key of a configured URL: ``https://GitLab.example.com/gitlab/`` → ``gitlab.example.com/gitlab``."""
    parts = urlsplit(url)
    return f"{parts.netloc.lower()}{parts.path.rstrip('/')}"


def is_localhost(name: str) -> bool:
    """``localhost`` and its subdomains, which resolvers answer with this machine (RFC 6761)."""
    return name == "localhost" or name.endswith(".localhost")


@dataclass(frozen=True)
class ParsedHost:
    """A GitLab host as entered by a user, normalised.

    ``hostname`` is lower case and IDNA-encoded, without a trailing dot (``trailing_dot`` remembers
    it); an IP literal is stored in its canonical form (``127.1`` becomes ``127.0.0.1``, an IPv6
    address has no brackets). ``port`` is None for the scheme's default port. ``path_prefix`` is
    ``""`` or one path segment such as ``"/gitlab"`` (GitLab installed under a relative URL root).
    """

    scheme: str
    hostname: str
    port: int | None = None
    path_prefix: str = ""
    trailing_dot: bool = False

    @property
    def effective_port(self) -> int:
        return self.port if self.port is not None else DEFAULT_PORTS.get(self.scheme, 443)

    @property
    def ip(self) -> IPAddress | None:
        """The address when ``hostname`` is an IP literal, else None."""
        return parse_ip_literal(self.hostname)

    @property
    def netloc(self) -> str:
        """``hostname[:port]`` with IPv6 in brackets: "gitlab.example.com:8443", "[::1]"."""
        host = f"[{self.hostname.replace('%', '%25')}]" if ":" in self.hostname else self.hostname
        return host if self.port is None else f"{host}:{self.port}"

    @property
    def host_key(self) -> str:
        """What users see and integrations are keyed by: "gitlab.example.com:8443/gitlab"."""
        return self.netloc + self.path_prefix

    @property
    def web_url(self) -> str:
        return f"{self.scheme}://{self.host_key}"


def _refuse(message: str, host: str = "") -> HostNotAllowedError:
    return HostNotAllowedError(message, host)


def split_authority(authority: str) -> tuple[str, str | None, bool]:
    """``(host, port text, bracketed)`` of ``host[:port]`` / ``[v6][:port]`` / bare ``v6``."""
    if authority.startswith("["):
        match = _BRACKETED_RE.fullmatch(authority)
        if match is None:
            raise _refuse(f"The GitLab host is not a valid address; enter a host name, {EXAMPLE}.")
        return match.group(1), match.group(2), True
    if authority.count(":") > 1:  # an IPv6 address typed without brackets
        return authority, None, True
    host, sep, port_text = authority.partition(":")
    return host, (port_text if sep else None), False


def parse_port(port_text: str | None, host: str) -> int | None:
    """The port number of ``host[:port]``; None when there is none; refuses anything but 1..65535."""
    if port_text is None or port_text == "":
        return None
    if not (port_text.isascii() and port_text.isdigit()):
        raise _refuse("The port of the GitLab host must be a number from 1 to 65535.", host)
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise _refuse("The port of the GitLab host must be a number from 1 to 65535.", host)
    return port


def _parse_hostname(host: str, bracketed: bool) -> tuple[str, bool]:
    """``(canonical hostname, had trailing dot)``; raises ``HostNotAllowedError`` when invalid."""
    invalid = f"The GitLab host is not a valid host name; enter an address such as {_EXAMPLE_HOST}."
    if bracketed:
        text = host.replace("%25", "%")
        zone = text.partition("%")[2]
        if zone and not _ZONE_RE.fullmatch(zone):
            raise _refuse(invalid)
        try:
            return str(ipaddress.IPv6Address(text)), False
        except ValueError:
            raise _refuse(invalid) from None
    trailing_dot = host.endswith(".")
    name = idna_hostname(host)
    if name is None:
        raise _refuse(invalid)
    if looks_numeric(name):
        ip = parse_legacy_ipv4(name)
        if ip is None:
            raise _refuse(f"{name} is neither a valid host name nor a valid IP address.", name)
        return str(ip), trailing_dot
    if starts_like_token(name):
        raise _refuse(
            "This looks like an access token, not a host: put the token in the token field and "
            f"enter only the GitLab host here, {EXAMPLE}."
        )
    return name, trailing_dot


def _parse_path_prefix(path: str, hostname: str, netloc: str) -> str:
    segments = [segment for segment in path.split("/") if segment]
    if "-" in segments:  # GitLab pages such as /-/profile/personal_access_tokens
        segments = segments[: segments.index("-")]
    lowered = [segment.lower() for segment in segments]
    for index in range(len(lowered) - 1):
        if lowered[index] == "api" and lowered[index + 1] == "v4":
            segments = segments[:index]
            break
    if not segments or hostname == "gitlab.com":  # every path on gitlab.com is a group or project
        return ""
    if len(segments) > 1:
        raise _refuse(
            "Enter the address of the GitLab instance, not of a group or project page: for example "
            "https://gitlab.yourcompany.com, or https://gitlab.yourcompany.com/gitlab when GitLab is "
            "installed under a path.",
            netloc,
        )
    segment = segments[0]
    if starts_like_token(segment):
        raise _refuse(
            "This looks like an access token, not a path: put the token in the token field and "
            f"enter only the GitLab host here, {EXAMPLE}.",
            netloc,
        )
    if not _PATH_SEGMENT_RE.fullmatch(segment) or segment in {".", ".."}:
        raise _refuse(
            "The path after the GitLab host may only contain letters, digits and . _ ~ -, "
            "for example https://gitlab.yourcompany.com/gitlab.",
            netloc,
        )
    return "/" + segment


def normalize_gitlab_host(raw: str) -> ParsedHost:
    """Turn what a user typed for a GitLab host into a ``ParsedHost``.

    Accepts ``gitlab.example.com``, ``https://gitlab.example.com/``, ``gitlab.example.com:8443``,
    ``https://gitlab.example.com/gitlab/``, a trailing ``/api/v4`` and GitLab ``/-/`` page URLs.
    ``http://`` is parsed (``HostGuard.check`` refuses it unless allowlisted); other schemes,
    user info, query strings, fragments and malformed input raise ``HostNotAllowedError``. This
    only parses: call ``HostGuard.check`` before contacting the host.
    """
    text = raw.strip()
    if not text:
        raise _refuse(f"Enter the GitLab host, {EXAMPLE}.")
    if any(ch.isspace() for ch in text) or not text.isprintable():
        raise _refuse(
            "The GitLab host must not contain spaces or control characters; "
            f"enter only its address, {EXAMPLE}."
        )

    match = _SCHEME_RE.match(text)
    if match is not None:
        scheme, rest = match.group(1).lower(), text[match.end() :]
    elif text.startswith("//"):
        scheme, rest = "https", text[2:]
    else:
        if _SCP_LIKE_RE.match(text):
            raise _refuse(f"This looks like an SSH clone address; enter only the GitLab host, {EXAMPLE}.")
        scheme, rest = "https", text
    if scheme not in DEFAULT_PORTS:
        raise _refuse(f"Only https:// addresses are allowed for a GitLab host, {EXAMPLE}.")

    authority_end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:authority_end], rest[authority_end:]
    if "@" in authority:
        # Checked first and never echoed: the part before '@' may be a user name and password or a token.
        raise _refuse(
            "Enter the GitLab host without a user name, password or token (remove everything up to "
            "and including '@'); the token goes in the token field."
        )
    if "\\" in authority:
        raise _refuse(f"The GitLab host is not a valid address; enter a host name, {EXAMPLE}.")

    host_text, port_text, bracketed = split_authority(authority)
    if not host_text:
        raise _refuse(f"Enter the GitLab host, {EXAMPLE}.")
    hostname, trailing_dot = _parse_hostname(host_text, bracketed)
    port = parse_port(port_text, hostname)
    if port == DEFAULT_PORTS[scheme]:
        port = None
    parsed = ParsedHost(scheme=scheme, hostname=hostname, port=port, trailing_dot=trailing_dot)

    if "?" in tail:
        raise _refuse(
            "Enter the GitLab host without a query string (the part from '?' on), "
            "for example https://gitlab.yourcompany.com.",
            parsed.netloc,
        )
    if "#" in tail:
        raise _refuse(
            "Enter the GitLab host without a fragment (the part from '#' on), "
            "for example https://gitlab.yourcompany.com.",
            parsed.netloc,
        )
    prefix = _parse_path_prefix(tail, hostname, parsed.netloc)
    return ParsedHost(
        scheme=scheme, hostname=hostname, port=port, path_prefix=prefix, trailing_dot=trailing_dot
    )
