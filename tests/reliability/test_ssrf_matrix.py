"""The SSRF matrix for the ``host`` a user types into ``connectGitToken``: one parametrized test through the API.

Every spelling of loopback, private ranges, link-local and metadata addresses (literal, or as a name
resolving to one), a redirect to the metadata address, a DNS answer that changes between the check and
the connection, and hosts the operator allowlisted. The service runs with the HTTP client it builds in
production (the SSRF guard in its network backend); DNS is a table in the test; and every TCP connection
is checked to go to 127.0.0.1 (``jail_connections``), so a guard that let something through fails the
test instead of sending a packet anywhere. A refused host must cost no request at all and store nothing.

The guard's rules one by one, with their messages, are in tests/unit/test_guard.py; through the API
with respx (no real connections) in tests/api/test_connect_token.py.
"""

from __future__ import annotations

import contextlib
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from tests.conftest import GraphQLTestClient, running_app
from tests.fakes import scenarios
from tests.fakes.gitlab import FakeGitLab
from tests.fakes.server import run_in_thread
from tests.reliability.support import CLASSIC, GITLAB_TOKEN, documents, jail_connections, module_settings

PUBLIC = "93.184.216.34"  # only ever an answer of the test's DNS; no connection may go there
CONNECT = """mutation($input: ConnectGitTokenInput!) { connectGitToken(input: $input) {
  __typename ... on Error { code message } ... on HostNotAllowedError { host }
  ... on Integration { host account { login } } } }"""

DNS: dict[str, list[str]] = {
    "gitlab.example.com": [PUBLIC],
    "loopback.example.com": ["127.0.0.1"],
    "loopback6.example.com": ["::1"],
    "mapped.example.com": ["::ffff:127.0.0.1"],
    "private.example.com": ["10.1.2.3"],
    "private172.example.com": ["172.16.5.4"],
    "private192.example.com": ["192.168.0.10"],
    "ula.example.com": ["fd12:3456::1"],
    "cgnat.example.com": ["100.64.0.1"],
    "linklocal.example.com": ["169.254.10.20"],
    "linklocal6.example.com": ["fe80::1"],
    "metadata.example.com": ["169.254.169.254"],
    "metadata6.example.com": ["fd00:ec2::254"],
    "nat64-metadata.example.com": ["64:ff9b::a9fe:a9fe"],
    "mixed.example.com": [PUBLIC, "10.0.0.1"],
    "gitlab.internal.test": ["127.0.0.1"],
    "redirect.internal.test": ["127.0.0.1"],
    "other.internal.test": ["127.0.0.1"],
}
REBINDING = "rebind.example.com"  # public when checked, loopback when connected to


class TableResolver:
    """The test's DNS. ``rebind.example.com`` answers a public address once, then loopback."""

    def __init__(self) -> None:
        self.lookups: list[str] = []

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.lookups.append(host)
        if host == REBINDING:
            return [PUBLIC] if self.lookups.count(host) == 1 else ["127.0.0.1"]
        if host not in DNS:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return DNS[host]


@dataclass(frozen=True)
class Case:
    host: str  # as typed; "{gitlab}" and "{redirect}" stand for the loopback fakes' ports
    allowlist: tuple[str, ...] = ()
    accepted: bool = False


REFUSED = [
    # loopback, in every spelling a resolver accepts
    *["127.0.0.1", "127.1", "0x7f.0.0.1", "0x7f.1", "0177.0.0.1", "2130706433", "0x7f000001"],
    *["https://127.0.0.1:8443/", "[::1]", "https://[::1]:443/", "[::ffff:127.0.0.1]", "[0:0:0:0:0:0:0:1]"],
    *["localhost", "localhost.", "LOCALHOST", "gitlab.localhost", "https://localhost:8443"],
    *["0.0.0.0", "0", "[::]"],
    # private ranges and link-local
    *["10.0.0.1", "172.16.0.1", "192.168.1.1", "100.64.0.1", "[fc00::1]", "[::ffff:10.0.0.1]"],
    *["169.254.1.1", "[fe80::1]"],
    # cloud metadata
    *["169.254.169.254", "http://169.254.169.254/latest/meta-data/", "[fd00:ec2::254]"],
    # names resolving to any of those
    *["loopback.example.com", "loopback6.example.com", "mapped.example.com"],
    *["private.example.com", "private172.example.com", "private192.example.com", "ula.example.com"],
    *["cgnat.example.com", "linklocal.example.com", "linklocal6.example.com"],
    *["metadata.example.com", "metadata6.example.com", "nat64-metadata.example.com", "mixed.example.com"],
    # plain http and credentials
    *["http://gitlab.example.com", "https://user:secret@gitlab.example.com"],
]
CASES = [
    *(pytest.param(Case(host), id=host) for host in REFUSED),
    pytest.param(Case(REBINDING), id="DNS answer changes between check and connect"),
    pytest.param(
        Case("http://redirect.internal.test:{redirect}", ("redirect.internal.test",)),
        id="host answers 302 to the metadata address",
    ),
    pytest.param(
        Case("http://other.internal.test:{gitlab}", ("gitlab.internal.test",)),
        id="allowlisting one name does not open another",
    ),
    pytest.param(
        Case("http://gitlab.internal.test:{gitlab}", ("gitlab.internal.test",), accepted=True),
        id="allowlisted name",
    ),
    pytest.param(
        Case("http://gitlab.internal.test:{gitlab}", ("127.0.0.0/8",), accepted=True),
        id="name inside an allowlisted network",
    ),
]


@dataclass
class Loopback:
    gitlab: FakeGitLab
    gitlab_port: int
    redirect_port: int
    redirects: list[str]


@pytest.fixture(scope="module")
def loopback() -> Iterator[Loopback]:
    """A self-hosted GitLab, and a host that redirects everything to the metadata address."""
    gitlab = scenarios.default_gitlab(FakeGitLab(), repositories=1)
    redirects: list[str] = []

    async def redirect(request: Request) -> Response:
        redirects.append(request.url.path)
        return RedirectResponse("http://169.254.169.254/latest/meta-data/", status_code=302)

    redirector = Starlette(routes=[Route("/{path:path}", redirect, methods=["GET", "POST"])])
    with run_in_thread(gitlab.app) as gitlab_url, run_in_thread(redirector) as redirect_url:
        yield Loopback(gitlab, _port(gitlab_url), _port(redirect_url), redirects)


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


@dataclass
class Service:
    api: GraphQLTestClient
    resolver: TableResolver
    db: Any  # the raw database


ServiceFor = Callable[[tuple[str, ...]], Awaitable[Service]]


@pytest.fixture(scope="module")
async def service_for(mongo_uri: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServiceFor]:
    """The service with its production HTTP client and the test's DNS, one per allowlist (started once)."""
    base = module_settings(mongo_uri, tmp_path_factory.mktemp("ssrf"))
    services: dict[tuple[str, ...], Service] = {}
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_uri)
    async with contextlib.AsyncExitStack() as stack:

        async def start(allowlist: tuple[str, ...]) -> Service:
            if allowlist not in services:
                configured = replace(base, git_host_allowlist=allowlist)
                resolver = TableResolver()
                app = await stack.enter_async_context(running_app(configured, resolver=resolver))
                http = await stack.enter_async_context(
                    httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
                )
                services[allowlist] = Service(
                    GraphQLTestClient(http, configured), resolver, mongo[base.mongodb_database]
                )
            service = services[allowlist]
            service.resolver.lookups.clear()
            return service

        yield start
    await mongo.drop_database(base.mongodb_database)
    await mongo.close()


@pytest.mark.parametrize("case", CASES)
async def test_connecting_a_gitlab_host(
    service_for: ServiceFor, loopback: Loopback, monkeypatch: pytest.MonkeyPatch, case: Case
) -> None:
    connections = jail_connections(monkeypatch)
    service = await service_for(case.allowlist)
    user = f"user-{uuid.uuid4().hex[:8]}"
    host = case.host.format(gitlab=loopback.gitlab_port, redirect=loopback.redirect_port)
    loopback.gitlab.clear_requests()
    loopback.redirects.clear()

    body = await service.api.execute(
        CONNECT, {"input": {"provider": "GITLAB", "token": GITLAB_TOKEN, "host": host}}, user=user
    )

    result = body["data"]["connectGitToken"]
    stored = await documents(service.db, "integrations", {"owner": user})
    assert set(connections) <= {"127.0.0.1"}
    if case.accepted:
        assert result["__typename"] == "Integration", result
        assert result["account"]["login"] == "alice"
        assert connections, "an allowlisted host is really connected to"
        assert len(stored) == 1
        return
    assert result["__typename"] == "HostNotAllowedError", result
    assert "secret" not in result["message"] and "secret" not in result["host"]
    assert GITLAB_TOKEN not in str(body)
    assert stored == []
    assert loopback.gitlab.requests == []
    if "redirect" in host:
        assert loopback.redirects == ["/api/v4/personal_access_tokens/self"], "asked once, never followed"
    else:
        assert connections == [], "a refused host costs no connection at all"
        assert loopback.redirects == []


PASTED = [
    "{token}",
    "https://{token}",
    "https://gitlab.example.com/{token}",
    "gitlab.example.com/{token}/",
    "https://gitlab.example.com/{token}/api/v4",
    "https://gitlab.example.com/{token}/-/profile",
    "https://{token}@gitlab.example.com",
    "https://oauth2:{token}@gitlab.example.com",
    "https://gitlab.example.com/?private_token={token}",
    "https://gitlab.example.com/#{token}",
    "git@gitlab.example.com:{token}/project.git",
]


async def test_a_token_pasted_into_the_host_field_is_never_echoed(
    service_for: ServiceFor, monkeypatch: pytest.MonkeyPatch
) -> None:
    connections = jail_connections(monkeypatch)
    service = await service_for(())
    tokens = [CLASSIC, GITLAB_TOKEN, "github_pat_" + "P" * 82, "glrt-" + "R" * 20, "gho_" + "O" * 36]
    for provider in ("GITLAB", "GITHUB"):
        for token in tokens:
            for placement in PASTED:
                host = placement.format(token=token)
                body = await service.api.execute(
                    CONNECT, {"input": {"provider": provider, "token": "x" * 40, "host": host}}
                )
                result = body["data"]["connectGitToken"]
                assert result["__typename"] == "HostNotAllowedError", (host, result)
                assert token not in str(body) and token[8:] not in str(body), (host, result)
    assert connections == []
