"""Stop a request's work when its client goes away.

uvicorn does not cancel a handler whose client disconnected: it only answers the next ``receive()``
with ``http.disconnect``. Left alone, a GraphQL request whose browser tab was closed keeps walking
the hosts until it is done (issue 11). ``CancelOnDisconnect`` listens for that message once the
request's body has been read, and cancels the handler when it comes before the answer was sent: its
upstream requests are cancelled with it, and a listing other requests still wait for goes on for them
(``app.services.single_flight``).
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.observability import note

DISCONNECTED = "CLIENT_DISCONNECTED"


class CancelOnDisconnect:
    """ASGI middleware: cancels the handler of an HTTP request whose client disconnected."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        handler = asyncio.current_task()
        assert handler is not None
        body_read = asyncio.Event()
        answered = disconnected = False

        async def receive_body() -> Message:
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_read.set()  # from now on the next message can only say the client left
            return message

        async def send_answer(message: Message) -> None:
            nonlocal answered
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                answered = True
            await send(message)

        async def watch() -> None:
            nonlocal disconnected
            await body_read.wait()
            message = await receive()
            if message["type"] == "http.disconnect" and not answered:
                disconnected = True
                note(outcome=DISCONNECTED)
                handler.cancel()

        watcher = asyncio.create_task(watch())
        try:
            await self.app(scope, receive_body, send_answer)
            if disconnected:
                await asyncio.sleep(0)  # take delivery of a cancellation that came too late to matter
        except asyncio.CancelledError:
            # Only the cancellation this middleware asked for ends here; any other (shutdown) goes on.
            if not disconnected or handler.uncancel() > 0:
                raise
        else:
            if disconnected and handler.cancelling():
                handler.uncancel()  # the handler absorbed it itself
        finally:
            watcher.cancel()
