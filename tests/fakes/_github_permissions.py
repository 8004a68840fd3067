"""Who may call which repository endpoint: visibility, scopes / fine-grained permissions, role.

Order of checks, as the facts sheet describes the real host: the repository must be visible to the token
(else 404) → the token must hold the permission / scope (else 403 "Resource not accessible by …" for
fine-grained and app tokens, 404 with ``X-Accepted-OAuth-Scopes`` for classic ones) → the user's role
must allow it (else 403 "Must have admin rights to Repository.") → an archived repository refuses
writes (403 "Repository was archived so is read-only."). Only then does an endpoint validate the body
(422) and perform the write. The 403s after the first say nothing about the token's grants, yet carry
``X-Accepted-GitHub-Permissions`` like every answer to a fine-grained token (``GitHubAPI._decorate``).
The facts sheet marks "authorisation before validation" unverified; the fake picks that order because it
is the one the product's write probes rely on. Fine-grained permission names are the API's
(``repository_hooks`` for "Webhooks"), as ``X-Accepted-GitHub-Permissions`` spells them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.responses import Response

from tests.fakes._github_common import DOCS, github_error
from tests.fakes._github_models import ROLE_RANK, GitHubRepository, GitHubToken, Level, Role
from tests.fakes._http import Call, json_response

if TYPE_CHECKING:
    from tests.fakes.github import FakeGitHub

HOOK_SCOPES = ("repo", "admin:repo_hook", "write:repo_hook", "read:repo_hook")


@dataclass(frozen=True)
class Need:
    """What one endpoint requires."""

    permission: str  # fine-grained name: administration, statuses, contents, repository_hooks, metadata
    level: Level
    role: Role
    scopes: tuple[str, ...]  # classic: any of these, for any repository
    public_scopes: tuple[str, ...] = ()  # classic: any of these is also enough on a public repository
    public_read: bool = False  # readable on a public repository without the permission
    docs: str = DOCS
    # Refused on an archived repository, whatever the token and role: 403 "Repository was archived so is
    # read-only." (recorded for POST .../statuses/{sha} in r-universe-org/help#247; contents are
    # read-only too: https://docs.github.com/repositories/archiving-a-github-repository/archiving-repositories).
    read_only_when_archived: bool = False

    @property
    def accepted(self) -> str:
        """The ``X-Accepted-GitHub-Permissions`` value of the endpoint (``name=level``)."""
        return f"{self.permission}={self.level}"


READ_REPO = Need("metadata", "read", "read", ("repo",), public_read=True)
ADMIN_READ = Need(
    "administration",
    "read",
    "admin",
    ("repo",),
    ("public_repo",),
    docs="https://docs.github.com/rest/branches/branch-protection#get-branch-protection",
)
ADMIN_WRITE = Need(
    "administration",
    "write",
    "admin",
    ("repo",),
    ("public_repo",),
    docs="https://docs.github.com/rest/repos/repos#update-a-repository",
)
STATUSES_READ = Need(
    "statuses",
    "read",
    "read",
    ("repo", "repo:status"),
    public_read=True,
    docs="https://docs.github.com/rest/commits/statuses#list-commit-statuses-for-a-reference",
)
STATUSES_WRITE = Need(
    "statuses",
    "write",
    "write",
    ("repo", "repo:status"),
    ("public_repo",),
    docs="https://docs.github.com/rest/commits/statuses#create-a-commit-status",
    read_only_when_archived=True,
)
CONTENTS_READ = Need(
    "contents",
    "read",
    "read",
    ("repo",),
    public_read=True,
    docs="https://docs.github.com/rest/branches/branches#list-branches",
)
CONTENTS_WRITE = Need(
    "contents",
    "write",
    "write",
    ("repo",),
    ("public_repo",),
    docs="https://docs.github.com/rest/repos/contents#create-or-update-file-contents",
    read_only_when_archived=True,
)
# The deploy keys list: Administration read for fine-grained tokens, on every plan (unlike branch
# protection), and admin on the repository ("Fine-grained access tokens for 'List deploy keys' ...
# 'Administration' repository permissions (read)": https://docs.github.com/rest/deploy-keys/deploy-keys#list-deploy-keys).
DEPLOY_KEYS_READ = Need(
    "administration",
    "read",
    "admin",
    ("repo",),
    ("public_repo",),
    docs="https://docs.github.com/rest/deploy-keys/deploy-keys#list-deploy-keys",
)
HOOKS_READ = Need(
    "repository_hooks",
    "read",
    "admin",
    HOOK_SCOPES,
    HOOK_SCOPES,
    docs="https://docs.github.com/rest/repos/webhooks#list-repository-webhooks",
)
HOOKS_WRITE = Need(
    "repository_hooks",
    "write",
    "admin",
    HOOK_SCOPES[:3],
    HOOK_SCOPES[:3],
    docs="https://docs.github.com/rest/repos/webhooks#create-a-repository-webhook",
)


def authorize(fake: FakeGitHub, call: Call, token: GitHubToken, need: Need) -> GitHubRepository | Response:
    """The repository when the token may do ``need`` there, else the answer GitHub would give."""
    repo = fake.find_repository(f"{call.params['owner']}/{call.params['repo']}")
    not_found = github_error(404, "Not Found", need.docs)
    if repo is None:
        moved = fake.moved_repository(f"{call.params['owner']}/{call.params['repo']}")
        if moved is not None and moved.role_of(token.user) is not None:
            return moved_to(fake, call, moved)
    if repo is None or repo.role_of(token.user) is None:
        return not_found
    if token.blocked_by_sso(repo.owner):
        # One resource of an SSO organisation: 403 and where to authorize (GitHub docs,
        # "Authenticating to the REST API": "If you receive a 403 Forbidden error, you can follow the
        # URL in the X-GitHub-SSO header to authorize your token. The URL expires after one hour.").
        html = (fake.html_url or call.root_url()).rstrip("/")
        url = f"{html}/orgs/{repo.owner.login}/sso?authorization_request=fake{token.created_at:.0f}"
        return github_error(
            403,
            "Resource protected by organization SAML enforcement. You must grant your Personal Access "
            "token access to this organization.",
            need.docs,
            {"X-GitHub-SSO": f"required; url={url}"},
        )
    public_read = need.public_read and not repo.private
    if token.kind in ("classic", "oauth_app"):
        scopes = set(token.scopes)
        allowed = bool(scopes & set(need.scopes)) or public_read
        allowed = allowed or (not repo.private and bool(scopes & set(need.public_scopes)))
        if not allowed:
            not_found.headers["X-Accepted-OAuth-Scopes"] = ", ".join(need.scopes)
            return not_found
    else:
        covered = fake.token_covers(token, repo)
        if not covered and repo.private:
            return not_found
        granted = _granted(fake, token) if covered else {}
        if not public_read and not _level_ok(granted.get(need.permission), need.level):
            actor = "personal access token" if token.kind == "fine_grained" else "integration"
            return github_error(403, f"Resource not accessible by {actor}", need.docs)
    role = repo.role_of(token.user) or "read"
    if ROLE_RANK[role] < ROLE_RANK[need.role]:
        message = (
            "Must have admin rights to Repository."
            if need.role == "admin"
            else "Must have push access to repository."
        )
        return github_error(403, message, need.docs)
    if need.read_only_when_archived and repo.archived:
        return archived(need.docs)
    return repo


def moved_to(fake: FakeGitHub, call: Call, repo: GitHubRepository) -> Response:
    """A request to a renamed repository's old name: 301 for GET, 307 for every other method, to the
    same request at ``/repositories/{id}/…`` (docs.github.com, "Best practices for using the REST
    API": "Follow redirects" - 301 permanent for a renamed repository, 307 for other methods; the
    body as GitHub sends it)."""
    api = call.root_url() + fake.api_prefix
    prefix = f"{fake.api_prefix}/repos/{call.params['owner']}/{call.params['repo']}"
    rest = call.request.url.path.removeprefix(call.request.scope.get("root_path", ""))[len(prefix) :]
    query = call.request.url.query
    location = f"{api}/repositories/{repo.id}{rest}" + (f"?{query}" if query else "")
    status, message = (301, "Moved Permanently") if call.method == "GET" else (307, "Temporary Redirect")
    body = {
        "message": message,
        "url": location,
        "documentation_url": "https://docs.github.com/v3/#http-redirects",
    }
    return json_response(body, status, {"Location": location})


def archived(docs: str) -> Response:
    """What every write to an archived repository answers (r-universe-org/help#247, recorded from api.github.com)."""
    return github_error(403, "Repository was archived so is read-only.", docs)


def _granted(fake: FakeGitHub, token: GitHubToken) -> dict[str, str]:
    if token.kind == "fine_grained":
        return {"metadata": "read", **token.permissions}
    return {"metadata": "read", **fake.app_permissions}


def _level_ok(held: str | None, wanted: Level) -> bool:
    if held is None:
        return False
    return held in ("write", "admin") if wanted == "write" else held in ("read", "write", "admin")
