"""Reading what both hosts send alike: ISO timestamps, branches (GitHub and GitLab share the shape
``{"name", "protected", "commit": {<id>}}``; only the commit id's field differs) and the pieces of a
webhook delivery (JSON, commit ids, refs) with their bounds."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from app.domain.errors import BadUserInputError
from app.domain.models import Branch


def parse_timestamp(value: Any) -> datetime | None:
    """An ISO-8601 time as an aware UTC datetime; None for anything else."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_branches(body: list[Any], sha_field: str) -> list[Branch]:
    """The well-formed branches of a branch list; entries without a name or commit id are skipped."""
    return [branch for branch in (parse_branch(item, sha_field) for item in body) if branch is not None]


def parse_branch(raw: Any, sha_field: str) -> Branch | None:
    """One branch; ``sha_field`` names the commit's id (GitHub ``sha``, GitLab ``id``)."""
    commit = raw.get("commit") if isinstance(raw, dict) else None
    sha = commit.get(sha_field) if isinstance(commit, dict) else None
    if not (isinstance(raw, dict) and isinstance(raw.get("name"), str) and isinstance(sha, str)):
        return None
    return Branch(name=raw["name"], commit_sha=sha, protected=bool(raw.get("protected")))


# --- incoming webhook deliveries (both hosts) ------------------------------------------------------

MAX_COMMIT_MESSAGE = 2000  # characters of a head commit's message kept with an event
MAX_NAME = 200  # characters of a pusher's name
MAX_DELIVERY_ID = 128
_SHA = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")  # SHA-1, or SHA-256 repositories


def delivery_json(body: bytes) -> dict[str, Any]:
    """A delivery's JSON object; ``BadUserInputError`` for anything else (nesting too deep included)."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise BadUserInputError("The delivery's body is not JSON.") from None
    if not isinstance(data, dict):
        raise BadUserInputError("The delivery's body is not a JSON object.")
    return data


def delivery_id(value: str | None, header: str) -> str:
    """The delivery's id from ``header``: printable, at most 128 characters."""
    value = (value or "").strip()
    if not value or len(value) > MAX_DELIVERY_ID or not value.isprintable():
        raise BadUserInputError(f"The delivery has no usable {header} header.")
    return value


def commit_sha(value: Any, field: str, *, required: bool = True) -> str | None:
    """A full commit id (lower-case hex), or ``BadUserInputError`` naming ``field``."""
    if value is None and not required:
        return None
    if not isinstance(value, str) or not _SHA.match(value):
        raise BadUserInputError(f"The delivery's {field} is not a commit id.")
    return value


def git_ref(value: Any) -> str:
    if (
        not isinstance(value, str)
        or not value.startswith("refs/")
        or len(value) > 1024
        or not value.isprintable()
    ):
        raise BadUserInputError("The delivery's ref is not a Git ref.")
    return value


def bounded_text(value: Any, limit: int) -> str | None:
    """A string cut to ``limit`` characters; None for anything that is not a string."""
    return value[:limit] if isinstance(value, str) else None
