"""What GitHub users read when something about their token, login or repositories is wrong.

Permission names are given in the words of GitHub's token page. Messages never repeat the token; a
message GitHub sent is only passed on when nothing in it looks like a credential.
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from app.hosts.github.constants import MAX_TOKEN_LENGTH, PERMISSION_AREAS, REQUIRED_CLASSIC_SCOPES
from app.net.client import parse_json
from app.security.token_shapes import contains_credential

REVOKED = "GitHub did not accept this token: it is unknown, expired or revoked."
RECONNECT = "GitHub no longer accepts this connection (the token was revoked or expired): connect it again."
REPOSITORY_GONE = "GitHub no longer shows this repository to this connection."
LISTING_REFUSED = (
    "GitHub refused to list the repositories of this connection (HTTP 403): connect it again, "
    "or check that your organisation allows it."
)
TOKEN_LISTING_REFUSED = (
    "GitHub refused to list the repositories of this token (HTTP 403). Check that it is "
    "still valid and allowed by the organisation that owns the repositories."
)

EMPTY_TOKEN = "Paste a GitHub personal access token."
TOKEN_TOO_LONG = (
    f"This is longer than any GitHub token (at most {MAX_TOKEN_LENGTH} characters): paste only the token."
)
TOKEN_CHARACTERS = (
    "This does not look like a GitHub token: tokens contain only letters, digits and "
    "underscores. Copy it again from GitHub."
)
LOGIN_TOKEN_PASTED = (
    "This token comes from an OAuth or GitHub App sign-in. Such access is connected with "
    "'Connect with GitHub'; to connect with a token, paste a personal access token "
    "(classic or fine-grained) instead."
)


def in_words(names: Sequence[str]) -> str:
    """Permission names in the words of GitHub's token page.

    ``statuses:read, statuses:write, webhooks:write`` → "Commit statuses: read and write; Webhooks: write".
    """
    parts = []
    for area, label in PERMISSION_AREAS.items():
        levels = [level for level in ("read", "write") if f"{area}:{level}" in names]
        if levels:
            parts.append(f"{label}: {' and '.join(levels)}")
    return "; ".join(parts)


def classic_scopes_missing(missing: Sequence[str], manage_url: str) -> str:
    return (
        f"This classic token lacks the scope{'s' if len(missing) > 1 else ''} "
        f"{' and '.join(missing)}. Edit the token at {manage_url} and tick "
        f"{' and '.join(REQUIRED_CLASSIC_SCOPES)}, then paste it again."
    )


def login_scopes_missing(missing: Sequence[str], manage_url: str) -> str:
    return (
        f"The GitHub login does not grant {' and '.join(missing)}. Connect with GitHub again and "
        f"approve all the access requested; {manage_url} lists the applications you authorised."
    )


def no_installation(login: str, installation_id: str | None) -> str:
    if installation_id is None:
        return (
            f"The GitHub App is not installed on any account {login} can access. Connect with GitHub "
            "again and install it (an organisation owner may have to approve the installation first)."
        )
    # A forged or stale installation_id, or one on an account this user cannot see.
    return (
        f"GitHub does not confirm that installation for {login}: it is not one {login} can "
        "access. Start again with 'Connect with GitHub'."
    )


def installation_lacks(account: str, missing: Sequence[str], html_url: str) -> str:
    return (
        f"The GitHub App installation on {account} lacks permissions the service needs: "
        f"{in_words(missing)}. The app's owner must request them, and {account} must "
        f"accept them at {html_url}."
    )


def no_repository_covered(manage_url: str) -> str:
    return (
        "This fine-grained token does not cover any repository. Edit it at "
        f"{manage_url}: under 'Repository access' choose 'All repositories' or select the "
        "repositories to deploy, and set Administration, Commit statuses, Contents and "
        "Webhooks to 'Read and write'."
    )


def fine_grained_lacks(
    missing: Sequence[str], unverified: Sequence[str], repository: str, manage_url: str
) -> str:
    message = (
        f"This fine-grained token lacks permissions the service needs (checked on {repository}): "
        f"{in_words(missing)}. Edit the token at {manage_url} and set Administration, Commit statuses, "
        "Contents and Webhooks to 'Read and write'."
    )
    if unverified:
        message += f" Could not be checked: {in_words(unverified)}."
    return message


def probes_unreachable(host: str) -> str:
    return f"{host} is having trouble, so the token's permissions could not be checked; try again later."


def unexpected_answer(host: str, status: int, doing: str) -> str:
    return f"{host} answered HTTP {status} while {doing}; check the GitHub address or try again later."


def unexpected_body(host: str, what: str) -> str:
    return f"{host} answered with an unexpected {what}; try again later."


def refused_token(response: httpx.Response, token: str) -> str:
    """GitHub's reason for a 403 on /user when it is safe to show, else a generic sentence."""
    message = message_of(response).strip()
    safe = (
        0 < len(message) <= 300
        and message.isprintable()
        and token not in message
        and not contains_credential(message)
    )
    if safe:
        return f"GitHub refused this token: {message}"
    return (
        "GitHub refused this token (HTTP 403). Check that it is still valid and allowed by your organisation."
    )


def message_of(response: httpx.Response) -> str:
    """The ``message`` of a GitHub error answer, or ``""``."""
    try:
        body = parse_json(response)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError are both ValueErrors
        return ""
    message = body.get("message") if isinstance(body, dict) else None
    return message if isinstance(message, str) else ""


def detail_of(response: httpx.Response) -> str:
    """The ``message`` of a GitHub error answer with the reasons of a "Validation Failed" (its
    ``errors[].message``) after it: ``"Validation Failed: key is already in use"``; or ``""``."""
    message = message_of(response)
    try:
        body = parse_json(response)
    except ValueError:
        return message
    errors = body.get("errors") if isinstance(body, dict) else None
    reasons = [
        e["message"]
        for e in (errors if isinstance(errors, list) else [])[:5]
        if isinstance(e, dict) and isinstance(e.get("message"), str)
    ]
    return ": ".join(filter(None, [message, "; ".join(reasons)]))


def sso_partial_results(organizations: int, authorize_url: str | None) -> str:
    """GitHub left out the repositories of organizations that use SAML SSO (``X-GitHub-SSO``)."""
    which = "an organization" if organizations == 1 else f"{organizations} organizations"
    where = (
        f' Authorize it at {authorize_url} ("Configure SSO" next to the token, or "Grant" for the '
        "app), then refresh the list."
        if authorize_url
        else " Sign in to the organization's single sign-on on GitHub, then refresh the list."
    )
    one = organizations == 1
    return (
        f"GitHub left out the repositories of {which} that {'uses' if one else 'use'} SAML single "
        f"sign-on: this connection is not authorized for {'it' if one else 'them'} yet.{where}"
    )
