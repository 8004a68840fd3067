"""GitLab: a ``read_repository`` deploy token per link, and commit statuses.

Sources: ``/work/shared/provider-facts.md`` ("Learned since"): ``POST /projects/:id/deploy_tokens {name,
scopes: ["read_repository"], expires_at}`` → ``{id, username, token}`` (the token is shown once),
``DELETE /projects/:id/deploy_tokens/:id``, Maintainer; ``GET /projects/:id/deploy_tokens/:id`` says
``revoked`` / ``expired``. Statuses: ``POST /projects/:id/statuses/:sha`` (``state: pending | running |
success | failed | canceled``, ``name``, ``target_url``, ``description``) → 201; a state GitLab cannot
transition to (the same again) answers 400 "Cannot transition status via :run from :running": the
status is already there.
"""

from __future__ import annotations

from typing import Any

from app.domain.errors import NotFoundError, ProviderUnavailableError
from app.domain.links import CommitState, CommitStatusRequest, ReadAccess, ReadAccessKind
from app.hosts.deploy import GrantedReadAccess
from app.hosts.gitlab.project_scope import ProjectScope, error_of
from app.hosts.parsing import parse_timestamp
from app.net.client import json_body

STATES = {
    CommitState.PENDING: "pending",
    CommitState.SUCCESS: "success",
    CommitState.FAILURE: "failed",
    CommitState.ERROR: "failed",
}
MAX_DESCRIPTION = 255  # GitLab stores descriptions in a 255-character column


async def create_deploy_token(scope: ProjectScope, name: str) -> GrantedReadAccess:
    response = await scope.http.send(
        "POST", scope.url("/deploy_tokens"), json_body={"name": name, "scopes": ["read_repository"]}
    )
    if response.status_code != 201:
        raise scope.refusal(response, doing="add a deploy token")
    body: Any = json_body(response, scope.http.host)
    token_id = body.get("id") if isinstance(body, dict) else None
    username, token = (body.get("username"), body.get("token")) if isinstance(body, dict) else (None, None)
    if (
        not isinstance(token_id, int)
        or not isinstance(username, str)
        or not isinstance(token, str)
        or not token
    ):
        raise ProviderUnavailableError(
            f"{scope.http.host} answered with an unexpected deploy token; try again later."
        )
    access = ReadAccess(
        ReadAccessKind.DEPLOY_TOKEN,
        host_id=str(token_id),
        username=username,
        expires_at=parse_timestamp(body.get("expires_at")),
    )
    return GrantedReadAccess(access, deploy_token=token)


async def deploy_token_usable(scope: ProjectScope, token_id: str | None) -> bool:
    if token_id is None or not token_id.isdigit():
        return False
    response = await scope.http.get(scope.url(f"/deploy_tokens/{token_id}"))
    if response.status_code == 404:
        return False
    if response.status_code != 200:
        raise scope.refusal(response, doing="read the deploy token")
    body = json_body(response, scope.http.host)
    return isinstance(body, dict) and not body.get("revoked") and not body.get("expired")


async def revoke_deploy_token(scope: ProjectScope, token_id: str | None) -> None:
    if token_id is None or not token_id.isdigit():
        return
    response = await scope.http.send("DELETE", scope.url(f"/deploy_tokens/{token_id}"))
    if response.status_code not in (200, 204, 404):
        raise scope.refusal(response, doing="revoke the deploy token")


async def set_commit_status(scope: ProjectScope, status: CommitStatusRequest) -> None:
    body: dict[str, str] = {"state": STATES[status.state], "name": status.context}
    if status.description:
        text = status.description
        body["description"] = text if len(text) <= MAX_DESCRIPTION else text[: MAX_DESCRIPTION - 1] + "…"
    if status.target_url:
        body["target_url"] = status.target_url
    response = await scope.http.send("POST", scope.url(f"/statuses/{status.sha}"), json_body=body)
    if response.status_code in (200, 201):
        return
    if response.status_code == 400 and "Cannot transition status" in error_of(response):
        return  # the same state is already there
    if response.status_code == 404 and "commit" in error_of(response).lower():
        raise NotFoundError(f"{scope.path} has no commit {status.sha} (or GitLab does not know it yet).")
    raise scope.refusal(response, doing="set a commit status")
