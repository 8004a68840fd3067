"""GitHub: checking and reading a delivery sent to ``POST /webhooks/github/{link id}``.

Source: ``/work/shared/provider-facts.md`` ("Webhooks and statuses", "Learned since"):
``X-Hub-Signature-256: sha256=HEX(HMAC-SHA256(secret, raw body))``, compared in constant time (test
vector there); ``X-GitHub-Event`` (``ping`` on creation, ``push`` for branch and tag pushes: a tag's ref is
``refs/tags/NAME``); ``X-GitHub-Delivery``, a GUID that stays the same on redelivery. The push payload
(docs.github.com, "Webhook events and payloads", push): ``ref``, ``before``, ``after``,
``head_commit.message`` (null when a branch is deleted), ``pusher.name``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from app.domain.errors import BadUserInputError
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

SIGNATURE_PREFIX = "sha256="


def signature(secret: str, body: bytes) -> str:
    """What GitHub puts in ``X-Hub-Signature-256`` for ``body`` signed with ``secret``."""
    return SIGNATURE_PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_delivery(headers: Mapping[str, str], body: bytes, secret: str) -> bool:
    sent = headers.get("x-hub-signature-256", "")
    # compare_digest on equal-length ASCII is constant time; a malformed header simply fails.
    return hmac.compare_digest(
        sent.strip().lower().encode("ascii", "replace"), signature(secret, body).encode()
    )


def parse_delivery(headers: Mapping[str, str], body: bytes) -> IncomingDelivery:
    delivery = delivery_id(headers.get("x-github-delivery"), "X-GitHub-Delivery")
    event = headers.get("x-github-event", "").strip()
    if event == "ping":
        return IncomingDelivery(DeliveryKind.PING, delivery)
    if event != "push":
        return IncomingDelivery(DeliveryKind.OTHER, delivery)
    payload = _payload(headers, body)
    ref = git_ref(payload.get("ref"))
    if ref.startswith("refs/tags/"):
        kind = DeliveryKind.TAG_PUSH
    elif ref.startswith("refs/heads/"):
        kind = DeliveryKind.PUSH
    else:
        return IncomingDelivery(DeliveryKind.OTHER, delivery, ref=ref)
    head = payload.get("head_commit")
    pusher = payload.get("pusher")
    return IncomingDelivery(
        kind,
        delivery,
        ref=ref,
        before=commit_sha(payload.get("before"), "before", required=False),
        after=commit_sha(payload.get("after"), "after"),
        head_commit_message=bounded_text(head.get("message"), MAX_COMMIT_MESSAGE)
        if isinstance(head, dict)
        else None,
        pusher=bounded_text(pusher.get("name"), MAX_NAME) if isinstance(pusher, dict) else None,
    )


def _payload(headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    if headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        # A hook set to the "form" content type sends the JSON as the field ``payload``.
        try:
            fields = parse_qs(body.decode("utf-8"), max_num_fields=10)
        except (UnicodeDecodeError, ValueError):
            raise BadUserInputError("The delivery's body is not a form.") from None
        body = (fields.get("payload") or [""])[0].encode()
    return delivery_json(body)
