"""Serve an ASGI app on 127.0.0.1 with uvicorn: in a background thread (tests) or in the foreground (CLI).

Every request's scope gets the ``tests.fakes.abort`` extension, which the fakes use to drop a connection
with a TCP reset (``reset_next_connection``, ``truncate_next``).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from tests.fakes._host import ABORT_EXTENSION

LOOPBACK = "127.0.0.1"


class _AbortingApp:
    """Adds the abort extension: find this request's connection among uvicorn's and reset it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.server: uvicorn.Server | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.server is not None:
            scope = {
                **scope,
                "extensions": {**(scope.get("extensions") or {}), ABORT_EXTENSION: self._aborter(scope)},
            }
        await self.app(scope, receive, send)

    def _aborter(self, scope: Scope) -> Callable[[], None]:
        client = tuple(scope.get("client") or ())

        def abort() -> None:
            assert self.server is not None
            for connection in list(self.server.server_state.connections):
                if tuple(getattr(connection, "client", None) or ()) != client:
                    continue
                transport: Any = connection.transport
                sock = transport.get_extra_info("socket")
                if sock is not None:
                    # SO_LINGER 0: close() sends RST instead of FIN, like a crashing proxy.
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                transport.abort()

        return abort


def _bind(port: int) -> socket.socket:
    # IPPROTO_TCP, not 0: asyncio turns Nagle's algorithm off (TCP_NODELAY) only on accepted sockets whose
    # proto says TCP; with it on, a response written in two pieces waited for the client's delayed ACK,
    # 40 ms on every request.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((LOOPBACK, port))
    sock.listen(512)
    sock.set_inheritable(True)
    return sock


def _server(app: ASGIApp, *, log_level: str) -> tuple[uvicorn.Server, _AbortingApp]:
    wrapped = _AbortingApp(app)
    config = uvicorn.Config(
        wrapped,
        host=LOOPBACK,
        lifespan="off",
        log_level=log_level,
        timeout_graceful_shutdown=2,
        access_log=False,
        timeout_keep_alive=30,
    )
    server = uvicorn.Server(config)
    wrapped.server = server
    return server, wrapped


@contextlib.contextmanager
def run_in_thread(
    app: ASGIApp, *, port: int = 0, log_level: str = "warning", timeout: float = 10.0
) -> Iterator[str]:
    """Serve ``app`` on ``http://127.0.0.1:<port>`` (a free one by default) while the block runs.

    Yields the base URL once the server accepts connections; on exit asks it to stop and waits.
    """
    sock = _bind(port)
    server, _ = _server(app, log_level=log_level)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="fake-host", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("the fake host did not start")
        time.sleep(0.01)
    try:
        yield f"http://{LOOPBACK}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()


async def serve_forever(
    app: ASGIApp, *, port: int = 0, on_ready: Callable[[str], None], log_level: str = "warning"
) -> None:
    """Serve in the current event loop until SIGINT/SIGTERM; ``on_ready(base_url)`` once accepting."""
    sock = _bind(port)
    server, _ = _server(app, log_level=log_level)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            await task
            raise RuntimeError("the fake host did not start")
        await asyncio.sleep(0.01)
    on_ready(f"http://{LOOPBACK}:{sock.getsockname()[1]}")
    await task
