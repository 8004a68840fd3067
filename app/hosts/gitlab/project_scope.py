"""One GitLab project, addressed with one connection's token, and what GitLab's refusals there mean.

Sources (``/work/shared/provider-facts.md``, "Learned since", and GitLab's REST docs): webhooks and
deploy tokens need the Maintainer role (403 below it); a token lacking the ``api`` scope gets 403
``insufficient_scope``; a project the token cannot see answers 404.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from app.domain.errors import (
    MissingPermissionsError,
    NeedsReconnectError,
    NotFoundError,
    ProviderUnavailableError,
    PublicError,
)
from app.domain.models import Integration
from app.hosts.gitlab import messages
from app.hosts.gitlab.constants import REQUIRED_ROLE
from app.net.client import HostHTTP, parse_json
from app.security.token_shapes import contains_credential


@dataclass(frozen=True)
class ProjectScope:
    """``http`` carries the connection's token; ``api`` is ``https://HOST/api/v4``; ``project_id`` numeric."""

    http: HostHTTP
    api: str
    project_id: str
    integration: Integration
    path: str  # what users read: the project's path when known, else its id

    def url(self, suffix: str = "") -> str:
        return f"{self.api}/projects/{self.project_id}{suffix}"

    def refusal(self, response: httpx.Response, *, doing: str) -> PublicError:
        status = response.status_code
        granted = list(self.integration.granted_permissions)
        if status == 401:
            return NeedsReconnectError(messages.RECONNECT)
        if status == 403:
            if error_of(response) == "insufficient_scope":
                return MissingPermissionsError(
                    f"GitLab refused to {doing} on {self.path}: the token lacks the scope api. Create a "
                    "token with the scopes api, read_repository and write_repository and connect it again.",
                    ["api"],
                    granted,
                )
            return MissingPermissionsError(
                f"GitLab refused to {doing} on {self.path}: this needs the {REQUIRED_ROLE} role (or "
                f"higher) on the project. Ask an owner of {self.path} to give you that role.",
                [f"{REQUIRED_ROLE} on {self.path}"],
                granted,
            )
        if status == 404:
            return NotFoundError(messages.PROJECT_GONE)
        return ProviderUnavailableError(
            f"{self.http.host} answered HTTP {status} while trying to {doing}; try again later."
        )


def error_of(response: httpx.Response) -> str:
    """GitLab's ``error`` or ``message`` as text (a dict of field errors flattened), or ``""``."""
    try:
        body: Any = parse_json(response)
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    value = body.get("error") or body.get("message")
    if isinstance(value, dict):
        value = "; ".join(
            f"{k} {' '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in value.items()
        )
    return value if isinstance(value, str) else ""


def safe_reason(response: httpx.Response) -> str:
    """``": <GitLab's message>"`` when short and free of anything like a credential, else the status."""
    message = error_of(response).strip()
    if 0 < len(message) <= 200 and message.isprintable() and not contains_credential(message):
        return f": {message}"
    return f" (HTTP {response.status_code})"
