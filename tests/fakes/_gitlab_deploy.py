"""The fake GitLab's project hooks, their event log, deploy tokens, commit statuses and Git server.

Rules and their sources (``/work/shared/provider-facts.md``, "Learned since", unless a link says otherwise):

- Hooks and deploy tokens need the Maintainer role (403 below it) and the ``api`` scope; the hook's
  secret (``token``) is never shown again. An instance refuses hook URLs on local or private addresses
  unless its administrator allows them (docs.gitlab.com, "Filter requests to local network"; the
  answer is 422 ``{"error": "Invalid url given"}``): ``fake.allow_local_requests``.
- Deliveries carry ``X-Gitlab-Event`` (``Push Hook``, ``Tag Push Hook``), ``X-Gitlab-Token`` (the secret,
  verbatim), ``X-Gitlab-Event-UUID`` and from 17.4 ``Idempotency-Key``, both the same on a resend. GitLab
  does not retry; after 4 failures in a row it disables the hook for a while (1 minute, growing), after
  40 for good (``alert_status``), and sends nothing meanwhile (docs.gitlab.com, "Auto-disabled webhooks").
- ``GET /projects/:id/hooks/:hook_id/events``: the last 7 days, newest first (**[unverified]** the order),
  ``response_status`` the status code as text, or "internal error" when no answer came; ``status`` filters
  (``successful``, ``client_failure``, ``server_failure`` or a code). ``POST …/events/:id/resend`` (17.4+,
  404 before).
- Deploy tokens: ``POST /projects/:id/deploy_tokens`` → 201 with ``token`` (shown once), username
  ``gitlab+deploy-token-{id}``; ``GET`` shows ``revoked`` and ``expired``; ``DELETE`` → 204.
- Statuses: ``POST /projects/:id/statuses/:sha`` (Developer or higher); the same state again is 400
  "Cannot transition status via :<event> from :<state>"; an unknown commit 404.
- Git over HTTPS (``GET /{namespace}/{project}.git/info/refs?service=git-upload-pack``): Basic
  authentication with a deploy token (its user name and the token, ``read_repository``, that project
  only) or a member's personal token; 401 otherwise (docs.gitlab.com, "Deploy tokens").
"""

from __future__ import annotations

import ipaddress
import json
import secrets
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from starlette.responses import Response

from tests.fakes._github_common import basic_auth
from tests.fakes._gitlab_models import (
    DEVELOPER,
    MAINTAINER,
    GitLabDeployToken,
    GitLabHook,
    GitLabProject,
    GitLabToken,
)
from tests.fakes._http import Call, Handler, Router, iso, json_response
from tests.fakes._webhooks import Attempt, Outgoing

if TYPE_CHECKING:
    from tests.fakes.gitlab import FakeGitLab

API = "/api/v4"
WRITE = frozenset({"api"})
READ = frozenset({"api", "read_api"})
EVENT_RETENTION = 7 * 86_400
_TRANSITIONS = {
    "pending": "enqueue",
    "running": "run",
    "success": "success",
    "failed": "drop",
    "canceled": "cancel",
}
Wrap = Callable[[Callable[[Call, GitLabToken], Response], frozenset[str] | None], Handler]


def error(status: int, message: Any) -> Response:
    return json_response({"message": message}, status)


class DeployEndpoints:
    def __init__(self, fake: FakeGitLab) -> None:
        self.fake = fake

    def register(self, router: Router, wrap: Wrap) -> None:
        project = f"{API}/projects/{{id}}"
        router.add("GET", f"{project}/hooks", wrap(self.list_hooks, READ))
        router.add("POST", f"{project}/hooks", wrap(self.create_hook, WRITE))
        router.add("GET", f"{project}/hooks/{{hook_id}}", wrap(self.get_hook, READ))
        router.add("PUT", f"{project}/hooks/{{hook_id}}", wrap(self.update_hook, WRITE))
        router.add("DELETE", f"{project}/hooks/{{hook_id}}", wrap(self.delete_hook, WRITE))
        router.add("GET", f"{project}/hooks/{{hook_id}}/events", wrap(self.hook_events, READ))
        router.add(
            "POST", f"{project}/hooks/{{hook_id}}/events/{{event_id}}/resend", wrap(self.resend, WRITE)
        )
        router.add("GET", f"{project}/deploy_tokens", wrap(self.list_tokens, READ))
        router.add("POST", f"{project}/deploy_tokens", wrap(self.create_token, WRITE))
        router.add("GET", f"{project}/deploy_tokens/{{token_id}}", wrap(self.get_token, READ))
        router.add("DELETE", f"{project}/deploy_tokens/{{token_id}}", wrap(self.delete_token, WRITE))
        router.add("POST", f"{project}/statuses/{{sha}}", wrap(self.create_status, WRITE))
        router.add("GET", "/{path+}/info/refs", self.git_refs)

    # --- access ----------------------------------------------------------------------------------

    def _project(self, call: Call, token: GitLabToken, level: int) -> GitLabProject | Response:
        project = self.fake.find_project(call.params["id"])
        if project is None or not self.fake.can_see(token.user_id, project):
            return error(404, "404 Project Not Found")
        if (self.fake.project_levels(token.user_id, project)[2] or 0) < level:
            return error(403, "403 Forbidden")
        return project

    def _hook(self, call: Call, project: GitLabProject) -> GitLabHook | None:
        return next((h for h in project.hooks if str(h.id) == call.params["hook_id"]), None)

    def _body(self, call: Call) -> dict[str, Any]:
        return call.form()

    # --- hooks -----------------------------------------------------------------------------------

    def list_hooks(self, call: Call, token: GitLabToken) -> Response:
        project = self._project(call, token, MAINTAINER)
        if isinstance(project, Response):
            return project
        return json_response([h.render() for h in project.hooks])

    def get_hook(self, call: Call, token: GitLabToken) -> Response:
        project = self._project(call, token, MAINTAINER)
        if isinstance(project, Response):
            return project
        hook = self._hook(call, project)
        return json_response(hook.render()) if hook else error(404, "404 Not Found")

    def _url_refused(self, url: Any) -> Response | None:
        if (
            not isinstance(url, str)
            or urlsplit(url).scheme not in ("http", "https")
            or not urlsplit(url).hostname
        ):
            return error(400, {"url": ["is blocked: Only allowed schemes are http, https"]})
        if self.fake.allow_local_requests:
            return None
        host = urlsplit(url).hostname or ""
        try:
            local = ipaddress.ip_address(host).is_private or ipaddress.ip_address(host).is_loopback
        except ValueError:
            local = host == "localhost" or host.endswith(".localhost")
        return json_response({"error": "Invalid url given"}, 422) if local else None

    def create_hook(self, call: Call, token: GitLabToken) -> Response:
        project = self._project(call, token, MAINTAINER)
        if isinstance(project, Response):
            return project
        body = self._body(call)
        refused = self._url_refused(body.get("url"))
        if refused is not None:
            return refused
        hook = GitLabHook(
            id=next(self.fake.object_ids),
            project_id=project.id,
            url=body["url"],
            token=body.get("token") or None,
            push_events=_flag(body.get("push_events"), True),
            tag_push_events=_flag(body.get("tag_push_events"), False),
            enable_ssl_verification=_flag(body.get("enable_ssl_verification"), True),
            created_at=self.fake.now(),
        )
        project.hooks.append(hook)
        return json_response(hook.render(), 201)

    def update_hook(self, call: Call, token: GitLabToken) -> Response:
        project = self._project(call, token, MAINTAINER)
        if isinstance(project, Response):
            return project
        hook = self._hook(call, project)
        if hook is None:
            return error(404, "404 Not Found")
        body = self._body(call)
        refused = self._url_refused(body.get("url", hook.url))
        if refused is not None:
            return refused
        hook.url = body.get("url", hook.url)
        if "token" in body:
            hook.token = body["token"] or None
        hook.push_events = _flag(body.get("push_events"), hook.push_events)
        hook.tag_push_events = _flag(body.get("tag_push_events"), hook.tag_push_events)
        hook.enable_ssl_verification = _flag(
            body.get("enable_ssl_verification"), hook.enable_ssl_verification
        )
        return json_response(hook.render())

    def delete_hook(self, call: Call, token: GitLabToken) -> Response:
        project = self._project(call, token, MAINTAINER)
        if isinstance(project, Response):
            return project
        hook = self._hook(call, project)
        if hook is None:
            return error(404, "404 Not Found")
        project.hooks.remove(hook)
        return Response(status_code=204)

    def hook_events(self, call: Call, token: GitLabToken) -> Response:
        project = self._project(call, token, MAINTAINER)
        if isinstance(project, Response):
            return project
        hook = self._hook(call, project)
        if hook is None:
            return error(404, "404 Not Found")
        now = self.fake.now()
        events = [e for e in reversed(hook.events) if now - e["_at"] <= EVENT_RETENTION]
        wanted = call.query.get("status")
        if wanted:
            events = [e for e in events if _status_matches(e["response_status"], wanted)]
        per_page = min(100, max(1, int(call.query.get("per_page", "20") or 20)))
        page = max(1, int(call.query.get("page", "1") or 1))
        chosen = events[(page - 1) * per_page : page * per_page]
        headers = {"x-page": str(page), "x-per-page": str(per_page), "x-total": str(len(events))}
        return json_response(
            [{k: v for k, v in e.items() if not k.startswith("_")} for e in chosen], headers=headers
        )

    def resend(self, call: Call, token: GitLabToken) -> Response:
        if self.fake.version_below_17_4:
            return error(404, "404 Not Found")
        project = self._project(call, token, MAINTAINER)
        if isinstance(project, Response):
            return project
        hook = self._hook(call, project)
        found = (
            next((e for e in hook.events if str(e["id"]) == call.params["event_id"]), None) if hook else None
        )
        if hook is None or found is None:
            return error(404, "404 Not Found")
        request = found["_request"]
        self.fake.enqueue(
            project, hook, request["event"], request["body"], request["uuid"], request["idempotency_key"]
        )
        return json_response({"response_status": "queued"}, 201)

    # --- deploy tokens ---------------------------------------------------------------------------

    def _token(self, call: Call, project: GitLabProject) -> GitLabDeployToken | None:
        return next((t for t in project.deploy_tokens if str(t.id) == call.params["token_id"]), None)

    def list_tokens(self, call: Call, token: GitLabToken) -> Response:
        project = self._project(call, token, MAINTAINER)
        if isinstance(project, Response):
            return project
        return json_response([t.render(self.fake.now()) for t in project.deploy_tokens])

    def get_token(self, call: Call, token: GitLabToken) -> Response:
        project = self._project(call, token, MAINTAINER)
        if isinstance(project, Response):
            return project
        found = self._token(call, project)
        return json_response(found.render(self.fake.now())) if found else error(404, "404 Not Found")

    def create_token(self, call: Call, token: GitLabToken) -> Response:
        project = self._project(call, token, MAINTAINER)
        if isinstance(project, Response):
            return project
        try:
            body = call.json() or {}
        except ValueError:
            body = {}
        scopes = body.get("scopes")
        allowed = {
            "read_repository",
            "read_registry",
            "write_registry",
            "read_package_registry",
            "write_package_registry",
        }
        if (
            not isinstance(body.get("name"), str)
            or not isinstance(scopes, list)
            or not scopes
            or not set(scopes) <= allowed
        ):
            return error(
                400, {"scopes": ["does not have a valid value"]} if body.get("name") else "name is missing"
            )
        created = GitLabDeployToken(
            id=next(self.fake.object_ids),
            project_id=project.id,
            name=body["name"],
            token="gldt-" + secrets.token_urlsafe(15),
            scopes=list(scopes),
            expires_at=None,
        )
        project.deploy_tokens.append(created)
        return json_response(created.render(self.fake.now(), with_token=True), 201)

    def delete_token(self, call: Call, token: GitLabToken) -> Response:
        project = self._project(call, token, MAINTAINER)
        if isinstance(project, Response):
            return project
        found = self._token(call, project)
        if found is None:
            return error(404, "404 Not Found")
        project.deploy_tokens.remove(found)
        return Response(status_code=204)

    # --- statuses --------------------------------------------------------------------------------

    def create_status(self, call: Call, token: GitLabToken) -> Response:
        project = self._project(call, token, DEVELOPER)
        if isinstance(project, Response):
            return project
        body = self._body(call)
        state = body.get("state")
        if state not in _TRANSITIONS:
            return error(400, "state does not have a valid value")
        sha = call.params["sha"]
        if sha not in self.fake.commits_of(project):
            return error(404, "404 Commit Not Found")
        name = body.get("name") or "default"
        history = project.statuses.setdefault(sha, [])
        latest = next((s for s in reversed(history) if s["name"] == name), None)
        if latest is not None and latest["status"] == state:
            return error(400, f"Cannot transition status via :{_TRANSITIONS[state]} from :{state}")
        status = {
            "id": next(self.fake.object_ids),
            "sha": sha,
            "ref": body.get("ref"),
            "status": state,
            "name": name,
            "target_url": body.get("target_url"),
            "description": body.get("description"),
            "created_at": iso(self.fake.now(), millis=True),
        }
        history.append(status)
        return json_response(status, 201)

    # --- the Git server --------------------------------------------------------------------------

    def git_refs(self, call: Call) -> Response:
        path = call.params["path"]
        if not path.endswith(".git") or call.query.get("service") != "git-upload-pack":
            return Response("Not Found\n", 404, media_type="text/plain")
        project = self.fake.find_project(path[:-4])
        if project is None:
            return Response("Not Found\n", 404, media_type="text/plain")
        if self.fake.git_read_allowed(project, basic_auth(call)):
            self.fake.git_fetches.append(("https", project.path_with_namespace))
            return Response(
                b"001e# service=git-upload-pack\n0000",
                200,
                media_type="application/x-git-upload-pack-advertisement",
            )
        return Response(
            "HTTP Basic: Access denied\n",
            401,
            {"WWW-Authenticate": 'Basic realm="GitLab"'},
            media_type="text/plain",
        )


def _flag(value: Any, default: bool) -> bool:
    if value is None:
        return default
    return value if isinstance(value, bool) else str(value).lower() in ("true", "1")


def _status_matches(status: str, wanted: str) -> bool:
    code = int(status) if status.isdigit() else 500
    categories = {
        "successful": code < 300,
        "client_failure": 400 <= code < 500,
        "server_failure": code >= 500,
    }
    return categories.get(wanted, status == wanted)


def push_payload(
    project: GitLabProject, web: str, *, kind: str, ref: str, before: str, after: str, message: str, user: str
) -> dict[str, Any]:
    """A push or tag push payload (docs.gitlab.com, "Webhook events": push events, tag events)."""
    deleted = after == "0" * 40
    commits = (
        []
        if deleted
        else [
            {
                "id": after,
                "message": message,
                "title": message.splitlines()[0] if message else "",
                "timestamp": iso(project.last_activity_at),
                "url": f"{web}/{project.path_with_namespace}/-/commit/{after}",
                "author": {"name": user, "email": f"{user}@example.com"},
            }
        ]
    )
    return {
        "object_kind": kind,
        "event_name": kind,
        "before": before,
        "after": after,
        "ref": ref,
        "ref_protected": False,
        "checkout_sha": None if deleted else after,
        "user_id": 1,
        "user_name": user.title(),
        "user_username": user,
        "project_id": project.id,
        "project": {
            "id": project.id,
            "name": project.name,
            "path_with_namespace": project.path_with_namespace,
            "web_url": f"{web}/{project.path_with_namespace}",
        },
        "commits": commits,
        "total_commits_count": len(commits),
        "repository": {"name": project.name, "homepage": f"{web}/{project.path_with_namespace}"},
    }


def outgoing(
    fake: FakeGitLab, hook: GitLabHook, event: str, body: bytes, event_uuid: str, idempotency_key: str | None
) -> Outgoing:
    """One delivery to ``hook``; its outcome goes into the hook's event log and its failure count."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"GitLab/{fake.version}",
        "X-Gitlab-Event": event,
        "X-Gitlab-Instance": "https://gitlab.test",
        "X-Gitlab-Webhook-UUID": str(uuid.uuid5(uuid.NAMESPACE_URL, f"hook-{hook.id}")),
        "X-Gitlab-Event-UUID": event_uuid,
    }
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    if hook.token:
        headers["X-Gitlab-Token"] = hook.token

    def record(attempt: Attempt) -> None:
        with fake.lock:
            now = fake.now()
            failed = attempt.status == 0 or attempt.status >= 500
            hook.failures = hook.failures + 1 if failed else 0
            if hook.failures >= 40:
                hook.alert_status, hook.disabled_until = "disabled", None
            elif hook.failures >= 4:
                hook.alert_status = "temporarily_disabled"
                hook.disabled_until = now + 60 * 2 ** min(hook.failures - 4, 10)
            elif not failed:
                hook.alert_status, hook.disabled_until = "executable", None
            hook.events.append(
                {
                    "id": next(fake.hook_event_ids),
                    "url": hook.url,
                    "trigger": "tag_push_hooks" if event == "Tag Push Hook" else "push_hooks",
                    "request_headers": {k: v for k, v in headers.items() if k != "X-Gitlab-Token"}
                    | ({"X-Gitlab-Token": "[REDACTED]"} if hook.token else {}),
                    "request_data": json.loads(body),
                    "response_headers": {},
                    "response_body": "",
                    "execution_duration": round(attempt.seconds, 3),
                    "response_status": str(attempt.status) if attempt.status else "internal error",
                    "created_at": iso(now, millis=True),
                    "_at": now,
                    "_request": {
                        "event": event,
                        "body": body,
                        "uuid": event_uuid,
                        "idempotency_key": idempotency_key,
                    },
                }
            )

    return Outgoing(hook.url, headers, body, idempotency_key or event_uuid, redelivery=False, record=record)
