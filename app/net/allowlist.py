"""``GIT_HOST_ALLOWLIST``: hosts the operator lets through although they are private or use plain http.

Entries are host names (optionally with ``:port``), IP addresses and CIDRs: ``gitlab.internal``,
``gitlab.internal:8080``, ``10.1.2.3``, ``[::1]``, ``10.0.0.0/8``; ``https://gitlab.internal:8080/``
is read as ``gitlab.internal:8080``. This is the one parser of the variable: ``Settings`` validates
with it at start-up and ``HostGuard`` matches with it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from app.domain.errors import ConfigurationError, HostNotAllowedError
from app.net.addresses import IPAddress, IPNetwork, looks_numeric, parse_ip_literal, without_scope
from app.net.hostnames import canonical_name, idna_hostname, parse_port, split_authority

ALLOWLIST_VARIABLE = "GIT_HOST_ALLOWLIST"


@dataclass(frozen=True)
class NameEntry:
    name: str  # canonical: lower case, IDNA-encoded, no trailing dot
    port: int | None  # None: any port


@dataclass(frozen=True)
class NetworkEntry:
    network: IPNetwork
    port: int | None


def parse_entry(raw: str) -> NameEntry | NetworkEntry:
    """One entry of ``GIT_HOST_ALLOWLIST``; ``ConfigurationError`` naming the variable when invalid."""
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
        return NetworkEntry(ipaddress.ip_network(text, strict=False), None)
    except ValueError:
        pass
    try:
        host, port_text, bracketed = split_authority(text)
        port = parse_port(port_text, "")
    except HostNotAllowedError:
        raise invalid from None
    ip = parse_ip_literal(host)
    if ip is not None:
        return NetworkEntry(ipaddress.ip_network(without_scope(ip)), port)
    name = idna_hostname(host)
    if bracketed or name is None or looks_numeric(name):
        raise invalid
    return NameEntry(name, port)


@dataclass(frozen=True)
class Allowlist:
    """The parsed entries; an entry with a port matches only that port."""

    names: tuple[NameEntry, ...] = ()
    networks: tuple[NetworkEntry, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> Allowlist:
        """The entries of ``GIT_HOST_ALLOWLIST`` (empty ones skipped); ``ConfigurationError`` when one is invalid."""
        parsed = [parse_entry(raw) for raw in entries if raw.strip()]
        return cls(
            names=tuple(e for e in parsed if isinstance(e, NameEntry)),
            networks=tuple(e for e in parsed if isinstance(e, NetworkEntry)),
        )

    def allows(self, hostname: str, port: int | None = None) -> bool:
        """Whether ``hostname`` (a name, or an IP literal in any spelling) is let through.

        A name matches a name entry; an IP literal matches an IP or CIDR entry. ``port=None`` only
        matches entries without a port.
        """
        ip = parse_ip_literal(hostname)
        if ip is not None:
            return self.allows_address(ip, port)
        return self.allows_name(canonical_name(hostname), port)

    def allows_name(self, name: str, port: int | None) -> bool:
        """Whether the canonical host name ``name`` is an entry (for ``port``)."""
        return any(entry.name == name and (entry.port is None or entry.port == port) for entry in self.names)

    def allows_address(self, address: IPAddress, port: int | None = None) -> bool:
        """Whether ``address`` lies in an allowlisted IP or CIDR (IPv4-mapped counts as its IPv4)."""
        address = without_scope(address)
        candidates: list[IPAddress] = [address]
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            candidates.append(address.ipv4_mapped)
        return any(
            candidate in entry.network and (entry.port is None or entry.port == port)
            for entry in self.networks
            for candidate in candidates
        )
