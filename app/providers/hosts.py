"""Host normalisation and the SSRF guard for Git hosts that users type in.

Threat model
------------
A user may enter the address of a self-hosted GitLab. The service then sends requests, with the
user's token, to that address from inside our network, so a hostile address could make it talk
to things only the service can reach (server-side request forgery): loopback services, the
private network, link-local addresses and the cloud metadata endpoint (169.254.169.254,
fd00:ec2::254). The guard therefore

- accepts ``https://`` only, a host *name* and never an IP literal (in any spelling a resolver
  accepts: ``127.1``, ``0x7f.0.0.1``, ``2130706433``, ``[::ffff:127.0.0.1]``, ...), and refuses
  names whose addresses are not public;
- checks again at connect time: the guarded network backend resolves the name itself, vets every
  address and connects to the vetted IP, so a DNS answer that changes between the check and the
  connection (DNS rebinding) cannot reach a private address; TLS still verifies the original name
  because httpcore passes it as ``server_hostname``;
- relies on ``app.providers.http`` never following redirects, so a public host cannot bounce a
  request (and its token) elsewhere.

The operator can let through on-prem hosts with ``GIT_HOST_ALLOWLIST`` (names, optionally with a
port, IP addresses and CIDRs; these may be private and may use plain http). Hosts the operator
configured (``api.github.com``, the ``GITLAB_URL`` host, ...) are *trusted* and never checked.

Messages are shown to end users: they say what was refused and why, and never repeat anything
that could be a secret (user names, passwords, query strings; not even the raw input, which is
sometimes a token pasted into the wrong field).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import typing
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx
import idna

from app.domain.errors import ConfigurationError, HostNotAllowedError, ProviderUnavailableError
from app.domain.models import GitProvider, HostEndpoint

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Resolves ``(host, port)`` to IP address strings; raises ``socket.gaierror`` when the name is unknown.
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

DEFAULT_PORTS: dict[str, int] = {"https": 443, "http": 80}
ALLOWLIST_VARIABLE = "GIT_HOST_ALLOWLIST"
DEFAULT_RESOLVE_TIMEOUT = 10.0

_EXAMPLE_HOST = "gitlab.yourcompany.com"
_EXAMPLE = f"for example {_EXAMPLE_HOST}"
_ALLOWLIST_HINT = f"such hosts are refused unless the operator allows them in {ALLOWLIST_VARIABLE}."

_METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)
_SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")  # RFC 6598, carrier-grade NAT
_NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052, embeds an IPv4 address
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215, local-use NAT64

_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*)://")
_SCP_LIKE_RE = re.compile(r"[\w.\-]+@[\w.\-]+:(?!\d+/?$)")  # git@gitlab.com:group/project.git
_BRACKETED_RE = re.compile(r"\[([^\[\]]*)\](?::(.*))?")
_PATH_SEGMENT_RE = re.compile(r"[A-Za-z0-9._~\-]+")
_NUMERIC_LABEL_RE = re.compile(r"0x[0-9a-f]*|[0-9]+")
_ZONE_RE = re.compile(r"[A-Za-z0-9._~\-]+")
# A GitLab token pasted into the host field is a syntactically valid host name, and a GitHub or
# GitLab token pasted after it (https://host/ghp_...) a valid path segment: never echo either.
_TOKEN_LIKE_RE = re.compile(
    r"(glpat|gldt|glrt|gloas|glptt|glsoat|glcbt|glimt|glagent|glffct|glft|gltst|glwt|glrtr)-"
    r"|gh[pousr]_|github_pat_",
    re.IGNORECASE,
)


# --------------------------------------------------------------------------------------------
# IP addresses
# --------------------------------------------------------------------------------------------


def _looks_numeric(name: str) -> bool:
    """Every label is a decimal or hex number: resolvers (inet_aton) read such names as IPv4."""
    labels = name.split(".")
    return all(_NUMERIC_LABEL_RE.fullmatch(label) for label in labels)


def _parse_legacy_ipv4(name: str) -> ipaddress.IPv4Address | None:
    """Parse the inet_aton spellings (``127.1``, ``0x7f.1``, ``0177.0.0.1``, ``2130706433``)."""
    labels = name.lower().split(".")
    if not 1 <= len(labels) <= 4:
        return None
    numbers: list[int] = []
    for label in labels:
        if label.startswith("0x"):
            digits = label[2:]
            if digits and not re.fullmatch(r"[0-9a-f]+", digits):
                return None
            numbers.append(int(digits, 16) if digits else 0)
        elif len(label) > 1 and label.startswith("0"):
            if not re.fullmatch(r"[0-7]+", label):
                return None
            numbers.append(int(label, 8))
        elif label.isascii() and label.isdigit():
            numbers.append(int(label))
        else:
            return None
    *leading, last = numbers
    if any(n > 255 for n in leading) or last >= 256 ** (5 - len(numbers)):
        return None
    value = last
    for index, number in enumerate(leading):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _parse_ip_literal(name: str) -> IPAddress | None:
    """The address ``name`` spells, in any form a resolver would accept, or None for a host name."""
    text = name.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    text = text.replace("%25", "%")
    if text.endswith(".") and ":" not in text:
        text = text[:-1]
    if ":" in text:
        try:
            return ipaddress.IPv6Address(text)
        except ValueError:
            return None
    if not text or not _looks_numeric(text.lower()):
        return None
    return _parse_legacy_ipv4(text)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv4-mapped, 6to4 or NAT64 IPv6 address carries."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64_PREFIX:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _without_scope(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        return ipaddress.IPv6Address(int(address))
    return address


def forbidden_reason(address: IPAddress) -> str | None:
    """Why ``address`` may not be contacted ("a private address", ...), or None when it is public."""
    address = _without_scope(address)
    if address in _METADATA_ADDRESSES:
        return "the cloud metadata address"
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:  # the packets go to the embedded IPv4 address: judge that one
            inner = forbidden_reason(embedded)
            return None if inner is None else f"an IPv6 address embedding {inner} ({embedded})"
        if address in _NAT64_LOCAL:
            return "a local-use NAT64 address"
        if address.is_site_local:
            return "a site-local address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if isinstance(address, ipaddress.IPv4Address) and address in _SHARED_ADDRESS_SPACE:
        return "a shared (carrier-grade NAT) address"
    if address.is_private:
        return "a private address"
    if address.is_reserved:
        return "a reserved address"
    if not address.is_global:
        return "a non-public address"
    return None


# --------------------------------------------------------------------------------------------
# Host names
# --------------------------------------------------------------------------------------------


def _idna_hostname(name: str) -> str | None:
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


def _canonical_name(hostname: str) -> str:
    """A host name or IP literal as the guard compares it (best effort, never raises)."""
    ip = _parse_ip_literal(hostname)
    if ip is not None:
        return str(ip)
    text = hostname.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    return _idna_hostname(text) or text.lower().rstrip(".")


def _is_localhost(name: str) -> bool:
    return name == "localhost" or name.endswith(".localhost")


# --------------------------------------------------------------------------------------------
# Normalising what users type
# --------------------------------------------------------------------------------------------


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
        return _parse_ip_literal(self.hostname)

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

    @property
    def api_url(self) -> str:
        return f"{self.web_url}/api/v4"

    def gitlab_endpoint(self) -> HostEndpoint:
        return HostEndpoint(
            provider=GitProvider.GITLAB, host=self.host_key, web_url=self.web_url, api_url=self.api_url
        )


def _refuse(message: str, host: str = "") -> HostNotAllowedError:
    return HostNotAllowedError(message, host)


def _split_authority(authority: str) -> tuple[str, str | None, bool]:
    """``(host, port text, bracketed)`` of ``host[:port]`` / ``[v6][:port]`` / bare ``v6``."""
    if authority.startswith("["):
        match = _BRACKETED_RE.fullmatch(authority)
        if match is None:
            raise _refuse(f"The GitLab host is not a valid address; enter a host name, {_EXAMPLE}.")
        return match.group(1), match.group(2), True
    if authority.count(":") > 1:  # an IPv6 address typed without brackets
        return authority, None, True
    host, sep, port_text = authority.partition(":")
    return host, (port_text if sep else None), False


def _parse_port(port_text: str | None, host: str) -> int | None:
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
    name = _idna_hostname(host)
    if name is None:
        raise _refuse(invalid)
    if _looks_numeric(name):
        ip = _parse_legacy_ipv4(name)
        if ip is None:
            raise _refuse(f"{name} is neither a valid host name nor a valid IP address.", name)
        return str(ip), trailing_dot
    if _TOKEN_LIKE_RE.match(name):
        raise _refuse(
            "This looks like an access token, not a host: put the token in the token field and "
            f"enter only the GitLab host here, {_EXAMPLE}."
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
    if _TOKEN_LIKE_RE.match(segment):
        raise _refuse(
            "This looks like an access token, not a path: put the token in the token field and "
            f"enter only the GitLab host here, {_EXAMPLE}.",
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
        raise _refuse(f"Enter the GitLab host, {_EXAMPLE}.")
    if any(ch.isspace() for ch in text) or not text.isprintable():
        raise _refuse(
            "The GitLab host must not contain spaces or control characters; "
            f"enter only its address, {_EXAMPLE}."
        )

    match = _SCHEME_RE.match(text)
    if match is not None:
        scheme, rest = match.group(1).lower(), text[match.end() :]
    elif text.startswith("//"):
        scheme, rest = "https", text[2:]
    else:
        if _SCP_LIKE_RE.match(text):
            raise _refuse(f"This looks like an SSH clone address; enter only the GitLab host, {_EXAMPLE}.")
        scheme, rest = "https", text
    if scheme not in DEFAULT_PORTS:
        raise _refuse(f"Only https:// addresses are allowed for a GitLab host, {_EXAMPLE}.")

    authority_end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:authority_end], rest[authority_end:]
    if "@" in authority:
        # Checked first and never echoed: the part before '@' may be a user name and password or a token.
        raise _refuse(
            "Enter the GitLab host without a user name, password or token (remove everything up to "
            "and including '@'); the token goes in the token field."
        )
    if "\\" in authority:
        raise _refuse(f"The GitLab host is not a valid address; enter a host name, {_EXAMPLE}.")

    host_text, port_text, bracketed = _split_authority(authority)
    if not host_text:
        raise _refuse(f"Enter the GitLab host, {_EXAMPLE}.")
    hostname, trailing_dot = _parse_hostname(host_text, bracketed)
    port = _parse_port(port_text, hostname)
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


# --------------------------------------------------------------------------------------------
# The guard
# --------------------------------------------------------------------------------------------


async def system_resolver(host: str, port: int) -> list[str]:
    """Resolve ``host`` with the operating system's resolver; IP strings in the order returned."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in addresses:
            addresses.append(address)
    return addresses


@dataclass(frozen=True)
class _NameEntry:
    name: str
    port: int | None


@dataclass(frozen=True)
class _NetworkEntry:
    network: IPNetwork
    port: int | None


def _parse_allowlist_entry(raw: str) -> _NameEntry | _NetworkEntry:
    invalid = ConfigurationError(
        f"{ALLOWLIST_VARIABLE}: {raw!r} is not a host name (optionally with :port), an IP address or a CIDR."
    )
    text = raw.strip()
    port: int | None = None
    if "://" in text:  # tolerate "https://gitlab.internal:8080/"
        scheme, _, text = text.partition("://")
        text = text.rstrip("/")
        if not scheme or "/" in text or "@" in text:
            raise invalid
    try:
        return _NetworkEntry(ipaddress.ip_network(text, strict=False), None)
    except ValueError:
        pass
    try:
        host, port_text, bracketed = _split_authority(text)
        port = _parse_port(port_text, "")
    except HostNotAllowedError:
        raise invalid from None
    ip = _parse_ip_literal(host)
    if ip is not None:
        return _NetworkEntry(ipaddress.ip_network(_without_scope(ip)), port)
    name = _idna_hostname(host)
    if bracketed or name is None or _looks_numeric(name):
        raise invalid
    return _NameEntry(name, port)


class HostRefusedError(httpcore.ConnectError):
    """The guarded network backend refused to connect; ``message`` is fit for end users.

    httpx re-raises it as ``httpx.ConnectError`` with this as ``__cause__``.
    """

    def __init__(self, message: str, host: str, *, unresolvable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.host = host
        self.unresolvable = unresolvable


class HostGuard:
    """Decides which hosts the service may contact, at check time and again at connect time.

    ``allowlist``: ``GIT_HOST_ALLOWLIST`` entries (``gitlab.internal``, ``gitlab.internal:8080``,
    ``10.1.2.3``, ``::1``, ``10.0.0.0/8``); these may be private and may use http.
    ``trusted``: host names the operator configured (``api.github.com``, the ``GITLAB_URL`` host);
    always allowed, never resolved by the guard. ``resolver``: injectable for tests.
    """

    def __init__(
        self,
        allowlist: Sequence[str] = (),
        trusted: Sequence[str] = (),
        resolver: Resolver | None = None,
        resolve_timeout: float = DEFAULT_RESOLVE_TIMEOUT,
    ) -> None:
        names: list[_NameEntry] = []
        networks: list[_NetworkEntry] = []
        for raw in allowlist:
            if not raw.strip():
                continue
            entry = _parse_allowlist_entry(raw)
            if isinstance(entry, _NameEntry):
                names.append(entry)
            else:
                networks.append(entry)
        self._names: tuple[_NameEntry, ...] = tuple(names)
        self._networks: tuple[_NetworkEntry, ...] = tuple(networks)
        self._trusted = frozenset(_trusted_name(entry) for entry in trusted if entry.strip())
        self._resolver: Resolver = resolver if resolver is not None else system_resolver
        self._resolve_timeout = resolve_timeout

    # -- allowlist -----------------------------------------------------------------------------

    def is_trusted(self, hostname: str) -> bool:
        return _canonical_name(hostname) in self._trusted

    def is_allowlisted(self, hostname: str, port: int | None = None) -> bool:
        """Whether ``hostname`` (a name, or an IP literal in any spelling) is in the allowlist.

        A name matches a name entry; an IP literal matches an IP or CIDR entry. An entry with a
        port matches only that port (so ``port=None`` only matches entries without one).
        """
        ip = _parse_ip_literal(hostname)
        if ip is not None:
            return self.address_allowlisted(ip, port)
        return self._name_allowlisted(_canonical_name(hostname), port)

    def address_allowlisted(self, address: IPAddress, port: int | None = None) -> bool:
        """Whether ``address`` lies in an allowlisted IP or CIDR (IPv4-mapped counts as its IPv4)."""
        address = _without_scope(address)
        candidates: list[IPAddress] = [address]
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            candidates.append(address.ipv4_mapped)
        return any(
            candidate in entry.network and (entry.port is None or entry.port == port)
            for entry in self._networks
            for candidate in candidates
        )

    def _name_allowlisted(self, name: str, port: int | None) -> bool:
        return any(entry.name == name and (entry.port is None or entry.port == port) for entry in self._names)

    # -- checks --------------------------------------------------------------------------------

    async def check(self, parsed: ParsedHost) -> None:
        """Refuse a host the service may not contact.

        Raises ``HostNotAllowedError`` (http, IP literal, localhost, non-public address) or
        ``ProviderUnavailableError`` (the name is not in DNS, or DNS did not answer).
        """
        name = parsed.hostname
        if name in self._trusted:
            return
        if parsed.scheme not in DEFAULT_PORTS:
            raise _refuse(f"Only https:// addresses are allowed for a Git host, {_EXAMPLE}.", parsed.host_key)
        port = parsed.effective_port
        name_allowed = self._name_allowlisted(name, port)
        ip = parsed.ip
        if ip is not None:
            if name_allowed or self.address_allowlisted(ip, port):
                return
            raise _refuse(
                f"{parsed.netloc} is an IP address; enter the host's name instead (IP addresses are "
                f"refused unless the operator allows them in {ALLOWLIST_VARIABLE}).",
                parsed.host_key,
            )
        if name_allowed:
            return
        if _is_localhost(name):
            raise _refuse(f"{name} is this machine (localhost); {_ALLOWLIST_HINT}", parsed.host_key)
        http_message = (
            f"{parsed.netloc} uses http://; only https:// is allowed unless the operator allows the "
            f"host in {ALLOWLIST_VARIABLE}."
        )
        if parsed.scheme == "http" and not self._networks:
            raise _refuse(http_message, parsed.host_key)
        try:
            addresses = await self._resolve(name, port)
        except HostRefusedError as exc:
            if exc.unresolvable:
                raise ProviderUnavailableError(exc.message) from None
            raise _refuse(exc.message, parsed.host_key) from None
        refusal = self._refusal_for_addresses(name, port, addresses)
        if refusal is not None:
            raise _refuse(refusal, parsed.host_key)
        if parsed.scheme == "http" and not all(self.address_allowlisted(a, port) for a in addresses):
            raise _refuse(http_message, parsed.host_key)

    def _refusal_for_addresses(self, name: str, port: int, addresses: Iterable[IPAddress]) -> str | None:
        for address in addresses:
            reason = forbidden_reason(address)
            if reason is not None and not self.address_allowlisted(address, port):
                return f"{name} resolves to {reason} ({_without_scope(address)}); {_ALLOWLIST_HINT}"
        return None

    async def _resolve(self, name: str, port: int) -> list[IPAddress]:
        """Resolve ``name``; raises ``HostRefusedError`` (``unresolvable`` for DNS failures)."""
        try:
            async with asyncio.timeout(self._resolve_timeout):
                answers = await self._resolver(name, port)
        except TimeoutError:
            raise HostRefusedError(
                f"Looking up {name} in DNS took too long; try again later.", name, unresolvable=True
            ) from None
        except socket.gaierror as exc:
            if exc.errno == socket.EAI_AGAIN:
                message = f"{name} could not be looked up in DNS right now; try again later."
            else:
                message = f"{name} could not be found in DNS; check the spelling of the host."
            raise HostRefusedError(message, name, unresolvable=True) from None
        except OSError:
            raise HostRefusedError(
                f"{name} could not be found in DNS; check the spelling of the host.", name, unresolvable=True
            ) from None
        addresses: list[IPAddress] = []
        for answer in answers:
            try:
                addresses.append(ipaddress.ip_address(answer))
            except ValueError:
                raise HostRefusedError(
                    f"{name} resolved to something that is not an IP address.", name
                ) from None
        if not addresses:
            raise HostRefusedError(
                f"{name} could not be found in DNS; check the spelling of the host.", name, unresolvable=True
            )
        return addresses

    async def addresses_to_connect(self, host: str, port: int) -> list[IPAddress] | None:
        """The vetted addresses to connect to for ``host:port``; None for a trusted host.

        Raises ``HostRefusedError`` with a message for end users.
        """
        name = _canonical_name(host)
        if name in self._trusted:
            return None
        name_allowed = self._name_allowlisted(name, port)
        ip = _parse_ip_literal(host)
        if ip is not None:
            if name_allowed or self.address_allowlisted(ip, port):
                return [ip]
            raise HostRefusedError(
                f"Connecting to the IP address {_without_scope(ip)} was refused; {_ALLOWLIST_HINT}", name
            )
        if _is_localhost(name) and not name_allowed:
            raise HostRefusedError(f"{name} is this machine (localhost); {_ALLOWLIST_HINT}", name)
        addresses = await self._resolve(name, port)
        if not name_allowed:
            refusal = self._refusal_for_addresses(name, port, addresses)
            if refusal is not None:
                raise HostRefusedError(refusal, name)
        return addresses

    # -- HTTP plumbing ---------------------------------------------------------------------------

    def network_backend(self) -> httpcore.AsyncNetworkBackend:
        """An httpcore backend that connects only to addresses this guard allows."""
        return GuardedNetworkBackend(self, httpcore.AnyIOBackend())

    def transport(self, **kwargs: Any) -> httpx.AsyncHTTPTransport:
        """``httpx.AsyncHTTPTransport(**kwargs)`` whose connections go through ``network_backend()``.

        httpx 0.28 does not take a ``network_backend`` argument: ``AsyncHTTPTransport.__init__``
        builds an ``httpcore.AsyncConnectionPool`` as ``self._pool`` with the default backend, and
        the pool stores it as ``_network_backend`` and hands it to every connection it creates in
        ``create_connection``. No connection exists yet, so replacing the pool's backend right
        after construction puts every future connection through the guard. Proxies and Unix
        sockets are refused: through them the guard would vet the proxy (or nothing), not the
        Git host. If a future httpx/httpcore renames these attributes we fail loudly rather than
        silently connecting unguarded.
        """
        for option in ("proxy", "uds"):
            if kwargs.get(option) is not None:
                raise ValueError(f"The guarded transport does not support {option!r}.")
        transport = httpx.AsyncHTTPTransport(**kwargs)
        pool = getattr(transport, "_pool", None)
        if type(pool) is not httpcore.AsyncConnectionPool or not hasattr(pool, "_network_backend"):
            raise RuntimeError("httpx/httpcore internals changed: cannot install the host guard.")
        pool._network_backend = self.network_backend()
        return transport


def _trusted_name(entry: str) -> str:
    text = entry.strip()
    if "://" in text:
        text = text.partition("://")[2]
    text = text.split("/", 1)[0]
    host, _, _ = _split_authority(text)
    return _canonical_name(host)


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """Resolves, vets and then connects to the vetted IP, so DNS rebinding cannot slip past."""

    def __init__(self, guard: HostGuard, inner: httpcore.AsyncNetworkBackend) -> None:
        self._guard = guard
        self._inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        options = list(socket_options) if socket_options is not None else None
        addresses = await self._guard.addresses_to_connect(host, port)
        if addresses is None:  # trusted: let the default backend resolve (and race IPv4/IPv6)
            return await self._inner.connect_tcp(
                host, port, timeout=timeout, local_address=local_address, socket_options=options
            )
        failure: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address), port, timeout=timeout, local_address=local_address, socket_options=options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None  # addresses is never empty
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise HostRefusedError("Connecting to a Unix socket is not allowed for Git hosts.", path)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)
