"""Small pieces both halves of the fake GitHub API use: error bodies, credentials, Link pagination."""

from __future__ import annotations

import base64
import json
from typing import Any

from starlette.responses import Response

from tests.fakes._http import Call, json_response, link_header, page_params

DOCS = "https://docs.github.com/rest"


def github_error(
    status: int, message: str, docs: str = DOCS, headers: dict[str, str] | None = None, **extra: Any
) -> Response:
    """GitHub's error body: ``{"message", ["errors"], "documentation_url", "status"}``."""
    body = {"message": message, **extra, "documentation_url": docs, "status": str(status)}
    return json_response(body, status, headers)


def credentials(call: Call) -> str | None:
    """The token from ``Authorization: Bearer|token X`` or Basic (``user:token`` / ``token:x-oauth-basic``)."""
    header = call.headers.get("authorization", "").strip()
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() in ("bearer", "token") and value:
        return value
    if scheme.lower() == "basic" and value:
        try:
            user, _, password = base64.b64decode(value).decode().partition(":")
        except ValueError:
            return ""
        return user if password in ("", "x-oauth-basic") else password
    return None


def basic_auth(call: Call) -> tuple[str, str] | None:
    header = call.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(value.strip()).decode().partition(":")
    except ValueError:
        return None
    return user, password


def paginate(call: Call, items: list[Any], *, default_per_page: int = 30) -> tuple[list[Any], dict[str, str]]:
    """GitHub's page/per_page with a ``Link`` header (absent when everything fits on one page).

    Order of relations as recorded from api.github.com: prev, next, last, first; the last page has no
    ``last``, the first no ``first``/``prev``.
    """
    page = page_params(call, len(items), default_per_page=default_per_page)
    rels: list[tuple[str, int]] = []
    if page.number > 1:
        rels.append(("prev", min(page.number - 1, page.last)))
    if page.number < page.last:
        rels += [("next", page.number + 1), ("last", page.last)]
    if page.number > 1:
        rels.append(("first", 1))
    return page.slice(items), ({"Link": link_header(call, rels)} if rels else {})


# --- body validation (GitHub's JSON-schema style messages) ---------------------------------------


def invalid(message: str, docs: str) -> Response:
    return github_error(422, f"Invalid request.\n\n{message}", docs)


def validation_failed(docs: str, *errors: dict[str, str]) -> Response:
    return github_error(422, "Validation Failed", docs, errors=list(errors))


def check_fields(body: Any, spec: dict[str, str], required: tuple[str, ...], docs: str) -> Response | None:
    """Grape-like checks GitHub applies to JSON bodies: an object, required keys, JSON types."""
    if not isinstance(body, dict):
        return invalid(f"Invalid input: {_json(body)} is not of type object.", docs)
    missing = [name for name in required if name not in body]
    if missing:
        names = ", ".join(f'"{name}"' for name in missing)
        return invalid(f"{names} {'wasn' if len(missing) == 1 else 'weren'}'t supplied.", docs)
    for name, kind in spec.items():
        if name not in body:
            continue
        value = body[name]
        nullable = kind.endswith("?")
        kind = kind.rstrip("?")
        if value is None and nullable:
            continue
        if not _is(kind, value):
            article = "an" if kind[0] in "aeiou" else "a"
            return invalid(f"For 'properties/{name}', {_json(value)} is not {article} {kind}.", docs)
    return None


def _is(kind: str, value: Any) -> bool:
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "string":
        return isinstance(value, str)
    if kind == "object":
        return isinstance(value, dict)
    if kind == "array":
        return isinstance(value, list)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    return True


def _json(value: Any) -> str:
    return json.dumps(value)
