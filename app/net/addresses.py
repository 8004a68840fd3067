"""IP addresses: reading every spelling a resolver accepts, and telling public ones from the rest.

``forbidden_reason`` is the one judgement of an address the guard (``app.net.guard``) relies on:
loopback, private, link-local, the cloud metadata endpoint (169.254.169.254, fd00:ec2::254), and
IPv6 addresses that only carry one of those inside (IPv4-mapped, 6to4, NAT64) are never contacted.
"""

from __future__ import annotations

import ipaddress
import re

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)
_SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")  # RFC 6598, carrier-grade NAT
_NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052, embeds an IPv4 address
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215, local-use NAT64
_NUMERIC_LABEL_RE = re.compile(r"0x[0-9a-f]*|[0-9]+")


def looks_numeric(name: str) -> bool:
    """Every label is a decimal or hex number: resolvers (inet_aton) read such names as IPv4."""
    labels = name.split(".")
    return all(_NUMERIC_LABEL_RE.fullmatch(label) for label in labels)


def parse_legacy_ipv4(name: str) -> ipaddress.IPv4Address | None:
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


def parse_ip_literal(name: str) -> IPAddress | None:
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
    if not text or not looks_numeric(text.lower()):
        return None
    return parse_legacy_ipv4(text)


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv4-mapped, 6to4 or NAT64 IPv6 address carries."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64_PREFIX:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def without_scope(address: IPAddress) -> IPAddress:
    """``fe80::1%eth0`` as ``fe80::1``: the zone says nothing about where the packets go."""
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        return ipaddress.IPv6Address(int(address))
    return address


def forbidden_reason(address: IPAddress) -> str | None:
    """Why ``address`` may not be contacted ("a private address", ...), or None when it is public."""
    address = without_scope(address)
    if address in _METADATA_ADDRESSES:
        return "the cloud metadata address"
    if isinstance(address, ipaddress.IPv6Address):
        embedded = embedded_ipv4(address)
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
