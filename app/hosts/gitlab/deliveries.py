"""GitLab: checking and reading a delivery sent to ``POST /webhooks/gitlab/{link id}``.

Sources: ``/work/shared/provider-facts.md`` ("Webhooks and statuses", "Learned since"): the hook's
secret comes verbatim as ``X-Gitlab-Token`` (compared in constant time); ``X-Gitlab-Event`` names the
event (``Push Hook``, ``Tag Push Hook``); ``X-Gitlab-Event-UUID`` and, from 17.4, ``Idempotency-Key``
stay the same on a resend. GitLab's "Webhook events" page: push and tag push payloads carry
``object_kind``, ``ref``, ``before``, ``after``, ``user_username`` / ``user_name`` and ``commits``
(each with ``id`` and ``message``; the head commit is the one whose id is ``after``). GitLab has no
ping: the "Test" button sends a sample push.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

from app.hosts.deploy import DeliveryKind, IncomingDelivery
from app.hosts.parsing import (
    MAX_COMMIT_MESSAGE,
    MAX_NAME,
    bounded_text,
    commit_sha,
    delivery_id,
    delivery_json,
    git_ref,
)

_KINDS = {"Push Hook": DeliveryKind.PUSH, "Tag Push Hook": DeliveryKind.TAG_PUSH}


def verify_delivery(headers: Mapping[str, str], body: bytes, secret: str) -> bool:
    sent = headers.get("x-gitlab-token", "")
    return hmac.compare_digest(sent.encode("utf-8", "replace"), secret.encode())


def parse_delivery(headers: Mapping[str, str], body: bytes) -> IncomingDelivery:
    # Idempotency-Key first: it is the one GitLab documents as stable across resends (17.4+).
    raw_id = headers.get("idempotency-key") or headers.get("x-gitlab-event-uuid")
    delivery = delivery_id(raw_id, "Idempotency-Key or X-Gitlab-Event-UUID")
    kind = _KINDS.get(headers.get("x-gitlab-event", "").strip(), DeliveryKind.OTHER)
    if kind is DeliveryKind.OTHER:
        return IncomingDelivery(kind, delivery)
    payload = delivery_json(body)
    ref = git_ref(payload.get("ref"))
    if (kind is DeliveryKind.TAG_PUSH) != ref.startswith("refs/tags/") or not ref.startswith(
        ("refs/heads/", "refs/tags/")
    ):
        return IncomingDelivery(DeliveryKind.OTHER, delivery, ref=ref)
    after = commit_sha(payload.get("after"), "after")
    return IncomingDelivery(
        kind,
        delivery,
        ref=ref,
        before=commit_sha(payload.get("before"), "before", required=False),
        after=after,
        head_commit_message=_head_message(payload.get("commits"), after),
        pusher=bounded_text(payload.get("user_username") or payload.get("user_name"), MAX_NAME),
    )


def _head_message(commits: Any, after: str | None) -> str | None:
    if not isinstance(commits, list):
        return None
    found = [c for c in commits if isinstance(c, dict)]
    head = next((c for c in found if c.get("id") == after), found[-1] if found else None)
    return bounded_text(head.get("message"), MAX_COMMIT_MESSAGE) if head else None
