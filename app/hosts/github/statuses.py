"""GitHub: commit statuses (build results shown on a commit).

Source: ``/work/shared/provider-facts.md``: ``POST /repos/{o}/{r}/statuses/{sha} {state:
error|failure|pending|success, target_url, description, context}`` → 201; a commit the repository does
not have → 422 "No commit found for SHA". The design: GitHub keeps 140 characters of the description
(**[unverified]** whether a longer one is cut or refused: it is cut here, so both answers are fine).
"""

from __future__ import annotations

from app.domain.errors import NotFoundError, ProviderUnavailableError
from app.domain.links import CommitState, CommitStatusRequest
from app.hosts.github import link_messages
from app.hosts.github.messages import message_of
from app.hosts.github.repository_scope import RepositoryScope

MAX_DESCRIPTION = 140
STATES = {
    CommitState.PENDING: "pending",
    CommitState.SUCCESS: "success",
    CommitState.FAILURE: "failure",
    CommitState.ERROR: "error",
}


def shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, with an ellipsis when something was cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def set_commit_status(scope: RepositoryScope, status: CommitStatusRequest) -> None:
    body: dict[str, str] = {"state": STATES[status.state], "context": status.context}
    if status.description:
        body["description"] = shorten(status.description, MAX_DESCRIPTION)
    if status.target_url:
        body["target_url"] = status.target_url
    response = await scope.http.send("POST", scope.url(f"/statuses/{status.sha}"), json_body=body)
    if response.status_code == 201:
        return
    if response.status_code == 422:
        if "no commit found" in message_of(response).lower():
            raise NotFoundError(link_messages.commit_unknown(status.sha, scope.full_name))
        # Any other validation failure, such as GitHub's 1,000 statuses per commit and context: asking
        # again will not help, and the user reads GitHub's reason.
        raise ProviderUnavailableError(
            link_messages.refused("set a commit status", scope.full_name, response)
        )
    raise scope.refusal(response, doing="set a commit status", permission="statuses:write")
