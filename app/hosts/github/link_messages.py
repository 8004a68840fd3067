"""What GitHub users read when linking a repository, or acting on a linked one, goes wrong.

Every sentence names what is missing and where (the repository's full name), and what to do about it.
A message GitHub sent is passed on only when nothing in it looks like a credential.
"""

from __future__ import annotations

import httpx

from app.hosts.github.messages import detail_of, in_words
from app.security.token_shapes import contains_credential


def needs_admin(full_name: str) -> str:
    return (
        f"You need admin rights on {full_name} to link it: only admins can add the webhook and the "
        "deploy key. Ask an admin of the repository to link it, or to make you one."
    )


def token_lacks(permission: str, full_name: str, manage_url: str | None) -> str:
    where = f" at {manage_url}" if manage_url else ""
    return (
        f"This connection lacks {in_words([permission]) or permission} on {full_name}. Give it that "
        f"permission{where} (or connect again), then link the repository again."
    )


def scope_lacks(scopes: str, full_name: str) -> str:
    return (
        f"GitHub refused the request on {full_name}: the token needs the scope {scopes}. Edit the token's "
        "scopes (or connect again), then try again."
    )


def deploy_keys_refused(full_name: str, reason: str) -> str:
    return (
        f"GitHub refused a deploy key on {full_name}{reason}. An organization can forbid deploy keys: "
        "ask one of its owners to allow them, or install this service's GitHub App on the repository "
        "(the builder then gets short-lived app tokens instead)."
    )


def refused(doing: str, full_name: str, response: httpx.Response) -> str:
    return f"GitHub refused to {doing} on {full_name}{reason_of(response)}."


def reason_of(response: httpx.Response) -> str:
    """``": <GitHub's message>"`` when it is short, printable and holds nothing like a credential."""
    message = detail_of(response).strip()
    if 0 < len(message) <= 200 and message.isprintable() and not contains_credential(message):
        return f": {message}"
    return f" (HTTP {response.status_code})"


def commit_unknown(sha: str, full_name: str) -> str:
    return f"{full_name} has no commit {sha} (or GitHub does not know it yet)."
