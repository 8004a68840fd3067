"""``POST /webhooks/{github|gitlab}/{link id}``: the HTTP side of receiving a delivery.

The body is read as a stream, at most 25 MiB (GitHub's own cap on payloads), within 30 seconds, and
only for a link that exists (an unknown id is answered without reading anything). The bytes of bodies
being read at once are bounded per process (``MAX_BYTES_IN_FLIGHT``): past that the answer is 503, as
for a database outage, and the catch-up asks the host for the delivery again later. What happens then
is ``services.webhook_intake``.
"""

from __future__ import annotations

import asyncio

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from app.domain.models import GitProvider
from app.services.webhook_intake import KnownLink, Outcome, Received, WebhookIntake

MAX_DELIVERY_BYTES = 25 * 1024 * 1024
MAX_BYTES_IN_FLIGHT = 96 * 1024 * 1024
BODY_DEADLINE_SECONDS = 30.0
RETRY_AFTER_SECONDS = 30
PROVIDERS = {"github": GitProvider.GITHUB, "gitlab": GitProvider.GITLAB}


class _TooLarge(Exception):
    pass


class _Busy(Exception):
    pass


class BytesInFlight:
    """How many body bytes this process holds for deliveries right now, with a hard ceiling."""

    def __init__(self, limit: int = MAX_BYTES_IN_FLIGHT) -> None:
        self.limit = limit
        self.used = 0

    def take(self, count: int) -> None:
        if self.used + count > self.limit:
            raise _Busy
        self.used += count

    def give_back(self, count: int) -> None:
        self.used -= count


async def receive_webhook(request: Request, intake: WebhookIntake, in_flight: BytesInFlight) -> Response:
    provider = PROVIDERS.get(str(request.path_params.get("provider", "")))
    if provider is None:
        return _answer(Received(Outcome.UNKNOWN_LINK, "No such webhook."))
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_DELIVERY_BYTES):
        return _answer(intake.answered(provider, Received(Outcome.TOO_LARGE, "The body is over 25 MiB.")))
    found = await intake.find(provider, str(request.path_params["link_id"]))
    if not isinstance(found, KnownLink):
        return _answer(found)
    held = 0
    try:
        chunks: list[bytes] = []
        async with asyncio.timeout(BODY_DEADLINE_SECONDS):
            async for chunk in request.stream():
                if held + len(chunk) > MAX_DELIVERY_BYTES:
                    raise _TooLarge
                in_flight.take(len(chunk))
                held += len(chunk)
                chunks.append(chunk)
        return _answer(await intake.accept(found, request.headers, b"".join(chunks)))
    except _TooLarge:
        return _answer(intake.answered(provider, Received(Outcome.TOO_LARGE, "The body is over 25 MiB.")))
    except _Busy:
        intake.note_unavailable(found.link.id)
        return _answer(intake.answered(provider, Received(Outcome.UNAVAILABLE, "Busy; try again later.")))
    except (TimeoutError, ClientDisconnect):
        return JSONResponse({"message": "The body did not arrive in time."}, status_code=408)
    finally:
        in_flight.give_back(held)


def _answer(received: Received) -> Response:
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if received.status == 503 else None
    return JSONResponse(
        {"outcome": received.outcome.value, "message": received.message},
        status_code=received.status,
        headers=headers,
    )
