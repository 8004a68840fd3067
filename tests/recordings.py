"""Load the recorded provider responses kept in ``tests/fixtures/<provider>/`` (see the README there).

Recorders stored bodies decoded but kept ``Content-Encoding`` / ``Content-Length`` /
``Transfer-Encoding``; those are dropped when a recording is replayed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

FIXTURES = Path(__file__).parent / "fixtures"
_DROPPED = {"content-encoding", "content-length", "transfer-encoding"}


def load(provider: str, name: str) -> dict[str, Any]:
    """The whole interaction: ``{"request": {...}, "response": {"status", "headers", "body"}}``."""
    data: dict[str, Any] = json.loads((FIXTURES / provider / name).read_text())
    return data


def response_headers(recording: dict[str, Any]) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = []
    for key, value in (recording["response"].get("headers") or {}).items():
        if key.lower() in _DROPPED:
            continue
        for item in value if isinstance(value, list) else [value]:
            headers.append((key, str(item)))
    return headers


def replay(provider: str, name: str, **overrides: Any) -> httpx.Response:
    """An ``httpx.Response`` as the host sent it; ``status``, ``headers`` (merged) and ``body`` may be overridden."""
    recording = load(provider, name)
    response = recording["response"]
    status = overrides.get("status", response["status"])
    headers = response_headers(recording)
    extra: dict[str, str] = overrides.get("headers", {})
    if extra:
        lowered = {k.lower() for k in extra}
        headers = [(k, v) for k, v in headers if k.lower() not in lowered] + list(extra.items())
    body = overrides.get("body", response["body"])
    if body is None:
        return httpx.Response(status, headers=headers)
    if isinstance(body, str):
        return httpx.Response(status, headers=headers, text=body)
    return httpx.Response(status, headers=headers, json=body)
