"""``GET /oauth/callback``: where GitHub and GitLab send the browser back. It never connects anything.

The browser carries no caller JWT here, so this endpoint cannot know which platform user it belongs
to: finishing the sign-in here would let anyone who starts a login and forwards the host's URL to a
victim collect the victim's Git account. It only passes on what the host sent:

- ``code`` + ``state`` (the authorization): a redirect to the ``returnTo`` stored with the state, with
  ``?state=…&code=…`` (and ``&installationId=…`` for a GitHub App installation), where the signed-in
  frontend calls ``completeGitOAuth``; only the user who started the sign-in can finish it. Without
  a ``returnTo`` (GraphiQL, development) a short page shows the ``completeGitOAuth`` call to run.
- ``installation_id`` + ``setup_action=install|update`` (a GitHub App's setup redirect, with or without
  a ``code`` GitHub issued without our PKCE challenge, which is never exchanged): a redirect on to the
  authorization with the challenge and the same state; that second leg comes back as above.
- ``setup_action=request`` (an organization owner must approve the installation; no code, maybe no
  state): ``returnTo?error=INSTALLATION_PENDING_APPROVAL``, or a short page saying so.
- ``error`` (cancelled or refused at the host): ``returnTo?error=ACCESS_DENIED|OAUTH_EXCHANGE_FAILED``.

Every answer forbids caching and referrers (the URL that reached this endpoint, and the one it sends
the browser to, hold the code and the state); pages carry a Content-Security-Policy that allows nothing.
"""

from __future__ import annotations

import html
import json
import logging
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from app.domain.errors import InvalidOAuthStateError, PublicError
from app.observability import note
from app.services.oauth_connect import ConnectByLogin
from app.storage.oauth_states import PendingAuthorization

log = logging.getLogger(__name__)

PENDING_APPROVAL = "INSTALLATION_PENDING_APPROVAL"
# Parameters the redirect to returnTo sets; any copy already in returnTo is dropped.
_RESULT_PARAMETERS = frozenset({"state", "code", "installationId", "error", "integration"})
_NO_TRACE = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Referrer-Policy": "no-referrer",
}
# What a host's code may look like to be passed on (printable ASCII, bounded).
_CODE = re.compile(r"[\x21-\x7e]{1,512}")
_INSTALLATION_ID = re.compile(r"[0-9]{1,20}")
_NOT_COMPLETED = "Sign-in not completed"
_PENDING_MESSAGE = (
    "The installation of the GitHub App is waiting for an organization owner's approval. Once an "
    "owner has approved it, connect again from the app."
)


async def oauth_callback(request: Request, login: ConnectByLogin) -> Response:
    """Pass what the host sent on to the frontend (or to the next leg); see the module docstring."""
    query = request.query_params
    state = query.get("state") or None
    try:
        setup_action = query.get("setup_action")
        if setup_action == "request":
            return await _pending_approval(login, state)
        if setup_action is not None:
            installation_id = query.get("installation_id")
            url = await login.continue_after_installation(state, installation_id, query.get("code"))
            note(outcome="installation")
            return RedirectResponse(url, status_code=302, headers=_NO_TRACE)
        if state is None:
            note(outcome="INVALID_OAUTH_STATE")
            return _page(
                400, _NOT_COMPLETED, "This sign-in link is incomplete (it has no state): start again."
            )
        if query.get("error"):
            return await _ended_at_host(login, state, query.get("error") == "access_denied")
        pending = await login.returned(state)
    except PublicError as exc:  # an invalid state, or the database is unavailable
        note(outcome=exc.code)
        status = 400 if isinstance(exc, InvalidOAuthStateError) else 503
        return _page(status, _NOT_COMPLETED, exc.message)
    note(user_id=pending.owner)  # whose sign-in this is (the browser carries no JWT)
    code = query.get("code") or ""
    if not _CODE.fullmatch(code):
        log.info("oauth: the host sent no usable code back")
        return _finish(
            pending, [("error", "OAUTH_EXCHANGE_FAILED")], "The Git host sent no usable sign-in code."
        )
    installation_id = query.get("installation_id") or pending.installation_id
    result = [("state", state), ("code", code)]
    if installation_id and _INSTALLATION_ID.fullmatch(installation_id):
        result.append(("installationId", installation_id))
    note(outcome="returned")
    if pending.return_to is None:
        return _completion_page(dict(result))
    return RedirectResponse(with_result(pending.return_to, result), status_code=302, headers=_NO_TRACE)


async def _pending_approval(login: ConnectByLogin, state: str | None) -> Response:
    # GitHub may leave the state out here; where it is known the flow ends on returnTo.
    pending = await login.end(state) if state else None
    note(outcome=PENDING_APPROVAL)
    if pending is None:
        return _page(200, "Installation awaiting approval", _PENDING_MESSAGE)
    note(user_id=pending.owner)
    login.ended_at_host(pending, PENDING_APPROVAL)
    return _finish(pending, [("error", PENDING_APPROVAL)], _PENDING_MESSAGE, status=200)


async def _ended_at_host(login: ConnectByLogin, state: str, denied: bool) -> Response:
    # The user cancelled, or the host refused to start the sign-in: the flow ends here.
    pending = await login.end(state)
    if pending is None:
        raise InvalidOAuthStateError()
    note(user_id=pending.owner)
    log.info("oauth: the host ended the sign-in", extra={"reason": "access_denied" if denied else "error"})
    code = "ACCESS_DENIED" if denied else "OAUTH_EXCHANGE_FAILED"
    login.ended_at_host(pending, code)
    message = "The sign-in was cancelled at the Git host." if denied else "The Git host refused the sign-in."
    return _finish(pending, [("error", code)], message)


def _finish(
    pending: PendingAuthorization, result: list[tuple[str, str]], message: str, *, status: int = 400
) -> Response:
    note(outcome=result[0][1])
    if pending.return_to is None:
        return _page(status, _NOT_COMPLETED, message)
    return RedirectResponse(with_result(pending.return_to, result), status_code=302, headers=_NO_TRACE)


def with_result(return_to: str, result: list[tuple[str, str]]) -> str:
    """``return_to`` (checked when the sign-in started) with the result parameters set."""
    parts = urlsplit(return_to)
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in _RESULT_PARAMETERS]
    return urlunsplit(parts._replace(query=urlencode([*kept, *result])))


def _completion_page(values: dict[str, str]) -> Response:
    """No returnTo: show the ``completeGitOAuth`` call that finishes the sign-in (GraphiQL, development)."""
    fields = ", ".join(f"{name}: {json.dumps(value)}" for name, value in values.items())
    mutation = (
        f"mutation {{\n  completeGitOAuth(input: {{{fields}}}) {{\n    __typename\n"
        "    ... on Integration { id host account { login } }\n    ... on Error { code message }\n  }\n}"
    )
    body = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Finish connecting</title></head><body>"
        "<h1>Finish connecting</h1><p>Run this in GraphiQL, signed in as the user who started the "
        "sign-in (it works once, within 10 minutes):</p>"
        f"<pre>{html.escape(mutation)}</pre></body></html>"
    )
    return HTMLResponse(body, status_code=200, headers=_page_headers())


def _page(status: int, title: str, message: str) -> Response:
    body = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head>"
        f"<body><h1>{html.escape(title)}</h1><p>{html.escape(message)}</p></body></html>"
    )
    return HTMLResponse(body, status_code=status, headers=_page_headers())


def _page_headers() -> dict[str, str]:
    return {**_NO_TRACE, "Content-Security-Policy": "default-src 'none'"}
