"""Repository endpoints of the fake GitHub, including the fine-grained permission probes.

A write that passes ``authorize`` and body validation is performed and appended to ``fake.side_effects``,
so a test can prove the service only ever sent invalid probe bodies.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from tests.fakes._github_common import check_fields, github_error, invalid, paginate, validation_failed
from tests.fakes._github_models import GitHubRepository, GitHubToken, fake_sha
from tests.fakes._github_permissions import (
    ADMIN_READ,
    ADMIN_WRITE,
    CONTENTS_READ,
    CONTENTS_WRITE,
    READ_REPO,
    STATUSES_READ,
    STATUSES_WRITE,
    Need,
    archived,
    authorize,
)
from tests.fakes._http import Call, Handler, Router, iso, json_response

if TYPE_CHECKING:
    from tests.fakes.github import FakeGitHub

ApiHandler = Callable[[Call, GitHubToken], Response]
MAX_STATUS_DESCRIPTION = 140
MAX_STATUSES_PER_CONTEXT = 1000
Wrap = Callable[..., Handler]
error = github_error
UPGRADE_TO_PRO = "Upgrade to GitHub Pro or make this repository public to enable this feature."


class RepositoryEndpoints:
    def __init__(self, fake: FakeGitHub) -> None:
        self.fake = fake

    def register(self, router: Router, api: str, wrap: Wrap) -> None:
        repo = f"{api}/repos/{{owner}}/{{repo}}"

        def add(method: str, path: str, handler: ApiHandler, scopes: str, need: Need) -> None:
            router.add(
                method, path, wrap(handler, accepted_scopes=scopes, accepted_permissions=need.accepted)
            )

        add("GET", repo, self.get_repo, "repo", READ_REPO)
        add("PATCH", repo, self.update_repo, "repo", ADMIN_WRITE)
        add("GET", f"{repo}/branches", self.list_branches, "repo", CONTENTS_READ)
        add("GET", f"{repo}/git/matching-refs/{{ref+}}", self.matching_refs, "repo", CONTENTS_READ)
        add("GET", f"{repo}/branches/{{branch+}}/protection", self.branch_protection, "repo", ADMIN_READ)
        add("GET", f"{repo}/branches/{{branch+}}", self.get_branch, "repo", CONTENTS_READ)
        add(
            "GET", f"{repo}/commits/{{ref+}}/statuses", self.list_statuses, "repo, repo:status", STATUSES_READ
        )
        add("POST", f"{repo}/statuses/{{sha}}", self.create_status, "repo, repo:status", STATUSES_WRITE)
        add("PUT", f"{repo}/contents/{{path+}}", self.put_contents, "repo", CONTENTS_WRITE)

    # --- authorisation ---------------------------------------------------------------------------

    def authorize(self, call: Call, token: GitHubToken, need: Need) -> GitHubRepository | Response:
        """The repository, or the 404/403 this token gets for it."""
        return authorize(self.fake, call, token, need)

    def perform(self, call: Call, body: Any) -> None:
        from tests.fakes.github import SideEffect

        self.fake.side_effects.append(SideEffect(call.method, call.request.url.path, body))

    def body(self, call: Call, docs: str) -> tuple[Any, Response | None]:
        try:
            return call.json(), None
        except ValueError:
            return None, error(400, "Problems parsing JSON", docs)

    def bases(self, call: Call) -> tuple[str, str]:
        root = call.root_url()
        return (self.fake.html_url or root).rstrip("/"), root + self.fake.api_prefix

    # --- reads -----------------------------------------------------------------------------------

    def get_repo(self, call: Call, token: GitHubToken) -> Response:
        repo = self.authorize(call, token, READ_REPO)
        if isinstance(repo, Response):
            return repo
        html, api = self.bases(call)
        return json_response(repo.render(html, api, token.user))

    def list_branches(self, call: Call, token: GitHubToken) -> Response:
        repo = self.authorize(call, token, CONTENTS_READ)
        if isinstance(repo, Response):
            return repo
        branches = list(repo.branches.values())
        if call.query.get("protected") in ("true", "false"):
            branches = [b for b in branches if b.protected == (call.query["protected"] == "true")]
        page, headers = paginate(call, branches)
        _, api = self.bases(call)
        body = [
            {
                "name": b.name,
                "commit": {"sha": b.sha, "url": f"{api}/repos/{repo.full_name}/commits/{b.sha}"},
                "protected": b.protected,
            }
            for b in page
        ]
        return json_response(body, headers=headers)

    def matching_refs(self, call: Call, token: GitHubToken) -> Response:
        """``GET /repos/{o}/{r}/git/matching-refs/{ref}`` (GitHub docs, "REST API endpoints for Git
        references", "List matching references"): every ref starting with ``refs/{ref}`` — "If the :ref
        doesn't exist in the repository, but existing refs start with :ref, they will be returned as an
        array" — in one answer: the docs name no pagination parameter (provider-facts: "no
        pagination"), so the fake ignores page/per_page and sends no Link. Entries carry ``ref``,
        ``node_id``, ``url`` and ``object {sha, type, url}``, no protection flag. An empty repository
        answers 409 "Git Repository is empty." (the endpoint's documented 409 Conflict)."""
        repo = self.authorize(call, token, CONTENTS_READ)
        if isinstance(repo, Response):
            return repo
        if not repo.branches:
            return error(409, "Git Repository is empty.", CONTENTS_READ.docs)
        wanted = f"refs/{call.params['ref']}"
        _, api = self.bases(call)
        body = [
            {
                "ref": f"refs/heads/{b.name}",
                "node_id": base64.b64encode(f"Ref:{repo.id}:{b.name}".encode()).decode(),
                "url": f"{api}/repos/{repo.full_name}/git/refs/heads/{b.name}",
                "object": {
                    "sha": b.sha,
                    "type": "commit",
                    "url": f"{api}/repos/{repo.full_name}/git/commits/{b.sha}",
                },
            }
            for b in sorted(repo.branches.values(), key=lambda b: b.name)
            if f"refs/heads/{b.name}".startswith(wanted)
        ]
        return json_response(body)

    def get_branch(self, call: Call, token: GitHubToken) -> Response:
        repo = self.authorize(call, token, CONTENTS_READ)
        if isinstance(repo, Response):
            return repo
        branch = repo.branches.get(call.params["branch"])
        if branch is None:
            return error(
                404, "Branch not found", "https://docs.github.com/rest/branches/branches#get-a-branch"
            )
        _, api = self.bases(call)
        return json_response(branch.render(api, repo.full_name))

    def branch_protection(self, call: Call, token: GitHubToken) -> Response:
        repo = self.authorize(call, token, ADMIN_READ)
        if isinstance(repo, Response):
            return repo
        if repo.private and repo.owner.plan == "free":
            # Protection is a paid feature for private repositories, so GitHub refuses to even say
            # whether the branch is protected. Message as users recorded it from api.github.com (e.g.
            # {"message":"Upgrade to GitHub Pro or make this repository public to enable this
            # feature.","status":"403"}); it says nothing about the token, yet carries
            # X-Accepted-GitHub-Permissions like every answer to a fine-grained token.
            return error(403, UPGRADE_TO_PRO, ADMIN_READ.docs)
        branch = repo.branches.get(call.params["branch"])
        if branch is None:
            return error(404, "Branch not found", ADMIN_READ.docs)
        if not branch.protected:
            return error(404, "Branch not protected", ADMIN_READ.docs)
        _, api = self.bases(call)
        url = f"{api}/repos/{repo.full_name}/branches/{branch.name}/protection"
        return json_response(
            {
                "url": url,
                "required_status_checks": None,
                "enforce_admins": {"url": f"{url}/enforce_admins", "enabled": False},
                "required_linear_history": {"enabled": False},
                "allow_force_pushes": {"enabled": False},
                "allow_deletions": {"enabled": False},
            }
        )

    def list_statuses(self, call: Call, token: GitHubToken) -> Response:
        repo = self.authorize(call, token, STATUSES_READ)
        if isinstance(repo, Response):
            return repo
        ref = call.params["ref"]
        sha = repo.branches[ref].sha if ref in repo.branches else ref
        if sha not in repo.commits:
            return error(422, f"No commit found for SHA: {ref}", STATUSES_READ.docs)
        page, headers = paginate(call, list(reversed(repo.statuses.get(sha, []))))
        return json_response(page, headers=headers)

    # --- writes ----------------------------------------------------------------------------------

    def update_repo(self, call: Call, token: GitHubToken) -> Response:
        docs = ADMIN_WRITE.docs
        repo = self.authorize(call, token, ADMIN_WRITE)
        if isinstance(repo, Response):
            return repo
        body, bad = self.body(call, docs)
        if bad:
            return bad
        if repo.archived and not (isinstance(body, dict) and set(body) == {"archived"}):
            # [unverified] which edits GitHub allows on an archived repository; the fake leans to the
            # documented read-only state and lets only un-archiving through.
            return archived(docs)
        spec = {
            "name": "string",
            "description": "string?",
            "homepage": "string?",
            "private": "boolean",
            "visibility": "string",
            "default_branch": "string",
            "archived": "boolean",
            "has_issues": "boolean",
            "has_projects": "boolean",
            "has_wiki": "boolean",
            "is_template": "boolean",
            "allow_squash_merge": "boolean",
            "allow_merge_commit": "boolean",
            "allow_rebase_merge": "boolean",
            "allow_auto_merge": "boolean",
            "delete_branch_on_merge": "boolean",
            "allow_forking": "boolean",
        }
        problem = check_fields(body, spec, (), docs)
        if problem:
            return problem
        if "visibility" in body and body["visibility"] not in ("public", "private", "internal"):
            return invalid(
                f"For 'properties/visibility', {json.dumps(body['visibility'])} is not one of public, private, internal.",
                docs,
            )
        if "name" in body and not body["name"].strip():
            return validation_failed(
                docs, {"resource": "Repository", "code": "missing_field", "field": "name"}
            )
        if "default_branch" in body and body["default_branch"] not in repo.branches:
            return validation_failed(
                docs, {"resource": "Repository", "code": "invalid", "field": "default_branch"}
            )
        if "name" in body:
            self.fake.rename_repository(repo, body["name"])
        if "private" in body:
            repo.private = body["private"]
        if "visibility" in body:
            repo.private = body["visibility"] != "public"
            repo.visibility_override = "internal" if body["visibility"] == "internal" else None
        for name in ("description", "default_branch", "archived"):
            if name in body:
                setattr(repo, name, body[name])
        self.perform(call, body)
        html, api = self.bases(call)
        return json_response(repo.render(html, api, token.user))

    def create_status(self, call: Call, token: GitHubToken) -> Response:
        docs = STATUSES_WRITE.docs
        repo = self.authorize(call, token, STATUSES_WRITE)
        if isinstance(repo, Response):
            return repo
        body, bad = self.body(call, docs)
        if bad:
            return bad
        problem = check_fields(
            body,
            {"state": "string", "target_url": "string?", "description": "string?", "context": "string?"},
            ("state",),
            docs,
        )
        if problem:
            return problem
        if body["state"] not in ("error", "failure", "pending", "success"):
            return validation_failed(
                docs,
                {
                    "resource": "Status",
                    "code": "custom",
                    "field": "state",
                    "message": "state is not included in the list",
                },
            )
        description = body.get("description")
        if isinstance(description, str) and len(description) > MAX_STATUS_DESCRIPTION:
            # The design: "GitHub keeps 140 characters of description". [unverified] whether a longer one
            # is cut or refused; the fake refuses it, the less forgiving of the two.
            return validation_failed(
                docs,
                {
                    "resource": "Status",
                    "code": "custom",
                    "field": "description",
                    "message": "description is too long (maximum is 140 characters)",
                },
            )
        sha = call.params["sha"]
        if sha not in repo.commits:
            return error(422, f"No commit found for SHA: {sha}", docs)
        context = body.get("context") or "default"
        if sum(s["context"] == context for s in repo.statuses.get(sha, [])) >= MAX_STATUSES_PER_CONTEXT:
            # "There is a limit of 1000 statuses per sha and context within a repository. Attempts to
            # create more than 1000 statuses will result in a validation error." (docs.github.com, REST,
            # "Create a commit status"; provider-facts "Learned since"). The reason's wording as users
            # reported it (github community discussions).
            return validation_failed(
                docs,
                {
                    "resource": "Status",
                    "code": "custom",
                    "field": "context",
                    "message": "This SHA and context has reached the maximum number of statuses.",
                },
            )
        _, api = self.bases(call)
        status_id = next(self.fake.object_ids)
        status = {
            "url": f"{api}/repos/{repo.full_name}/statuses/{sha}",
            "id": status_id,
            "node_id": base64.b64encode(f"StatusContext{status_id}".encode()).decode(),
            "state": body["state"],
            "description": body.get("description"),
            "target_url": body.get("target_url"),
            "context": body.get("context") or "default",
            "created_at": iso(self.fake.now()),
            "updated_at": iso(self.fake.now()),
        }
        repo.statuses.setdefault(sha, []).append(status)
        self.perform(call, body)
        return json_response(status, 201)

    def put_contents(self, call: Call, token: GitHubToken) -> Response:
        docs = CONTENTS_WRITE.docs
        repo = self.authorize(call, token, CONTENTS_WRITE)
        if isinstance(repo, Response):
            return repo
        body, bad = self.body(call, docs)
        if bad:
            return bad
        problem = check_fields(
            body,
            {"message": "string", "content": "string", "sha": "string", "branch": "string"},
            ("message", "content"),
            docs,
        )
        if problem:
            return problem
        try:
            base64.b64decode(body["content"], validate=True)
        except (binascii.Error, ValueError):
            return validation_failed(
                docs,
                {
                    "resource": "Commit",
                    "code": "invalid",
                    "field": "content",
                    "message": "content is not valid Base64",
                },
            )
        branch = repo.branches.get(body.get("branch", repo.default_branch))
        if branch is None:
            return error(404, f"Branch {body['branch']} not found", docs)
        path = call.params["path"]
        existing = repo.files.get(path)
        if existing is not None and "sha" not in body:
            return invalid('"sha" wasn\'t supplied.', docs)
        if existing is not None and body["sha"] != existing:
            return error(409, f"{path} does not match {body['sha']}", docs)
        blob = fake_sha(repo.full_name, path, body["content"])
        commit = fake_sha(repo.full_name, branch.name, blob, str(len(repo.commits)))
        repo.files[path] = blob
        branch.sha = commit
        repo.commits.add(commit)
        self.perform(call, {k: v for k, v in body.items() if k != "content"})
        html, api = self.bases(call)
        return json_response(
            {
                "content": {
                    "name": path.rsplit("/", 1)[-1],
                    "path": path,
                    "sha": blob,
                    "html_url": f"{html}/{repo.full_name}/blob/{branch.name}/{path}",
                },
                "commit": {
                    "sha": commit,
                    "message": body["message"],
                    "url": f"{api}/repos/{repo.full_name}/git/commits/{commit}",
                },
            },
            200 if existing else 201,
        )
