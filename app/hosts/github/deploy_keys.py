"""GitHub: a read-only deploy key per link, and the host keys the builder checks GitHub's SSH server with.

Sources: ``/work/shared/provider-facts.md`` ("Learned since"): ``POST /repos/{o}/{r}/keys {title, key:
"ssh-ed25519 …", read_only: true}`` → 201 ``{id}``, ``DELETE …/keys/{id}``, needs Administration write
(``repo`` for classic tokens) and admin on the repository. ``GET /meta`` lists GitHub's SSH host keys
(``ssh_keys``, "ssh-ed25519 AAAA…"), the lines GitHub's own docs tell users to put in ``known_hosts``
(docs.github.com, "GitHub's SSH key fingerprints"). An organization may forbid deploy keys; **[unverified]**
what GitHub answers then: a refusal naming deploy keys (403 or 422) is read as that policy.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from app.domain.errors import MissingPermissionsError
from app.domain.links import ReadAccess, ReadAccessKind
from app.hosts.deploy import GrantedReadAccess
from app.hosts.github import link_messages
from app.hosts.github.messages import detail_of
from app.hosts.github.repository_scope import RepositoryRequests, RepositoryScope
from app.net.client import json_body, parse_json
from app.security.ssh_keys import new_key_pair

PERMISSION = "administration:write"
MAX_HOST_KEYS = 10


async def create_deploy_key(scope: RepositoryScope, title: str, known_hosts: str | None) -> GrantedReadAccess:
    pair = new_key_pair(title)
    response = await scope.http.send(
        "POST", scope.url("/keys"), json_body={"title": title, "key": pair.public_openssh, "read_only": True}
    )
    if response.status_code == 201:
        body = json_body(response, scope.http.host)
        key_id = body.get("id") if isinstance(body, dict) else None
        if isinstance(key_id, int) and not isinstance(key_id, bool):
            access = ReadAccess(ReadAccessKind.DEPLOY_KEY, host_id=str(key_id), known_hosts=known_hosts)
            return GrantedReadAccess(access, ssh_private_key=pair.private_openssh)
    # [unverified] how GitHub refuses a key an organization's policy forbids: a 403 saying so, or a 422
    # "Validation Failed" with the reason among its errors; either is read as that policy.
    if response.status_code in (403, 422) and "deploy key" in detail_of(response).lower():
        raise MissingPermissionsError(
            link_messages.deploy_keys_refused(scope.full_name, link_messages.reason_of(response)),
            [f"deploy keys allowed on {scope.full_name}"],
            list(scope.integration.granted_permissions),
        )
    raise scope.refusal(response, doing="add a deploy key", permission=PERMISSION)


async def deploy_key_exists(scope: RepositoryScope, key_id: str | None) -> bool:
    if key_id is None or not key_id.isdigit():
        return False
    response = await scope.http.get(scope.url(f"/keys/{key_id}"))
    if response.status_code == 404:
        return False
    if response.status_code != 200:
        raise scope.refusal(response, doing="read the deploy key", permission="administration:read")
    return True


async def delete_deploy_key(scope: RepositoryScope, key_id: str | None) -> None:
    if key_id is None or not key_id.isdigit():
        return
    response = await scope.http.send("DELETE", scope.url(f"/keys/{key_id}"))
    if response.status_code not in (204, 404):
        raise scope.refusal(response, doing="remove the deploy key", permission=PERMISSION)


async def known_hosts(http: RepositoryRequests, api: str, web_url: str) -> str | None:
    """GitHub's SSH host keys as ``known_hosts`` lines; None when GitHub does not say (the builder then
    has to trust the host key by other means)."""
    hostname = urlsplit(web_url).hostname
    response = await http.get(f"{api}/meta")
    if hostname is None or response.status_code != 200:
        return None
    try:
        body: Any = parse_json(response)
    except ValueError:
        return None
    keys = body.get("ssh_keys") if isinstance(body, dict) else None
    lines = [
        f"{hostname} {key}"
        for key in (keys if isinstance(keys, list) else [])[:MAX_HOST_KEYS]
        if isinstance(key, str)
        and key.startswith(("ssh-", "ecdsa-"))
        and key.isprintable()
        and "\n" not in key
    ]
    return "\n".join(lines) + "\n" if lines else None


def ssh_clone_url(web_url: str, full_name: str) -> str:
    """``git@HOST:owner/name.git`` (GitHub and GitHub Enterprise Server serve SSH on the web host)."""
    return f"git@{urlsplit(web_url).hostname}:{full_name}.git"
