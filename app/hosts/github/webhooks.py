"""GitHub: the repository webhook of a link, and its delivery log.

Source: ``/work/shared/provider-facts.md`` ("Webhooks", "Learned since"): ``POST /repos/{o}/{r}/hooks
{name: "web", active, events, config: {url, content_type, secret, insecure_ssl}}`` → 201 ``{id}``;
``GET/PATCH/DELETE …/hooks/{id}``; ``GET …/hooks/{id}/deliveries`` (newest first, ``guid``,
``status_code``, ``delivered_at``, ``redelivery``; cursor pagination through ``Link``) and
``POST …/deliveries/{id}/attempts`` (202). GitHub allows at most 20 hooks per event on a repository,
so one page of ``GET …/hooks`` holds them all.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.domain.errors import ProviderUnavailableError
from app.hosts.deploy import DeliveryAttempt, HookHealth
from app.hosts.github.repository_scope import RepositoryScope
from app.hosts.parsing import parse_timestamp
from app.net.client import json_body

EVENTS = ["push"]  # tag pushes are push events on GitHub (ref refs/tags/…)
PERMISSION = "webhooks:write"


def _config(url: str, secret: str) -> dict[str, Any]:
    return {
        "name": "web",
        "active": True,
        "events": EVENTS,
        "config": {"url": url, "content_type": "json", "secret": secret, "insecure_ssl": "0"},
    }


async def ensure_webhook(scope: RepositoryScope, url: str, secret: str, hook_id: str | None) -> str:
    """The id of a hook posting to ``url`` with ``secret``: ``hook_id`` updated, one adopted, or a new one."""
    if hook_id is not None and hook_id.isdigit():
        response = await scope.http.send(
            "PATCH", scope.url(f"/hooks/{hook_id}"), json_body=_config(url, secret)
        )
        if response.status_code == 200:
            return hook_id
        if response.status_code != 404:
            raise scope.refusal(response, doing="update the webhook", permission=PERMISSION)
    adopted = await _hook_posting_to(scope, url)
    if adopted is not None:
        response = await scope.http.send(
            "PATCH", scope.url(f"/hooks/{adopted}"), json_body=_config(url, secret)
        )
        if response.status_code == 200:
            return adopted
        raise scope.refusal(response, doing="update the webhook", permission=PERMISSION)
    response = await scope.http.send("POST", scope.url("/hooks"), json_body=_config(url, secret))
    if response.status_code == 201:
        return _id_of(json_body(response, scope.http.host), scope)
    raise scope.refusal(response, doing="add the webhook", permission=PERMISSION)


async def _hook_posting_to(scope: RepositoryScope, url: str) -> str | None:
    response = await scope.http.get(scope.url("/hooks"), params={"per_page": 100})
    if response.status_code != 200:
        raise scope.refusal(response, doing="read the webhooks", permission="webhooks:read")
    hooks = json_body(response, scope.http.host)
    for hook in hooks if isinstance(hooks, list) else []:
        config = hook.get("config") if isinstance(hook, dict) else None
        if isinstance(config, dict) and config.get("url") == url:
            return _id_of(hook, scope)
    return None


def _id_of(body: Any, scope: RepositoryScope) -> str:
    hook_id = body.get("id") if isinstance(body, dict) else None
    if not isinstance(hook_id, int) or isinstance(hook_id, bool):
        raise ProviderUnavailableError(
            f"{scope.http.host} answered with an unexpected webhook; try again later."
        )
    return str(hook_id)


async def webhook_health(scope: RepositoryScope, hook_id: str) -> HookHealth:
    if not hook_id.isdigit():
        return HookHealth.GONE
    response = await scope.http.get(scope.url(f"/hooks/{hook_id}"))
    if response.status_code == 404:
        return HookHealth.GONE
    if response.status_code != 200:
        raise scope.refusal(response, doing="read the webhook", permission="webhooks:read")
    hook = json_body(response, scope.http.host)
    active = hook.get("active") if isinstance(hook, dict) else None
    return HookHealth.DISABLED if active is False else HookHealth.WORKING


async def delete_webhook(scope: RepositoryScope, hook_id: str) -> None:
    if not hook_id.isdigit():
        return
    response = await scope.http.send("DELETE", scope.url(f"/hooks/{hook_id}"))
    if response.status_code not in (204, 404):
        raise scope.refusal(response, doing="remove the webhook", permission=PERMISSION)


async def delivery_log(
    scope: RepositoryScope, hook_id: str, since: datetime, max_pages: int
) -> list[DeliveryAttempt]:
    """The logged attempts since ``since``, newest first, reading at most ``max_pages`` pages."""
    attempts: list[DeliveryAttempt] = []
    url: str | None = scope.url(f"/hooks/{hook_id}/deliveries")
    params: dict[str, str | int] | None = {"per_page": 100}
    for _ in range(max_pages):
        if url is None:
            break
        response = await scope.http.get(url, params=params)
        if response.status_code != 200:
            raise scope.refusal(response, doing="read the webhook's deliveries", permission="webhooks:read")
        page = json_body(response, scope.http.host)
        found = [a for a in map(_attempt, page if isinstance(page, list) else []) if a is not None]
        attempts.extend(a for a in found if a.delivered_at is None or a.delivered_at >= since)
        if any(a.delivered_at is not None and a.delivered_at < since for a in found):
            break  # newest first: everything further back is older still
        following = response.links.get("next", {}).get("url")
        # Only follow a next page on the same API (GitHub links it as /repositories/{id}/…).
        url = following if following and following.startswith(f"{scope.api}/") else None
        params = None
    return attempts


def _attempt(raw: Any) -> DeliveryAttempt | None:
    if (
        not isinstance(raw, dict)
        or not isinstance(raw.get("id"), int)
        or not isinstance(raw.get("guid"), str)
    ):
        return None
    status = raw.get("status_code")
    return DeliveryAttempt(
        log_id=str(raw["id"]),
        delivery_id=raw["guid"],
        delivered_at=parse_timestamp(raw.get("delivered_at")),
        # 0 is how GitHub logs "no answer" (a timeout or a refused connection).
        status_code=status if isinstance(status, int) and status > 0 else None,
        is_push=raw.get("event") == "push",
    )


async def redeliver(scope: RepositoryScope, hook_id: str, attempt: DeliveryAttempt) -> None:
    url = scope.url(f"/hooks/{hook_id}/deliveries/{attempt.log_id}/attempts")
    response = await scope.http.send("POST", url)
    if response.status_code not in (200, 202):
        raise scope.refusal(response, doing="redeliver a webhook delivery", permission=PERMISSION)
