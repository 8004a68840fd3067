"""GitLab: the project hook of a link, and its delivery log (hook events).

Sources: ``/work/shared/provider-facts.md`` ("Learned since") and GitLab's "Project webhooks" API:
``POST /projects/:id/hooks {url, token, push_events, tag_push_events, enable_ssl_verification}`` → 201
``{id}``; ``GET/PUT/DELETE /projects/:id/hooks/:hook_id``; ``alert_status`` ``executable`` |
``temporarily_disabled`` | ``disabled`` (GitLab disables a hook after 4 failures in a row for a while,
for good after 40); ``GET /projects/:id/hooks/:hook_id/events`` (the last 7 days; ``request_headers``
carry ``X-Gitlab-Event-UUID`` and, from 17.4, ``Idempotency-Key``; ``response_status`` is the answer's
status code, or text such as "internal error" when none came) and ``POST …/events/:id/resend`` (17.4).
An instance refuses hook URLs on local or private addresses unless its administrator allows them
(GitLab, "Filter requests to local network": 422 with "Invalid url given" or "is blocked: …").
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from app.domain.errors import ProviderUnavailableError
from app.hosts.deploy import DeliveryAttempt, HookHealth
from app.hosts.gitlab.project_scope import ProjectScope, safe_reason
from app.hosts.parsing import parse_timestamp
from app.net.client import json_body

log = logging.getLogger(__name__)

PUSH_TRIGGERS = ("push_hooks", "tag_push_hooks")
_DISABLED = ("disabled", "temporarily_disabled")


def _hook(url: str, secret: str) -> dict[str, Any]:
    return {
        "url": url,
        "token": secret,
        "push_events": True,
        "tag_push_events": True,
        "enable_ssl_verification": url.startswith("https://"),
    }


async def ensure_webhook(scope: ProjectScope, url: str, secret: str, hook_id: str | None) -> str:
    """The id of a working hook posting to ``url``: ``hook_id`` updated, one adopted, or a new one.

    A disabled hook is replaced: GitLab re-enables one only after a successful test request.
    """
    if hook_id is None or not hook_id.isdigit():
        hook_id = await _hook_posting_to(scope, url)
    if hook_id is not None:
        response = await scope.http.send("PUT", scope.url(f"/hooks/{hook_id}"), json_body=_hook(url, secret))
        if response.status_code == 200:
            body = json_body(response, scope.http.host)
            if not (isinstance(body, dict) and body.get("alert_status") in _DISABLED):
                return hook_id
            await delete_webhook(scope, hook_id)
        elif response.status_code != 404:
            raise _refused(scope, response, url)
    response = await scope.http.send("POST", scope.url("/hooks"), json_body=_hook(url, secret))
    if response.status_code == 201:
        body = json_body(response, scope.http.host)
        new_id = body.get("id") if isinstance(body, dict) else None
        if isinstance(new_id, int) and not isinstance(new_id, bool):
            return str(new_id)
        raise ProviderUnavailableError(
            f"{scope.http.host} answered with an unexpected hook; try again later."
        )
    raise _refused(scope, response, url)


def _refused(scope: ProjectScope, response: Any, url: str) -> Exception:
    if response.status_code in (400, 422):
        return ProviderUnavailableError(
            f"{scope.http.host} refused the webhook URL {url}{safe_reason(response)}. PUBLIC_URL must be an "
            "address GitLab can reach; an instance refuses local and private addresses unless its "
            "administrator allows them (Admin area → Settings → Network → Outbound requests)."
        )
    return scope.refusal(response, doing="add the webhook")


async def _hook_posting_to(scope: ProjectScope, url: str) -> str | None:
    response = await scope.http.get(scope.url("/hooks"), params={"per_page": 100})
    if response.status_code != 200:
        raise scope.refusal(response, doing="read the webhooks")
    hooks = json_body(response, scope.http.host)
    for hook in hooks if isinstance(hooks, list) else []:
        if isinstance(hook, dict) and hook.get("url") == url and isinstance(hook.get("id"), int):
            return str(hook["id"])
    return None


async def webhook_health(scope: ProjectScope, hook_id: str) -> HookHealth:
    if not hook_id.isdigit():
        return HookHealth.GONE
    response = await scope.http.get(scope.url(f"/hooks/{hook_id}"))
    if response.status_code == 404:
        return HookHealth.GONE
    if response.status_code != 200:
        raise scope.refusal(response, doing="read the webhook")
    body = json_body(response, scope.http.host)
    disabled = isinstance(body, dict) and body.get("alert_status") in _DISABLED
    return HookHealth.DISABLED if disabled else HookHealth.WORKING


async def delete_webhook(scope: ProjectScope, hook_id: str) -> None:
    if not hook_id.isdigit():
        return
    response = await scope.http.send("DELETE", scope.url(f"/hooks/{hook_id}"))
    if response.status_code not in (200, 204, 404):
        raise scope.refusal(response, doing="remove the webhook")


async def delivery_log(
    scope: ProjectScope, hook_id: str, since: datetime, max_pages: int
) -> list[DeliveryAttempt]:
    """The hook's logged events (GitLab keeps 7 days), at most ``max_pages`` pages of 100."""
    attempts: list[DeliveryAttempt] = []
    for page in range(1, max_pages + 1):
        response = await scope.http.get(
            scope.url(f"/hooks/{hook_id}/events"), params={"per_page": 100, "page": page}
        )
        if response.status_code == 404 and page == 1:
            log.info("gitlab: no hook event log here (before 17.3?)", extra={"host": scope.http.host})
            return []
        if response.status_code != 200:
            raise scope.refusal(response, doing="read the webhook's events")
        events = json_body(response, scope.http.host)
        found = [a for a in map(_attempt, events if isinstance(events, list) else []) if a is not None]
        attempts.extend(a for a in found if a.delivered_at is None or a.delivered_at >= since)
        if len(found) < 100 or any(a.delivered_at is not None and a.delivered_at < since for a in found):
            break
    return attempts


def _attempt(raw: Any) -> DeliveryAttempt | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), int):
        return None
    headers = raw.get("request_headers")
    headers = {str(k).lower(): v for k, v in headers.items()} if isinstance(headers, dict) else {}
    delivery_id = headers.get("idempotency-key") or headers.get("x-gitlab-event-uuid")
    if not isinstance(delivery_id, str) or not delivery_id:
        return None
    status = str(raw.get("response_status", "")).strip()
    return DeliveryAttempt(
        log_id=str(raw["id"]),
        delivery_id=delivery_id,
        delivered_at=parse_timestamp(raw.get("created_at")),
        status_code=int(status) if status.isdigit() else None,
        is_push=raw.get("trigger") in PUSH_TRIGGERS,
    )


async def redeliver(scope: ProjectScope, hook_id: str, attempt: DeliveryAttempt) -> None:
    response = await scope.http.send("POST", scope.url(f"/hooks/{hook_id}/events/{attempt.log_id}/resend"))
    if response.status_code not in (200, 201, 202):
        raise scope.refusal(response, doing="resend a webhook event")
