"""Host normalisation and the SSRF guard.

No test sends traffic anywhere but 127.0.0.1: names are resolved by a fake resolver.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager

import httpx
import pytest

from app.domain.errors import ConfigurationError, HostNotAllowedError, ProviderUnavailableError
from app.domain.models import GitProvider, HostEndpoint
from app.hosts.gitlab.client import endpoint_of
from app.net.addresses import forbidden_reason
from app.net.guard import ConfiguredOrigin, HostGuard, HostRefusedError, system_resolver
from app.net.hostnames import ParsedHost, normalize_gitlab_host
from app.net.transport import guarded_transport


class FakeResolver:
    """Answers from a table; unknown names do not exist. Records every lookup."""

    def __init__(self, table: Mapping[str, Sequence[str]] | None = None) -> None:
        self.table = dict(table or {})
        self.calls: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.calls.append((host, port))
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return self.table[host]


class SequenceResolver:
    """Answers each lookup with the next answer: a DNS rebinding attacker."""

    def __init__(self, *answers: Sequence[str]) -> None:
        self.answers = list(answers)

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        return self.answers.pop(0)


def guard(
    table: Mapping[str, Sequence[str]] | None = None,
    allowlist: Sequence[str] = (),
    configured: Sequence[ConfiguredOrigin] = (),
) -> HostGuard:
    return HostGuard(allowlist=allowlist, configured=configured, resolver=FakeResolver(table))


PUBLIC_V4 = "93.184.216.34"
PUBLIC_V6 = "2606:2800:220:1:248:1893:25c8:1946"


# --------------------------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "host_key", "web_url"),
    [
        ("gitlab.yourcompany.com", "gitlab.yourcompany.com", "https://gitlab.yourcompany.com"),
        ("https://gitlab.yourcompany.com/", "gitlab.yourcompany.com", "https://gitlab.yourcompany.com"),
        ("gitlab.yourcompany.com:8443", "gitlab.yourcompany.com:8443", "https://gitlab.yourcompany.com:8443"),
        (
            "https://gitlab.yourcompany.com/gitlab/",
            "gitlab.yourcompany.com/gitlab",
            "https://gitlab.yourcompany.com/gitlab",
        ),
        (
            "https://gitlab.example.com:8443/gitlab",
            "gitlab.example.com:8443/gitlab",
            "https://gitlab.example.com:8443/gitlab",
        ),
        ("  gitlab.yourcompany.com \n", "gitlab.yourcompany.com", "https://gitlab.yourcompany.com"),
        ("HTTPS://GitLab.YourCompany.COM/", "gitlab.yourcompany.com", "https://gitlab.yourcompany.com"),
        ("https://gitlab.example.com:443/", "gitlab.example.com", "https://gitlab.example.com"),
        ("https://gitlab.example.com:/", "gitlab.example.com", "https://gitlab.example.com"),
        ("//gitlab.example.com", "gitlab.example.com", "https://gitlab.example.com"),
        ("https://gitlab.example.com/api/v4", "gitlab.example.com", "https://gitlab.example.com"),
        ("https://gitlab.example.com/api/v4/", "gitlab.example.com", "https://gitlab.example.com"),
        (
            "https://gitlab.example.com/gitlab/api/v4",
            "gitlab.example.com/gitlab",
            "https://gitlab.example.com/gitlab",
        ),
        (
            "https://gitlab.example.com/-/user_settings/personal_access_tokens",
            "gitlab.example.com",
            "https://gitlab.example.com",
        ),
        ("https://gitlab.com/group/project", "gitlab.com", "https://gitlab.com"),
        ("bücher.example", "xn--bcher-kva.example", "https://xn--bcher-kva.example"),
        (
            "https://GITLAB.BÜCHER.example/",
            "gitlab.xn--bcher-kva.example",
            "https://gitlab.xn--bcher-kva.example",
        ),
        ("gitlab.example.com.", "gitlab.example.com", "https://gitlab.example.com"),
        ("[2001:db8::1]:8443", "[2001:db8::1]:8443", "https://[2001:db8::1]:8443"),
    ],
)
def test_accepted_spellings_normalise_to_one_host(raw: str, host_key: str, web_url: str) -> None:
    parsed = normalize_gitlab_host(raw)

    assert parsed.host_key == host_key
    assert parsed.web_url == web_url
    assert endpoint_of(parsed).api_url == web_url + "/api/v4"


def test_normalised_host_builds_a_gitlab_endpoint() -> None:
    parsed = normalize_gitlab_host("https://GitLab.Example.com:8443/gitlab/api/v4/")

    assert parsed == ParsedHost(
        scheme="https", hostname="gitlab.example.com", port=8443, path_prefix="/gitlab"
    )
    assert endpoint_of(parsed) == HostEndpoint(
        provider=GitProvider.GITLAB,
        host="gitlab.example.com:8443/gitlab",
        web_url="https://gitlab.example.com:8443/gitlab",
        api_url="https://gitlab.example.com:8443/gitlab/api/v4",
    )


def test_http_is_parsed_so_the_guard_can_allow_it_for_allowlisted_hosts() -> None:
    parsed = normalize_gitlab_host("http://gitlab.internal:80/")

    assert (parsed.scheme, parsed.port, parsed.web_url) == ("http", None, "http://gitlab.internal")
    assert normalize_gitlab_host("http://gitlab.internal:443").port == 443


def test_trailing_dot_is_dropped_for_display_but_remembered() -> None:
    parsed = normalize_gitlab_host("localhost.")

    assert parsed.hostname == "localhost"
    assert parsed.trailing_dot is True
    assert parsed.host_key == "localhost"


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("0x7f.0.0.1", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("\uff11\uff12\uff17.\uff10.\uff10.\uff11", "127.0.0.1"),  # fullwidth digits, mapped by IDNA
        ("[::1]", "::1"),
        ("::1", "::1"),
        ("https://[::ffff:127.0.0.1]/", "::ffff:7f00:1"),
        ("https://[fe80::1%25eth0]:8443/", "fe80::1%eth0"),
    ],
)
def test_ip_literals_in_every_spelling_are_recognised(raw: str, canonical: str) -> None:
    parsed = normalize_gitlab_host(raw)

    assert parsed.hostname == canonical
    assert parsed.ip == ipaddress.ip_address(canonical)


@pytest.mark.parametrize(
    ("raw", "expected_words"),
    [
        ("", "Enter the GitLab host"),
        ("   ", "Enter the GitLab host"),
        ("gitlab example.com", "spaces"),
        ("gitlab.example.com\x00", "control characters"),
        ("ftp://gitlab.example.com", "Only https://"),
        ("ssh://git@gitlab.example.com/group/project.git", "Only https://"),
        ("git@gitlab.example.com:group/project.git", "SSH clone address"),
        ("https://gitlab.example.com/?tab=projects", "query string"),
        ("https://gitlab.example.com?", "query string"),
        ("https://gitlab.example.com/#top", "fragment"),
        ("gitlab.example.com:99999", "port"),
        ("gitlab.example.com:0", "port"),
        ("gitlab.example.com:https", "port"),
        ("gitlab..example.com", "not a valid host name"),
        ("-gitlab.example.com", "not a valid host name"),
        ("gitlab_1.example.com", "not a valid host name"),
        ("https://[::1", "not a valid address"),
        ("https://[not-an-ip]/", "not a valid host name"),
        ("https://gitlab.example.com\\@evil.example", "user name"),
        ("999.1.1.1", "neither a valid host name nor a valid IP address"),
        ("https://gitlab.example.com/group/project", "not of a group or project page"),
        ("https://gitlab.example.com/group/project/-/tree/main", "not of a group or project page"),
        ("https://gitlab.example.com/%2e%2e", "may only contain"),
    ],
)
def test_garbage_is_refused_with_a_clear_message(raw: str, expected_words: str) -> None:
    with pytest.raises(HostNotAllowedError) as caught:
        normalize_gitlab_host(raw)

    assert expected_words in caught.value.message
    assert caught.value.code == "HOST_NOT_ALLOWED"


def test_user_and_password_are_refused_without_echoing_them() -> None:
    with pytest.raises(HostNotAllowedError) as caught:
        normalize_gitlab_host("https://alice:s3cr3t-pa55@gitlab.example.com/")

    assert "user name, password or token" in caught.value.message
    for secret in ("alice", "s3cr3t-pa55"):
        assert secret not in caught.value.message
        assert secret not in caught.value.host
        assert secret not in str(caught.value)


def test_token_in_the_query_string_is_not_echoed() -> None:
    with pytest.raises(HostNotAllowedError) as caught:
        normalize_gitlab_host(
            "https://gitlab.example.com/api/v4/user?private_token=glpat-0123456789abcdefghij"
        )

    assert "query string" in caught.value.message
    assert "glpat" not in str(caught.value)
    assert caught.value.host == "gitlab.example.com"


def test_token_pasted_into_the_host_field_is_not_echoed() -> None:
    with pytest.raises(HostNotAllowedError) as caught:
        normalize_gitlab_host("glpat-0123456789abcdefghij")

    assert "looks like an access token" in caught.value.message
    assert "0123456789" not in str(caught.value)


# --------------------------------------------------------------------------------------------
# The guard: refusals
# --------------------------------------------------------------------------------------------


async def test_public_name_over_https_is_allowed() -> None:
    resolver = FakeResolver({"gitlab.example.com": [PUBLIC_V4, PUBLIC_V6]})
    host_guard = HostGuard(allowlist=(), resolver=resolver)

    await host_guard.check(normalize_gitlab_host("gitlab.example.com:8443"))

    assert resolver.calls == [("gitlab.example.com", 8443)]


async def test_http_is_refused_saying_only_https_is_allowed() -> None:
    with pytest.raises(HostNotAllowedError) as caught:
        await guard({"gitlab.example.com": [PUBLIC_V4]}).check(
            normalize_gitlab_host("http://gitlab.example.com")
        )

    assert "only https:// is allowed" in caught.value.message
    assert "GIT_HOST_ALLOWLIST" in caught.value.message


async def test_http_is_refused_when_only_some_other_network_is_allowlisted() -> None:
    host_guard = guard({"gitlab.example.com": [PUBLIC_V4]}, allowlist=["10.0.0.0/8"])

    with pytest.raises(HostNotAllowedError, match="only https:// is allowed"):
        await host_guard.check(normalize_gitlab_host("http://gitlab.example.com"))


@pytest.mark.parametrize(
    "raw",
    [
        "127.0.0.1",
        "127.1",
        "0x7f.0.0.1",
        "2130706433",
        "0177.0.0.1",
        "https://[::1]/",
        "https://[::ffff:127.0.0.1]/",
        "https://[fe80::1%25eth0]/",
        "10.0.0.1",
        PUBLIC_V4,  # a hostname, never an IP: even a public one
    ],
)
async def test_ip_literal_host_is_refused(raw: str) -> None:
    resolver = FakeResolver()
    host_guard = HostGuard(allowlist=(), resolver=resolver)

    with pytest.raises(HostNotAllowedError) as caught:
        await host_guard.check(normalize_gitlab_host(raw))

    assert "is an IP address" in caught.value.message
    assert resolver.calls == []


@pytest.mark.parametrize(
    "raw", ["localhost", "localhost.", "LOCALHOST", "gitlab.localhost", "https://localhost:8443"]
)
async def test_localhost_names_are_refused_without_asking_dns(raw: str) -> None:
    resolver = FakeResolver({"localhost": [PUBLIC_V4], "gitlab.localhost": [PUBLIC_V4]})
    host_guard = HostGuard(allowlist=(), resolver=resolver)

    with pytest.raises(HostNotAllowedError, match=r"this machine \(localhost\)"):
        await host_guard.check(normalize_gitlab_host(raw))

    assert resolver.calls == []


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "a loopback address"),
        ("10.0.0.5", "a private address"),
        ("10.255.255.255", "a private address"),
        ("172.16.0.1", "a private address"),
        ("172.31.255.254", "a private address"),
        ("192.168.1.10", "a private address"),
        ("169.254.1.1", "a link-local address"),
        ("169.254.169.254", "the cloud metadata address"),
        ("100.64.0.1", "a shared (carrier-grade NAT) address"),
        ("0.0.0.0", "an unspecified address"),
        ("224.0.0.1", "a multicast address"),
        ("240.0.0.1", "address"),
        ("::1", "a loopback address"),
        ("::", "an unspecified address"),
        ("fe80::1", "a link-local address"),
        ("fe80::1%eth0", "a link-local address"),
        ("fc00::1", "a private address"),
        ("fd12:3456::1", "a private address"),
        ("fd00:ec2::254", "the cloud metadata address"),
        ("ff02::1", "a multicast address"),
        ("::ffff:10.0.0.1", "an IPv6 address embedding a private address (10.0.0.1)"),
        ("::ffff:127.0.0.1", "an IPv6 address embedding a loopback address (127.0.0.1)"),
        ("2002:a00:1::1", "an IPv6 address embedding a private address (10.0.0.1)"),  # 6to4
        ("64:ff9b::a9fe:a9fe", "embedding the cloud metadata address (169.254.169.254)"),  # NAT64
    ],
)
async def test_name_resolving_to_a_non_public_address_is_refused(address: str, kind: str) -> None:
    host_guard = guard({"gitlab.example.com": [address]})

    with pytest.raises(HostNotAllowedError) as caught:
        await host_guard.check(normalize_gitlab_host("gitlab.example.com"))

    # The user learns that it is not public, never which address it is (issue 11, item 7).
    assert caught.value.message == (
        "gitlab.example.com resolves to an address that is not public; "
        "such hosts are refused unless the operator allows them in GIT_HOST_ALLOWLIST."
    )
    assert address not in caught.value.message
    assert kind in str(forbidden_reason(ipaddress.ip_address(address)))
    assert caught.value.host == "gitlab.example.com"


async def test_name_resolving_to_metadata_address_is_refused() -> None:
    host_guard = guard({"metadata.attacker.example": ["169.254.169.254"]})

    with pytest.raises(HostNotAllowedError) as caught:
        await host_guard.check(normalize_gitlab_host("https://metadata.attacker.example/"))

    assert caught.value.message == (
        "metadata.attacker.example resolves to an address that is not public; "
        "such hosts are refused unless the operator allows them in GIT_HOST_ALLOWLIST."
    )


async def test_name_with_one_private_address_among_public_ones_is_refused() -> None:
    host_guard = guard({"gitlab.example.com": [PUBLIC_V4, "10.0.0.5", PUBLIC_V6]})

    with pytest.raises(HostNotAllowedError, match="not public"):
        await host_guard.check(normalize_gitlab_host("gitlab.example.com"))


async def test_name_that_does_not_resolve_is_unavailable_not_refused() -> None:
    with pytest.raises(ProviderUnavailableError) as caught:
        await guard().check(normalize_gitlab_host("gitlab.does-not-exist.example"))

    assert caught.value.message == (
        "gitlab.does-not-exist.example could not be found in DNS; check the spelling of the host."
    )


async def test_temporary_dns_failure_is_unavailable() -> None:
    async def flaky(host: str, port: int) -> Sequence[str]:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    host_guard = HostGuard(allowlist=(), resolver=flaky)

    with pytest.raises(ProviderUnavailableError, match="could not be looked up in DNS right now"):
        await host_guard.check(normalize_gitlab_host("gitlab.example.com"))


async def test_slow_dns_is_unavailable() -> None:
    async def slow(host: str, port: int) -> Sequence[str]:
        await asyncio.sleep(5)
        return [PUBLIC_V4]

    host_guard = HostGuard(allowlist=(), resolver=slow, resolve_timeout=0.01)

    with pytest.raises(ProviderUnavailableError, match="took too long"):
        await host_guard.check(normalize_gitlab_host("gitlab.example.com"))


async def test_scheme_other_than_http_or_https_is_refused_even_when_built_by_hand() -> None:
    with pytest.raises(HostNotAllowedError, match="Only https://"):
        await guard().check(ParsedHost(scheme="ftp", hostname="gitlab.example.com"))


# --------------------------------------------------------------------------------------------
# The guard: trusted and allowlisted hosts
# --------------------------------------------------------------------------------------------


async def test_a_configured_address_passes_for_its_own_host_without_being_resolved() -> None:
    resolver = FakeResolver()
    configured = [
        ConfiguredOrigin.of("https://GitLab.com/", GitProvider.GITLAB),
        ConfiguredOrigin.of("https://api.github.com", GitProvider.GITHUB),
    ]
    host_guard = HostGuard(allowlist=(), configured=configured, resolver=resolver)

    await host_guard.check(normalize_gitlab_host("gitlab.com"), GitProvider.GITLAB)
    await host_guard.check(normalize_gitlab_host("https://api.github.com"), GitProvider.GITHUB)

    assert resolver.calls == []
    assert host_guard.is_configured("GITLAB.COM.", 443)
    assert not host_guard.is_configured("gitlab.com", 8443)


@pytest.mark.parametrize(
    "typed",
    [
        "https://api.github.com",  # GitHub's address, typed as a GitLab host
        "http://gitlab.example.com",  # the configured name with another scheme
        "https://gitlab.example.com:8443",  # ... or another port
    ],
)
async def test_a_configured_address_is_trusted_only_as_configured_and_for_its_own_host(typed: str) -> None:
    configured = [
        ConfiguredOrigin.of("https://gitlab.example.com", GitProvider.GITLAB),
        ConfiguredOrigin.of("https://api.github.com", GitProvider.GITHUB),
    ]
    resolver = FakeResolver({"api.github.com": ["10.0.0.7"], "gitlab.example.com": ["10.0.0.8"]})
    host_guard = HostGuard(allowlist=(), configured=configured, resolver=resolver)

    with pytest.raises(HostNotAllowedError):
        await host_guard.check(normalize_gitlab_host(typed), GitProvider.GITLAB)


async def test_another_hosts_configured_address_says_what_it_is() -> None:
    host_guard = guard(configured=[ConfiguredOrigin.of("http://localhost:18101", GitProvider.GITHUB)])

    with pytest.raises(HostNotAllowedError) as caught:
        await host_guard.check(normalize_gitlab_host("http://localhost:18101"), GitProvider.GITLAB)

    assert caught.value.message == (
        "localhost:18101 is this service's GitHub address; it cannot be used as a GitLab host."
    )


async def test_allowlisted_name_may_be_private_and_use_http() -> None:
    resolver = FakeResolver({"gitlab.internal": ["10.0.0.5"]})
    host_guard = HostGuard(allowlist=["gitlab.internal"], resolver=resolver)

    await host_guard.check(normalize_gitlab_host("http://gitlab.internal"))
    await host_guard.check(normalize_gitlab_host("https://GITLAB.INTERNAL.:8443/gitlab"))


async def test_allowlisted_name_with_port_only_allows_that_port() -> None:
    host_guard = guard({"gitlab.internal": ["10.0.0.5"]}, allowlist=["gitlab.internal:8080"])

    await host_guard.check(normalize_gitlab_host("http://gitlab.internal:8080"))
    with pytest.raises(HostNotAllowedError, match="only https://"):
        await host_guard.check(normalize_gitlab_host("http://gitlab.internal"))
    with pytest.raises(HostNotAllowedError, match="not public"):
        await host_guard.check(normalize_gitlab_host("https://gitlab.internal:8443"))


async def test_allowlisted_ip_literal_is_accepted_over_http() -> None:
    host_guard = guard(allowlist=["127.0.0.1", "::1"])

    await host_guard.check(normalize_gitlab_host("http://127.0.0.1:8080"))
    await host_guard.check(normalize_gitlab_host("http://127.1:8080"))
    await host_guard.check(normalize_gitlab_host("http://[::1]:8080"))
    with pytest.raises(HostNotAllowedError, match="is an IP address"):
        await host_guard.check(normalize_gitlab_host("http://127.0.0.2"))


async def test_name_resolving_into_an_allowlisted_cidr_is_accepted_over_http() -> None:
    host_guard = guard({"gitlab.corp.example": ["10.1.2.3", "10.9.9.9"]}, allowlist=["10.0.0.0/8"])

    await host_guard.check(normalize_gitlab_host("http://gitlab.corp.example"))
    await host_guard.check(normalize_gitlab_host("gitlab.corp.example"))


async def test_name_partly_outside_the_allowlisted_cidr_is_refused() -> None:
    host_guard = guard({"gitlab.corp.example": ["10.1.2.3", "192.168.0.1"]}, allowlist=["10.0.0.0/8"])

    with pytest.raises(HostNotAllowedError, match="not public") as caught:
        await host_guard.check(normalize_gitlab_host("gitlab.corp.example"))
    assert "192.168" not in caught.value.message


async def test_allowlisted_localhost_is_accepted() -> None:
    await guard(allowlist=["localhost"]).check(normalize_gitlab_host("http://localhost.:8080"))


def test_allowlist_matches_names_addresses_and_cidrs() -> None:
    host_guard = guard(
        allowlist=[
            " gitlab.internal ",
            "ci.internal:8080",
            "127.0.0.1",
            "[::1]",
            "10.0.0.0/8",
            "",
            "bücher.internal",
        ]
    )

    assert host_guard.is_allowlisted("GITLAB.internal.")
    assert host_guard.is_allowlisted("gitlab.internal", 443)
    assert host_guard.is_allowlisted("ci.internal", 8080)
    assert not host_guard.is_allowlisted("ci.internal", 443)
    assert not host_guard.is_allowlisted("ci.internal")
    assert host_guard.is_allowlisted("127.0.0.1")
    assert host_guard.is_allowlisted("0x7f.0.0.1")
    assert host_guard.is_allowlisted("[::1]")
    assert host_guard.is_allowlisted("::ffff:127.0.0.1")
    assert host_guard.is_allowlisted("10.200.3.4")
    assert host_guard.is_allowlisted("xn--bcher-kva.internal")
    assert not host_guard.is_allowlisted("10.gitlab.internal")
    assert not host_guard.is_allowlisted("127.0.0.2")
    assert not host_guard.is_allowlisted("192.168.1.1")
    assert not host_guard.is_allowlisted("gitlab.example.com")


@pytest.mark.parametrize(
    "entry", ["not a host", "gitlab.internal:http", "*.internal", "10.0.0.0/33", "999.1.1.1"]
)
def test_invalid_allowlist_entry_is_a_configuration_error(entry: str) -> None:
    with pytest.raises(ConfigurationError, match="GIT_HOST_ALLOWLIST"):
        HostGuard(allowlist=[entry])


@pytest.mark.parametrize(
    "address", [PUBLIC_V4, PUBLIC_V6, "::ffff:93.184.216.34", "2002:5db8:d822::1", "64:ff9b::5db8:d822"]
)
def test_public_addresses_have_no_reason_to_be_refused(address: str) -> None:
    assert forbidden_reason(ipaddress.ip_address(address)) is None


async def test_system_resolver_returns_ip_strings() -> None:
    # An IP literal: the operating system answers without asking any DNS server.
    assert await system_resolver("127.0.0.1", 80) == ["127.0.0.1"]


# --------------------------------------------------------------------------------------------
# The guarded network backend, against a real server on 127.0.0.1
# --------------------------------------------------------------------------------------------


@asynccontextmanager
async def local_http_server() -> AsyncIterator[tuple[int, list[str]]]:
    """A tiny HTTP server on 127.0.0.1; yields its port and the peers that connected."""
    peers: list[str] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peers.append(str(writer.get_extra_info("peername")[0]))
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = int(server.sockets[0].getsockname()[1])
    try:
        yield port, peers
    finally:
        server.close()
        await server.wait_closed()


async def get_through(host_guard: HostGuard, url: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=guarded_transport(host_guard), follow_redirects=False) as client:
        return await client.get(url)


async def test_connecting_to_a_name_resolving_to_loopback_is_refused() -> None:
    async with local_http_server() as (port, peers):
        host_guard = guard({"gitlab.test": ["127.0.0.1"]})

        with pytest.raises(httpx.ConnectError) as caught:
            await get_through(host_guard, f"http://gitlab.test:{port}/")

    assert isinstance(caught.value.__cause__, HostRefusedError)
    assert "gitlab.test resolves to an address that is not public" in str(caught.value)
    assert "127.0.0.1" not in str(caught.value)
    assert peers == []


async def test_connecting_to_an_allowlisted_name_reaches_the_vetted_address() -> None:
    async with local_http_server() as (port, peers):
        host_guard = guard({"gitlab.test": ["127.0.0.1"]}, allowlist=["gitlab.test"])

        response = await get_through(host_guard, f"http://gitlab.test:{port}/")

    assert (response.status_code, response.text) == (200, "ok")
    assert peers == ["127.0.0.1"]


async def test_connecting_to_a_name_inside_an_allowlisted_cidr_succeeds() -> None:
    async with local_http_server() as (port, peers):
        host_guard = guard({"gitlab.test": ["127.0.0.1"]}, allowlist=["127.0.0.0/8"])

        response = await get_through(host_guard, f"http://gitlab.test:{port}/")

    assert response.status_code == 200
    assert peers == ["127.0.0.1"]


async def test_allowlist_entry_for_another_port_does_not_open_this_one() -> None:
    async with local_http_server() as (port, peers):
        host_guard = guard({"gitlab.test": ["127.0.0.1"]}, allowlist=[f"gitlab.test:{port + 1}"])

        with pytest.raises(httpx.ConnectError, match="not public"):
            await get_through(host_guard, f"http://gitlab.test:{port}/")

    assert peers == []


async def test_connecting_to_an_ip_literal_is_refused_unless_allowlisted() -> None:
    async with local_http_server() as (port, peers):
        with pytest.raises(httpx.ConnectError, match=r"IP address 127\.0\.0\.1 was refused"):
            await get_through(guard(), f"http://127.0.0.1:{port}/")
        assert peers == []

        response = await get_through(guard(allowlist=["127.0.0.1"]), f"http://127.0.0.1:{port}/")

    assert response.status_code == 200


async def test_dns_rebinding_after_the_check_is_refused_at_connect() -> None:
    resolver = SequenceResolver([PUBLIC_V4], ["127.0.0.1"])
    host_guard = HostGuard(allowlist=(), resolver=resolver)
    async with local_http_server() as (port, peers):
        await host_guard.check(normalize_gitlab_host(f"gitlab.rebind.test:{port}"))

        with pytest.raises(httpx.ConnectError, match="not public"):
            await get_through(host_guard, f"https://gitlab.rebind.test:{port}/")

    assert peers == []


async def test_connecting_to_a_name_that_does_not_resolve_fails_cleanly() -> None:
    with pytest.raises(httpx.ConnectError, match="could not be found in DNS") as caught:
        await get_through(guard(), "https://gitlab.nowhere.test/")

    cause = caught.value.__cause__
    assert isinstance(cause, HostRefusedError)
    assert cause.unresolvable


async def test_a_configured_address_connects_without_the_guard_but_only_on_its_port() -> None:
    async with local_http_server() as (port, peers), local_http_server() as (other_port, other_peers):
        configured = [ConfiguredOrigin.of(f"http://127.0.0.1:{port}", GitProvider.GITLAB)]
        response = await get_through(guard(configured=configured), f"http://127.0.0.1:{port}/")
        with pytest.raises(httpx.ConnectError, match=r"IP address 127\.0\.0\.1 was refused"):
            await get_through(guard(configured=configured), f"http://127.0.0.1:{other_port}/")

    assert response.status_code == 200
    assert peers == ["127.0.0.1"]
    assert other_peers == []


def test_guarded_transport_refuses_proxies_and_unix_sockets() -> None:
    host_guard = guard()

    with pytest.raises(ValueError, match="proxy"):
        guarded_transport(host_guard, proxy="http://proxy.internal:3128")
    with pytest.raises(ValueError, match="uds"):
        guarded_transport(host_guard, uds="/tmp/socket")  # noqa: S108 - never opened


def test_guarded_transport_keeps_the_options_it_was_given() -> None:
    transport = guarded_transport(guard(), http2=False, retries=0, limits=httpx.Limits(max_connections=3))

    assert isinstance(transport, httpx.AsyncHTTPTransport)
    assert transport._pool._max_connections == 3
