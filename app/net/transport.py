"""The guarded transport: every connection to a host goes through ``HostGuard.decide`` first.

Layers, outermost first (a transport that wraps a transport, as httpx composes them):

    httpx.AsyncClient (per-operation timeouts, never following redirects)   guarded_client()
      └─ BodyLimitTransport, OriginRouter, PoolGate, DeadlineTransport    app.net.transports
           └─ httpx.AsyncHTTPTransport (pooling, TLS): one pool for the configured hosts, one for
              hosts users typed                                          guarded_transport()
                └─ GuardedNetworkBackend (resolve, vet, connect to the vetted IP)
                     └─ httpcore.AnyIOBackend (the sockets)

The retry and rate-limit policy and the per-user cap on requests in flight sit above the client, in
``app.net.client.HostHTTP`` and ``app.net.accounting``; none of it is in the host packages.

httpx 0.28 takes no ``network_backend`` argument, so ``guarded_transport`` installs the backend
through the one private hook below; ``tests/unit/test_transport.py`` fails loudly when a new httpx or
httpcore moves it.
"""

from __future__ import annotations

import typing
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

from app.net.decoding import ACCEPTED_ENCODINGS
from app.net.guard import HostGuard, HostRefusedError
from app.net.transports import (
    BodyLimitTransport,
    DeadlineTransport,
    Origin,
    OriginRouter,
    PoolGate,
    RefuseFakeHosts,
)


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """Resolves, vets and then connects to the vetted IP, so DNS rebinding cannot slip past."""

    def __init__(self, guard: HostGuard, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._guard = guard
        self._inner = inner if inner is not None else httpcore.AnyIOBackend()

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


def guarded_transport(guard: HostGuard, **kwargs: Any) -> httpx.AsyncHTTPTransport:
    """``httpx.AsyncHTTPTransport(**kwargs)`` whose connections go through ``GuardedNetworkBackend``.

    The private hook: ``AsyncHTTPTransport.__init__`` builds an ``httpcore.AsyncConnectionPool`` as
    ``self._pool`` with the default backend, and the pool stores it as ``_network_backend`` and hands
    it to every connection it creates. No connection exists yet, so replacing the pool's backend
    right after construction puts every future connection through the guard. Proxies and Unix
    sockets are refused: through them the guard would vet the proxy (or nothing), not the Git host.
    If httpx/httpcore rename these attributes this fails loudly rather than connecting unguarded.
    """
    for option in ("proxy", "uds"):
        if kwargs.get(option) is not None:
            raise ValueError(f"The guarded transport does not support {option!r}.")
    transport = httpx.AsyncHTTPTransport(**kwargs)
    pool = getattr(transport, "_pool", None)
    if type(pool) is not httpcore.AsyncConnectionPool or not hasattr(pool, "_network_backend"):
        raise RuntimeError("httpx/httpcore internals changed: cannot install the host guard.")
    pool._network_backend = GuardedNetworkBackend(guard)
    return transport


@dataclass(frozen=True)
class PoolSizes:
    """Connections to Git hosts, per process: the configured hosts' pool and the pool of hosts users typed."""

    configured: int = 200
    typed: int = 50
    # How long a request waits for a free connection before it fails (never longer than the deadline).
    wait_seconds: float = 5.0


# Bodies the service reads from a host, at most (decompressed). A GitHub page of 100 repositories is
# about 600 KB, a GitLab page of 100 projects about 500 KB; nothing the service asks for comes near this.
MAX_ANSWER_BYTES = 5 * 1024 * 1024


def guarded_client(
    guard: HostGuard,
    *,
    timeout_seconds: float,
    user_agent: str,
    configured_origins: Collection[Origin] = (),
    pools: PoolSizes = PoolSizes(),
    max_answer_bytes: int = MAX_ANSWER_BYTES,
    refuse_fake_hosts: bool = False,
) -> httpx.AsyncClient:
    """The service's one client for Git hosts: guarded, pooled, bounded in time and size, never redirected.

    ``configured_origins``: the operator's hosts, ``(scheme, host, port)`` (``transports.origin_of``);
    every other host shares the smaller pool. ``timeout_seconds`` is each call's one deadline.
    ``refuse_fake_hosts`` (production): an answer from a fake Git host of the tests or ``make demo`` fails.
    """
    wait = min(pools.wait_seconds, timeout_seconds)

    def pool(connections: int) -> httpx.AsyncBaseTransport:
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=min(50, connections))
        # The deadline starts once a connection is the request's: waiting for one has its own bound.
        calls = DeadlineTransport(guarded_transport(guard, retries=0, limits=limits), timeout_seconds)
        return PoolGate(calls, connections, wait)

    router = OriginRouter(configured_origins, pool(pools.configured), pool(pools.typed))
    transport: httpx.AsyncBaseTransport = BodyLimitTransport(router, max_answer_bytes)
    if refuse_fake_hosts:
        transport = RefuseFakeHosts(transport)
    return httpx.AsyncClient(
        transport=transport,
        # The deadline above bounds the whole call; these bound each step, as before.
        timeout=httpx.Timeout(timeout_seconds, connect=min(5.0, timeout_seconds)),
        follow_redirects=False,
        headers={"User-Agent": user_agent, "Accept-Encoding": ACCEPTED_ENCODINGS},
    )
