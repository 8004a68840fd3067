"""The fake GitHub's repository webhooks, their deliveries, deploy keys and ``/meta``.

Rules and their sources (``/work/shared/provider-facts.md`` unless a link says otherwise):

- Hooks: ``POST /repos/{o}/{r}/hooks`` → 201; the body is checked after the permission (as the probes of
  the fine-grained check rely on); ``config.secret`` is shown as ``********`` ever after (docs.github.com,
  "Repository webhooks": the example answers); a second hook with the same URL is refused with 422 "Hook
  already exists on this repository" (**[unverified]**, widely reported); ``ping`` is sent on creation.
- Deliveries carry ``X-GitHub-Event``, ``X-GitHub-Delivery`` (a GUID, the same on redelivery),
  ``X-Hub-Signature-256`` (and the older SHA-1 ``X-Hub-Signature``); payloads over 25 MB are not
  delivered at all. GitHub never retries a failed delivery by itself.
- ``GET …/hooks/{id}/deliveries``: newest first, ``per_page`` ≤ 100, cursor pagination through ``Link``;
  ``status_code`` 0 when no answer came. ``POST …/deliveries/{id}/attempts`` → 202 and the delivery is
  sent again with ``redelivery: true``; only recent deliveries can be redelivered (**[unverified]** how
  recent: the fake allows 3 days and answers 422 after).
- Deploy keys: ``POST …/keys`` (Administration write, admin role) → 201; a key already used anywhere on
  GitHub is refused with 422 "key is already in use" (docs.github.com, "Managing deploy keys": a deploy
  key is unique across GitHub); an organization may forbid deploy keys (**[unverified]** the answer: the
  fake gives 403 "Deploy keys are disabled for this repository").
- ``GET /meta``: ``ssh_keys``, the host keys of GitHub's SSH server (docs.github.com, "Meta").
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import serialization
from starlette.responses import Response

from tests.fakes._github_common import check_fields, github_error, invalid, paginate, validation_failed
from tests.fakes._github_models import GitHubDeployKey, GitHubHook, GitHubRepository, GitHubToken
from tests.fakes._github_permissions import (
    ADMIN_WRITE,
    DEPLOY_KEYS_READ,
    HOOK_SCOPES,
    HOOKS_READ,
    HOOKS_WRITE,
    Need,
)
from tests.fakes._http import Call, Handler, Router, iso, json_response
from tests.fakes._webhooks import Attempt, Outgoing

if TYPE_CHECKING:
    from tests.fakes.github import FakeGitHub

ApiHandler = Callable[[Call, GitHubToken], Response]
Wrap = Callable[..., Handler]
MAX_PAYLOAD = 25 * 1024 * 1024
REDELIVERY_WINDOW = 3 * 86_400
KEY_DOCS = "https://docs.github.com/rest/deploy-keys/deploy-keys#create-a-deploy-key"
DELIVERY_DOCS = "https://docs.github.com/rest/repos/webhooks#list-deliveries-for-a-repository-webhook"


def sign(secret: str, body: bytes) -> dict[str, str]:
    return {
        "X-Hub-Signature": "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest(),
        "X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
    }


class DeployEndpoints:
    def __init__(self, fake: FakeGitHub) -> None:
        self.fake = fake

    def register(self, router: Router, api: str, wrap: Wrap) -> None:
        repo = f"{api}/repos/{{owner}}/{{repo}}"
        hooks = ", ".join(sorted(HOOK_SCOPES))

        def add(method: str, path: str, handler: ApiHandler, scopes: str, need: Need) -> None:
            # X-Accepted-GitHub-Permissions comes with every answer (provider-facts, "Learned since").
            router.add(
                method, path, wrap(handler, accepted_scopes=scopes, accepted_permissions=need.accepted)
            )

        add("GET", f"{repo}/hooks", self.list_hooks, hooks, HOOKS_READ)
        add("POST", f"{repo}/hooks", self.create_hook, hooks, HOOKS_WRITE)
        add("GET", f"{repo}/hooks/{{hook_id}}", self.get_hook, hooks, HOOKS_READ)
        add("PATCH", f"{repo}/hooks/{{hook_id}}", self.update_hook, hooks, HOOKS_WRITE)
        add("DELETE", f"{repo}/hooks/{{hook_id}}", self.delete_hook, hooks, HOOKS_WRITE)
        add("GET", f"{repo}/hooks/{{hook_id}}/deliveries", self.deliveries, hooks, HOOKS_READ)
        attempts = f"{repo}/hooks/{{hook_id}}/deliveries/{{delivery_id}}/attempts"
        add("POST", attempts, self.redeliver, hooks, HOOKS_WRITE)
        add("GET", f"{repo}/keys", self.list_keys, "repo", DEPLOY_KEYS_READ)
        add("POST", f"{repo}/keys", self.create_key, "repo", ADMIN_WRITE)
        add("GET", f"{repo}/keys/{{key_id}}", self.get_key, "repo", DEPLOY_KEYS_READ)
        add("DELETE", f"{repo}/keys/{{key_id}}", self.delete_key, "repo", ADMIN_WRITE)
        router.add("GET", f"{api}/meta", self.meta)

    # --- hooks -----------------------------------------------------------------------------------

    def _api(self, call: Call) -> str:
        return call.root_url() + self.fake.api_prefix

    def _hook(self, call: Call, repo: GitHubRepository) -> GitHubHook | None:
        wanted = call.params["hook_id"]
        return next((h for h in repo.hooks if str(h.id) == wanted), None)

    def list_hooks(self, call: Call, token: GitHubToken) -> Response:
        repo = self.fake.authorize(call, token, HOOKS_READ)
        if isinstance(repo, Response):
            return repo
        return json_response([h.render(self._api(call), repo.full_name) for h in repo.hooks])

    def get_hook(self, call: Call, token: GitHubToken) -> Response:
        repo = self.fake.authorize(call, token, HOOKS_READ)
        if isinstance(repo, Response):
            return repo
        hook = self._hook(call, repo)
        if hook is None:
            return github_error(404, "Not Found", HOOKS_READ.docs)
        return json_response(hook.render(self._api(call), repo.full_name))

    def _validate_hook(self, body: Any, docs: str, *, partial: bool) -> Response | None:
        problem = check_fields(
            body,
            {"name": "string", "config": "object", "events": "array", "active": "boolean"},
            () if partial else ("config",),
            docs,
        )
        if problem:
            return problem
        config = body.get("config", {}) if partial else body["config"]
        url = config.get("url")
        url_given = not partial or "config" in body
        if url_given and (not isinstance(url, str) or not url.startswith(("http://", "https://"))):
            return validation_failed(
                docs,
                {"resource": "Hook", "code": "custom", "message": "Config must contain URL for webhooks"},
            )
        if body.get("name", "web") != "web":
            return validation_failed(
                docs, {"resource": "Hook", "code": "custom", "message": "Name must be 'web'"}
            )
        if not all(isinstance(e, str) for e in body.get("events", [])):
            return invalid("For 'items', is not a string.", docs)
        return None

    def create_hook(self, call: Call, token: GitHubToken) -> Response:
        docs = HOOKS_WRITE.docs
        repo = self.fake.authorize(call, token, HOOKS_WRITE)
        if isinstance(repo, Response):
            return repo
        body, bad = self.fake.json_body(call, docs)
        if bad:
            return bad
        problem = self._validate_hook(body, docs, partial=False)
        if problem:
            return problem
        config = body["config"]
        if any(h.url == config["url"] for h in repo.hooks):
            return validation_failed(
                docs,
                {"resource": "Hook", "code": "custom", "message": "Hook already exists on this repository"},
            )
        now = self.fake.now()
        hook = GitHubHook(
            id=next(self.fake.object_ids),
            url=config["url"],
            secret=config.get("secret") or None,
            events=list(body.get("events", ["push"])),
            active=body.get("active", True),
            content_type=config.get("content_type", "form"),
            created_at=now,
            updated_at=now,
        )
        repo.hooks.append(hook)
        self.fake.record_side_effect(call, {**body, "config": {**config, "secret": "********"}})
        if hook.active:
            self.fake.send_ping(repo, hook, self._api(call))
        return json_response(hook.render(self._api(call), repo.full_name), 201)

    def update_hook(self, call: Call, token: GitHubToken) -> Response:
        docs = "https://docs.github.com/rest/repos/webhooks#update-a-repository-webhook"
        repo = self.fake.authorize(call, token, HOOKS_WRITE)
        if isinstance(repo, Response):
            return repo
        hook = self._hook(call, repo)
        if hook is None:
            return github_error(404, "Not Found", docs)
        body, bad = self.fake.json_body(call, docs)
        if bad:
            return bad
        problem = self._validate_hook(body, docs, partial=True)
        if problem:
            return problem
        config = body.get("config")
        if config is not None:
            hook.url = config.get("url", hook.url)
            hook.content_type = config.get("content_type", hook.content_type)
            if "secret" in config:
                hook.secret = config["secret"] or None
        hook.events = list(body.get("events", hook.events))
        hook.active = body.get("active", hook.active)
        hook.updated_at = self.fake.now()
        return json_response(hook.render(self._api(call), repo.full_name))

    def delete_hook(self, call: Call, token: GitHubToken) -> Response:
        repo = self.fake.authorize(call, token, HOOKS_WRITE)
        if isinstance(repo, Response):
            return repo
        hook = self._hook(call, repo)
        if hook is None:
            return github_error(404, "Not Found", HOOKS_WRITE.docs)
        repo.hooks.remove(hook)
        return Response(status_code=204)

    def deliveries(self, call: Call, token: GitHubToken) -> Response:
        repo = self.fake.authorize(call, token, HOOKS_READ)
        if isinstance(repo, Response):
            return repo
        hook = self._hook(call, repo)
        if hook is None:
            return github_error(404, "Not Found", DELIVERY_DOCS)
        per_page = min(100, max(1, int(call.query.get("per_page", "30") or 30)))
        newest_first = list(reversed(hook.deliveries))
        cursor = call.query.get("cursor")
        if cursor:
            newest_first = [d for d in newest_first if d["id"] < int(cursor)] if cursor.isdigit() else []
        page = newest_first[:per_page]
        headers = {}
        if len(newest_first) > per_page:
            headers["Link"] = f'<{call.url_with(cursor=page[-1]["id"], per_page=per_page)}>; rel="next"'
        return json_response([_public(d) for d in page], headers=headers)

    def redeliver(self, call: Call, token: GitHubToken) -> Response:
        repo = self.fake.authorize(call, token, HOOKS_WRITE)
        if isinstance(repo, Response):
            return repo
        hook = self._hook(call, repo)
        wanted = call.params["delivery_id"]
        found = next((d for d in hook.deliveries if str(d["id"]) == wanted), None) if hook else None
        if hook is None or found is None:
            return github_error(404, "Not Found", DELIVERY_DOCS)
        if self.fake.now() - found["_at"] > REDELIVERY_WINDOW:
            return github_error(422, "This delivery is too old to redeliver.", DELIVERY_DOCS)
        request = found["_request"]
        self.fake.enqueue(repo, hook, request["event"], request["body"], request["guid"], redelivery=True)
        return json_response({}, 202)

    # --- deploy keys -----------------------------------------------------------------------------

    def _key(self, call: Call, repo: GitHubRepository) -> GitHubDeployKey | None:
        return next((k for k in repo.deploy_keys if str(k.id) == call.params["key_id"]), None)

    def list_keys(self, call: Call, token: GitHubToken) -> Response:
        repo = self.fake.authorize(call, token, DEPLOY_KEYS_READ)
        if isinstance(repo, Response):
            return repo
        page, headers = paginate(call, repo.deploy_keys)
        return json_response([k.render(self._api(call), repo.full_name) for k in page], headers=headers)

    def get_key(self, call: Call, token: GitHubToken) -> Response:
        repo = self.fake.authorize(call, token, DEPLOY_KEYS_READ)
        if isinstance(repo, Response):
            return repo
        key = self._key(call, repo)
        if key is None:
            return github_error(404, "Not Found", KEY_DOCS)
        return json_response(key.render(self._api(call), repo.full_name))

    def create_key(self, call: Call, token: GitHubToken) -> Response:
        repo = self.fake.authorize(call, token, ADMIN_WRITE)
        if isinstance(repo, Response):
            return repo
        body, bad = self.fake.json_body(call, KEY_DOCS)
        if bad:
            return bad
        problem = check_fields(
            body, {"title": "string", "key": "string", "read_only": "boolean"}, ("key",), KEY_DOCS
        )
        if problem:
            return problem
        if not repo.owner.deploy_keys_allowed:
            reason = "Deploy keys are disabled for this repository."
            if repo.owner.deploy_keys_refusal == "validation":
                return validation_failed(
                    KEY_DOCS, {"resource": "PublicKey", "code": "custom", "field": "key", "message": reason}
                )
            return github_error(403, reason, KEY_DOCS)
        material = _key_material(body["key"])
        if material is None:
            return validation_failed(
                KEY_DOCS,
                {
                    "resource": "PublicKey",
                    "code": "custom",
                    "field": "key",
                    "message": "key is invalid. You must supply a key in OpenSSH public key format",
                },
            )
        in_use = any(k.key == material for r in self.fake.repositories.values() for k in r.deploy_keys)
        if in_use:
            return validation_failed(
                KEY_DOCS,
                {
                    "resource": "PublicKey",
                    "code": "custom",
                    "field": "key",
                    "message": "key is already in use",
                },
            )
        key = GitHubDeployKey(
            id=next(self.fake.object_ids),
            title=body.get("title") or "deploy key",
            key=material,
            read_only=body.get("read_only", False),
            created_at=self.fake.now(),
        )
        repo.deploy_keys.append(key)
        self.fake.record_side_effect(call, {k: v for k, v in body.items() if k != "key"})
        return json_response(key.render(self._api(call), repo.full_name), 201)

    def delete_key(self, call: Call, token: GitHubToken) -> Response:
        repo = self.fake.authorize(call, token, ADMIN_WRITE)
        if isinstance(repo, Response):
            return repo
        key = self._key(call, repo)
        if key is None:
            return github_error(404, "Not Found", KEY_DOCS)
        repo.deploy_keys.remove(key)
        return Response(status_code=204)

    # --- meta ------------------------------------------------------------------------------------

    def meta(self, call: Call) -> Response:
        return json_response(
            {
                "verifiable_password_authentication": False,
                "ssh_key_fingerprints": {"SHA256_ED25519": self.fake.ssh_host_fingerprint()},
                "ssh_keys": [self.fake.ssh_host_public_key()],
                "hooks": ["127.0.0.1/32"],
                "web": ["127.0.0.1/32"],
                "api": ["127.0.0.1/32"],
                "git": ["127.0.0.1/32"],
            }
        )


def _public(delivery: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in delivery.items() if not k.startswith("_")}


def _key_material(text: str) -> str | None:
    """``type base64`` of an OpenSSH public key line (the comment dropped), or None if it does not parse."""
    parts = text.strip().split()
    if len(parts) < 2:
        return None
    try:
        serialization.load_ssh_public_key(f"{parts[0]} {parts[1]}".encode())
    except (ValueError, binascii.Error):
        return None
    return f"{parts[0]} {parts[1]}"


def push_payload(
    repo: GitHubRepository,
    html: str,
    api: str,
    *,
    ref: str,
    before: str,
    after: str,
    message: str | None,
    pusher: str,
) -> dict[str, Any]:
    """A push event payload (docs.github.com, "Webhook events and payloads", push)."""
    deleted = after == "0" * 40
    head = (
        None
        if deleted
        else {
            "id": after,
            "tree_id": hashlib.sha1(after.encode()).hexdigest(),  # noqa: S324 - an id
            "message": message or "",
            "timestamp": iso(repo.pushed_at),
            "url": f"{html}/{repo.full_name}/commit/{after}",
            "author": {"name": pusher, "email": f"{pusher}@example.com", "username": pusher},
            "committer": {"name": pusher, "email": f"{pusher}@example.com", "username": pusher},
            "added": [],
            "removed": [],
            "modified": ["README.md"],
        }
    )
    return {
        "ref": ref,
        "before": before,
        "after": after,
        "created": before == "0" * 40,
        "deleted": deleted,
        "forced": False,
        "base_ref": None,
        "compare": f"{html}/{repo.full_name}/compare/{before[:12]}...{after[:12]}",
        "commits": [head] if head else [],
        "head_commit": head,
        "repository": repo.render(html, api, None),
        "pusher": {"name": pusher, "email": f"{pusher}@example.com"},
        "sender": repo.owner.render(html, api),
    }


def outgoing(
    fake: FakeGitHub,
    repo: GitHubRepository,
    hook: GitHubHook,
    event: str,
    body: bytes,
    guid: str,
    *,
    redelivery: bool,
) -> Outgoing:
    """One delivery of ``body`` to ``hook``, recorded in its log when sent."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/f4k3",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": guid,
        "X-GitHub-Hook-ID": str(hook.id),
        "X-GitHub-Hook-Installation-Target-ID": str(repo.id),
        "X-GitHub-Hook-Installation-Target-Type": "repository",
    }
    if hook.secret:
        headers |= sign(hook.secret, body)

    def record(attempt: Attempt) -> None:
        with fake.lock:
            now = fake.now()
            status = attempt.status
            hook.deliveries.append(
                {
                    "id": next(fake.delivery_ids),
                    "guid": guid,
                    "delivered_at": iso(now),
                    "redelivery": redelivery,
                    "duration": round(attempt.seconds, 3),
                    "status": "OK"
                    if 200 <= status < 300
                    else ("timed out" if status == 0 else f"Invalid HTTP Response: {status}"),
                    "status_code": status,
                    "event": event,
                    "action": None,
                    "installation_id": None,
                    "repository_id": repo.id,
                    "throttled_at": None,
                    "_at": now,
                    "_request": {"event": event, "body": body, "guid": guid},
                }
            )

    return Outgoing(hook.url, headers, body, guid, redelivery=redelivery, record=record)


def new_guid() -> str:
    return str(uuid.uuid4())


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
