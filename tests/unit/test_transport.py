"""The one private hook into httpx/httpcore (app/net/transport.py), pinned by these tests.

httpx 0.28 has no public way to give ``AsyncHTTPTransport`` a network backend, so the guard's backend is
put into the transport's connection pool after construction. If a new httpx or httpcore moves those
attributes, these tests fail loudly — before the service could connect anywhere unguarded.
"""

from __future__ import annotations

import httpcore
import httpx
import pytest

from app.net.guard import HostGuard
from app.net.transport import (
    MAX_ANSWER_BYTES,
    GuardedNetworkBackend,
    PoolSizes,
    guarded_client,
    guarded_transport,
)
from app.net.transports import BodyLimitTransport, DeadlineTransport, OriginRouter, PoolGate, origin_of


def test_the_pinned_httpx_builds_the_pool_the_guard_is_installed_into() -> None:
    transport = httpx.AsyncHTTPTransport()

    pool = transport._pool
    assert type(pool) is httpcore.AsyncConnectionPool, "httpx no longer keeps an httpcore pool in _pool"
    assert isinstance(pool._network_backend, httpcore.AsyncNetworkBackend), (
        "httpcore no longer keeps the backend it connects through in _network_backend"
    )


def test_every_connection_of_the_guarded_transport_goes_through_the_guard() -> None:
    transport = guarded_transport(HostGuard())

    assert isinstance(transport._pool._network_backend, GuardedNetworkBackend)


def test_the_services_client_is_guarded_bounded_and_never_follows_redirects() -> None:
    client = guarded_client(
        HostGuard(),
        timeout_seconds=3,
        user_agent="test",
        configured_origins=[origin_of("https://api.github.com")],
        pools=PoolSizes(configured=20, typed=5),
    )

    body_limit = client._transport
    assert isinstance(body_limit, BodyLimitTransport)
    assert body_limit._max_bytes == MAX_ANSWER_BYTES
    router = body_limit._inner
    assert isinstance(router, OriginRouter)
    assert router.routes_to_configured("https://api.github.com/user/repos")
    assert router.routes_to_configured("https://API.github.com:443/user")
    assert not router.routes_to_configured("http://api.github.com/user")  # another scheme, another origin
    assert not router.routes_to_configured("https://gitlab.example.com/api/v4/user")
    for gate, connections in ((router._configured_transport, 20), (router._other, 5)):
        assert isinstance(gate, PoolGate)
        deadline = gate._inner
        assert isinstance(deadline, DeadlineTransport)
        assert deadline._seconds == 3
        pool = deadline._inner
        assert isinstance(pool, httpx.AsyncHTTPTransport)
        assert isinstance(pool._pool._network_backend, GuardedNetworkBackend)
        assert pool._pool._max_connections == connections
    assert client.follow_redirects is False
    assert client.timeout.read == 3
    assert client.headers["accept-encoding"] == "gzip, deflate"  # only what BodyLimitTransport decodes


def test_a_transport_without_the_expected_pool_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # What a future httpx that renames its pool would look like to the hook.
    original = httpx.AsyncHTTPTransport.__init__

    def renamed(self: httpx.AsyncHTTPTransport, **kwargs: object) -> None:
        original(self, **kwargs)  # type: ignore[arg-type]
        self._connection_pool = self._pool  # type: ignore[attr-defined]
        del self._pool

    monkeypatch.setattr(httpx.AsyncHTTPTransport, "__init__", renamed)

    with pytest.raises(RuntimeError, match="internals changed"):
        guarded_transport(HostGuard())
