"""What GitLab users read when something about their token or instance is wrong.

Messages never repeat the token or any part of it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from app.domain.models import TokenKind
from app.hosts.gitlab.constants import MAX_TOKEN_LENGTH, REQUIRED_SCOPES

NOT_ACCEPTED = "GitLab did not accept this token: it is unknown, expired or revoked."
RECONNECT = "GitLab no longer accepts this connection (the token was revoked or expired): connect it again."
REVOKED = "GitLab reports this token as revoked: create a new one."
INACTIVE = "GitLab reports this token as no longer active (expired or revoked)."

EMPTY_TOKEN = "Paste a GitLab access token: the token is empty."
TOKEN_TOO_LONG = (
    f"This is longer than a GitLab token can be ({MAX_TOKEN_LENGTH} characters): copy only the token."
)
TOKEN_CHARACTERS = "This token contains spaces or characters a GitLab token never has: copy only the token."
NO_API_ACCESS = (
    "This GitLab token may not use the API: create one with the scopes api, read_repository "
    "and write_repository."
)
PROJECT_GONE = "GitLab no longer shows this project to this connection."


def missing_scopes(missing: Sequence[str]) -> str:
    return (
        f"This GitLab token lacks the scope{'s' if len(missing) > 1 else ''} {', '.join(missing)}. "
        f"Create a token with the scopes {', '.join(REQUIRED_SCOPES)}."
    )


_ROLE_SUBJECTS: Mapping[TokenKind, str] = {
    TokenKind.GITLAB_GROUP: "This group access token",
    TokenKind.GITLAB_PROJECT: "This project access token",
}


def role_too_low(kind: TokenKind, actual: str | None) -> str:
    subject = _ROLE_SUBJECTS.get(kind, "The GitLab user of this token")
    if actual is None:
        return f"{subject} is not a member of any group or project; it needs Maintainer or higher."
    return f"{subject} has the {actual} role at most; it needs Maintainer or higher."


def not_gitlab(host: str) -> str:
    return (
        f"{host} does not answer like a GitLab instance: check the address, including "
        "any path prefix GitLab is served under."
    )


def redirected(host: str) -> str:
    return (
        f"{host} redirected the request to another address (for example from http "
        "to https, or to a different path prefix). Redirects are not followed: enter the exact "
        "address GitLab is served from."
    )


def unexpected_answer(host: str, status: int) -> str:
    return (
        f"{host} gave an unexpected answer (HTTP {status}) while the token "
        "was being checked; try again later."
    )


def listing_refused(status: int) -> str:
    return f"GitLab refused to list the projects of this connection (HTTP {status}): connect it again."
