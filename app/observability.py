"""Structured logs: one JSON object a line, with the request id of the request being served.

``RequestLogMiddleware`` gives every request an id (``X-Request-ID`` is echoed or generated),
and writes one line when it ends with method, path, status, duration, GraphQL operation name,
user id, outcome and how many upstream requests it made. ``SecretRedactingFilter`` is a last
line of defence: anything that looks like a Git token or a bearer credential
(``app.security.token_shapes``) is blanked before a record is written, whichever logger produced it.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.net.accounting import start_upstream_count
from app.security.token_shapes import redact
from app.tracing import current_trace_id

request_fields: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "request_fields", default=None
)

_STANDARD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",
}


def current_request_id() -> str | None:
    fields = request_fields.get()
    return None if fields is None else str(fields.get("request_id"))


def note(**values: Any) -> None:
    """Add fields to the current request's log line (operation name, user id, outcome...)."""
    fields = request_fields.get()
    if fields is not None:
        fields.update(values)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = current_request_id()
        if request_id and "request_id" not in record.__dict__:
            entry["request_id"] = request_id
        trace_id = current_trace_id()
        if trace_id is not None:
            entry["trace_id"] = trace_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, default=str))


class SecretRedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if record.args:
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


# Even with LOG_LEVEL=DEBUG: httpx logs every URL at INFO, and httpcore every response's headers at
# DEBUG (a host's redirect to the OAuth callback carries the code and the state in its Location).
QUIET_LIBRARIES = ("httpx", "httpcore")


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(SecretRedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # Our own request line replaces uvicorn's access log (which would log query strings).
    logging.getLogger("uvicorn.access").disabled = True
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)


class RequestLogMiddleware:
    """Request id, the per-request log fields, and one log line per HTTP request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.log = logging.getLogger("app.request")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if re.fullmatch(r"[A-Za-z0-9._-]{8,64}", incoming) else uuid.uuid4().hex
        fields: dict[str, Any] = {"request_id": request_id}
        token = request_fields.set(fields)
        upstream = start_upstream_count()
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if scope.get("path") not in {"/healthz", "/readyz", "/metrics"}:
                self.log.info(
                    "request",
                    extra={
                        # Every line has these; GraphQL (operation, outcome) and auth (user) fill them in.
                        "operation": None,
                        "user_id": None,
                        "outcome": "ok" if status < 400 else f"HTTP_{status}",
                        **fields,
                        "method": scope.get("method"),
                        "path": scope.get("path"),
                        "status": status,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                        "upstream_requests": upstream.count,
                    },
                )
            request_fields.reset(token)
