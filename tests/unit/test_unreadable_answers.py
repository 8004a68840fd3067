"""Every reading of a host's error body treats JSON nested too deeply like any unreadable answer.

Python's JSON parser recurses once per level: a hostile host's few hundred kilobytes of ``[`` end in a
``RecursionError`` (issue 11, item 3), which must never escape as an internal error.
"""

from __future__ import annotations

import httpx
import pytest

from app.hosts.github.messages import message_of
from app.hosts.gitlab.project_scope import error_of
from app.net.client import is_rate_limited

NESTED = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize("status", [400, 403, 404, 422])
def test_a_refusal_nested_too_deeply_reads_as_no_reason(status: int) -> None:
    response = httpx.Response(status, content=NESTED, headers={"content-type": "application/json"})

    assert is_rate_limited(response) is False
    assert error_of(response) == ""
    assert message_of(response) == ""
