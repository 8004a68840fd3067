"""The socket ``serve --workers N`` listens on: connections it accepts have Nagle's algorithm off."""

from __future__ import annotations

import asyncio
import socket

import pytest

from app.__main__ import tcp_listening_socket


async def test_connections_accepted_on_the_shared_socket_have_tcp_nodelay() -> None:
    loop = asyncio.get_running_loop()
    nodelay: asyncio.Future[int] = loop.create_future()

    class Accepted(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            accepted = transport.get_extra_info("socket")
            nodelay.set_result(accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    with tcp_listening_socket("127.0.0.1", 0) as sock:
        assert sock.proto == socket.IPPROTO_TCP
        assert sock.get_inheritable()  # the worker processes get it
        server = await loop.create_server(Accepted, sock=sock)
        async with server:
            _, writer = await asyncio.open_connection(*sock.getsockname())
            assert await asyncio.wait_for(nodelay, 5) != 0
            writer.close()


def test_a_port_in_use_is_refused() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError, match="in use"):
            tcp_listening_socket(*taken.getsockname()).close()
