"""The SSRF guard: which hosts the service may contact, decided once and applied twice.

Threat model
------------
A user may enter the address of a self-hosted GitLab. The service then sends requests, with the
user's token, to that address from inside our network, so a hostile address could make it talk
to things only the service can reach (server-side request forgery): loopback services, the
private network, link-local addresses and the cloud metadata endpoint (169.254.169.254,
fd00:ec2::254). The guard therefore

- accepts ``https://`` only, a host *name* and never an IP literal (in any spelling a resolver
  accepts: ``127.1``, ``0x7f.0.0.1``, ``2130706433``, ``[::ffff:127.0.0.1]``, ...), and refuses
  names whose addresses are not public (``app.net.addresses.forbidden_reason``);
- decides again at connect time with the same ``HostGuard.decide``: the guarded network backend
  (``app.net.transport``) resolves the name itself, vets every address and connects to the vetted
  IP, so a DNS answer that changes between the check and the connection (DNS rebinding) cannot reach
  a private address; TLS still verifies the original name because httpcore passes it as
  ``server_hostname``;
- relies on ``app.net.client`` never following redirects, so a public host cannot bounce a request
  (and its token) elsewhere.

The operator can let through on-prem hosts with ``GIT_HOST_ALLOWLIST`` (``app.net.allowlist``; these
may be private and may use plain http). The addresses the operator configured (``GITHUB_URL``,
``GITHUB_API_URL``, ``GITLAB_URL``: ``ConfiguredOrigin``) are trusted exactly as configured — scheme,
host and port — and only for their own purpose: ``GITLAB_URL``'s origin for GitLab, GitHub's for
GitHub. Typed as a GitLab host, GitHub's address (or the same name on another port or scheme) is
judged like any other address; the identity provider's JWKS host is never a Git host at all.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpcore

from app.domain.errors import HostNotAllowedError, ProviderUnavailableError
from app.domain.models import GitProvider
from app.net.addresses import IPAddress, forbidden_reason, parse_ip_literal, without_scope
from app.net.allowlist import ALLOWLIST_VARIABLE, Allowlist
from app.net.hostnames import (
    DEFAULT_PORTS,
    EXAMPLE,
    ParsedHost,
    canonical_name,
    is_localhost,
)

log = logging.getLogger(__name__)

# Resolves ``(host, port)`` to IP address strings; raises ``socket.gaierror`` when the name is unknown.
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

DEFAULT_RESOLVE_TIMEOUT = 10.0
_ALLOWLIST_HINT = f"such hosts are refused unless the operator allows them in {ALLOWLIST_VARIABLE}."


async def system_resolver(host: str, port: int) -> list[str]:
    """Resolve ``host`` with the operating system's resolver; IP strings in the order returned."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in addresses:
            addresses.append(address)
    return addresses


class HostRefusedError(httpcore.ConnectError):
    """The guard refused a host; ``message`` is fit for end users.

    An ``httpcore.ConnectError`` so that the guarded network backend can raise it where a connection
    would be made: httpx re-raises it as ``httpx.ConnectError`` with this as ``__cause__``.
    ``unresolvable``: DNS did not answer or does not know the name (a passing failure, not a refusal).
    """

    def __init__(self, message: str, host: str, *, unresolvable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.host = host
        self.unresolvable = unresolvable


@dataclass(frozen=True)
class Decision:
    """A host the guard lets through, and how to reach it.

    ``addresses``: the vetted addresses to connect to. None for a host that is reached by its name:
    trusted (the operator configured it) or allowlisted by name (then resolved, but not vetted).
    """

    addresses: tuple[IPAddress, ...] | None
    resolve_by_name: bool = False  # allowlisted by name: resolve with the guard's resolver, do not vet


_TRUSTED = Decision(addresses=None)
_ALLOWLISTED_NAME = Decision(addresses=None, resolve_by_name=True)
_NAMES = {GitProvider.GITHUB: "GitHub", GitProvider.GITLAB: "GitLab"}


@dataclass(frozen=True)
class ConfiguredOrigin:
    """An address the operator configured for one Git host: trusted exactly so, and only for ``purpose``."""

    scheme: str
    name: str  # canonical host name or IP
    port: int  # the effective port
    purpose: GitProvider

    @property
    def address(self) -> tuple[str, str, int]:
        """``(scheme, host, port)``, as ``app.net.transports.origin_of`` spells an origin."""
        return (self.scheme, self.name, self.port)

    @classmethod
    def of(cls, url: str, purpose: GitProvider) -> ConfiguredOrigin:
        """The origin of a configured URL (``https://GitLab.example.com:8443/gitlab`` → scheme, name, port)."""
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        port = parts.port if parts.port is not None else DEFAULT_PORTS.get(scheme, 443)
        return cls(scheme=scheme, name=canonical_name(parts.hostname or ""), port=port, purpose=purpose)


class HostGuard:
    """Decides which hosts the service may contact, at check time and again at connect time.

    ``allowlist``: ``GIT_HOST_ALLOWLIST`` entries. ``configured``: the Git hosts' addresses the operator
    configured; allowed as configured, never resolved by the guard. ``resolver``: injectable for tests.
    """

    def __init__(
        self,
        allowlist: Sequence[str] = (),
        configured: Sequence[ConfiguredOrigin] = (),
        resolver: Resolver | None = None,
        resolve_timeout: float = DEFAULT_RESOLVE_TIMEOUT,
    ) -> None:
        self._allowlist = Allowlist.parse(allowlist)
        self._configured = tuple(configured)
        self._resolver: Resolver = resolver if resolver is not None else system_resolver
        self._resolve_timeout = resolve_timeout

    def is_configured(self, hostname: str, port: int) -> bool:
        """Whether ``hostname:port`` is one of the configured Git hosts' addresses (for some purpose)."""
        name = canonical_name(hostname)
        return any(o.name == name and o.port == port for o in self._configured)

    def _configured_for(self, name: str, port: int, scheme: str | None, purpose: GitProvider | None) -> bool:
        # At connect time (no scheme, no purpose) the address alone: the check before already
        # decided the purpose, and the pool keeps a connection to one origin (scheme, host, port).
        return any(
            o.name == name
            and o.port == port
            and (scheme is None or o.scheme == scheme)
            and (purpose is None or o.purpose is purpose)
            for o in self._configured
        )

    def is_allowlisted(self, hostname: str, port: int | None = None) -> bool:
        """Whether ``hostname`` (a name, or an IP literal in any spelling) is in the allowlist."""
        return self._allowlist.allows(hostname, port)

    # -- the decision ----------------------------------------------------------------------------

    async def decide(
        self,
        hostname: str,
        port: int,
        *,
        scheme: str | None = None,
        purpose: GitProvider | None = None,
        shown: str | None = None,
    ) -> Decision:
        """The one policy: whether ``hostname:port`` may be contacted, and where to connect.

        ``scheme`` and ``purpose`` (which Git host the address is for) are known when a user's address
        is checked (``check``) and None at connect time, where the transport already chose the
        origin. A configured address is trusted only with its own scheme and port, and only for its
        own purpose. ``shown`` is how messages name the host. Raises ``HostRefusedError``
        (``unresolvable`` when DNS failed).
        """
        name = canonical_name(hostname)
        shown = shown or name
        if self._configured_for(name, port, scheme, purpose):
            return _TRUSTED
        if purpose is not None:
            other = next(
                (
                    o
                    for o in self._configured
                    if o.name == name and o.port == port and o.purpose is not purpose
                ),
                None,
            )
            if other is not None:
                raise HostRefusedError(
                    f"{shown} is this service's {_NAMES[other.purpose]} address; it cannot be used as a "
                    f"{_NAMES[purpose]} host.",
                    name,
                )
        if scheme is not None and scheme not in DEFAULT_PORTS:
            raise HostRefusedError(f"Only https:// addresses are allowed for a Git host, {EXAMPLE}.", name)
        name_allowed = self._allowlist.allows_name(name, port)
        ip = parse_ip_literal(hostname)
        if ip is not None:
            if name_allowed or self._allowlist.allows_address(ip, port):
                return Decision(addresses=(ip,))
            if scheme is None:  # connect time: no user typed this, a URL named it
                raise HostRefusedError(
                    f"Connecting to the IP address {without_scope(ip)} was refused; {_ALLOWLIST_HINT}", name
                )
            raise HostRefusedError(
                f"{shown} is an IP address; enter the host's name instead (IP addresses are "
                f"refused unless the operator allows them in {ALLOWLIST_VARIABLE}).",
                name,
            )
        if name_allowed:
            return _ALLOWLISTED_NAME
        if is_localhost(name):
            raise HostRefusedError(f"{name} is this machine (localhost); {_ALLOWLIST_HINT}", name)
        plain_http = (
            f"{shown} uses http://; only https:// is allowed unless the operator allows the "
            f"host in {ALLOWLIST_VARIABLE}."
        )
        if scheme == "http" and not self._allowlist.networks:
            raise HostRefusedError(plain_http, name)  # no address could be allowlisted: skip DNS
        addresses = await self.resolve(name, port)
        for address in addresses:
            reason = forbidden_reason(address)
            if reason is not None and not self._allowlist.allows_address(address, port):
                # The address itself stays in the operator's log: naming it to a user would map the
                # inside of the network one DNS name at a time.
                log.info("guard: %s resolves to %s (%s)", name, reason, without_scope(address))
                raise HostRefusedError(
                    f"{name} resolves to an address that is not public; {_ALLOWLIST_HINT}", name
                )
        if scheme == "http" and not all(self._allowlist.allows_address(a, port) for a in addresses):
            raise HostRefusedError(plain_http, name)
        return Decision(addresses=tuple(addresses))

    async def check(self, parsed: ParsedHost, purpose: GitProvider = GitProvider.GITLAB) -> None:
        """Refuse a host a user typed (for ``purpose``: users name only GitLab instances) that the
        service may not contact, before anything is sent to it.

        Raises ``HostNotAllowedError`` (http, IP literal, localhost, non-public address, another Git
        host's configured address) or ``ProviderUnavailableError`` (the name is not in DNS, or DNS
        did not answer).
        """
        try:
            await self.decide(
                parsed.hostname,
                parsed.effective_port,
                scheme=parsed.scheme,
                purpose=purpose,
                shown=parsed.netloc,
            )
        except HostRefusedError as exc:
            if exc.unresolvable:
                raise ProviderUnavailableError(exc.message) from None
            raise HostNotAllowedError(exc.message, parsed.host_key) from None

    async def addresses_to_connect(self, host: str, port: int) -> list[IPAddress] | None:
        """Connect time: the vetted addresses for ``host:port``; None to connect by name (trusted).

        Raises ``HostRefusedError`` with a message for end users.
        """
        decision = await self.decide(host, port)
        if decision.resolve_by_name:
            return await self.resolve(canonical_name(host), port)
        return None if decision.addresses is None else list(decision.addresses)

    async def resolve(self, name: str, port: int) -> list[IPAddress]:
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
        return _addresses(name, answers)


def _addresses(name: str, answers: Iterable[str]) -> list[IPAddress]:
    addresses: list[IPAddress] = []
    for answer in answers:
        try:
            addresses.append(ipaddress.ip_address(answer))
        except ValueError:
            raise HostRefusedError(f"{name} resolved to something that is not an IP address.", name) from None
    if not addresses:
        raise HostRefusedError(
            f"{name} could not be found in DNS; check the spelling of the host.", name, unresolvable=True
        )
    return addresses
