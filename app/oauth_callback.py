"""``GET /oauth/callback``: where GitHub and GitLab send the browser back after a login.

The browser carries no caller JWT here: the ``state`` alone says whose sign-in this is (it was
bound to its owner when ``connectGitOAuth`` created it). The sign-in is finished like
``completeGitOAuth`` and the browser is sent to the ``returnTo`` stored with the state, with
``?integration=<global id>`` or ``?error=<code>`` and nothing else: never the code, the state or a
token. Without a stored ``returnTo`` (or with a state that says nothing trustworthy about where to
go) a small page says what happened instead. Every answer forbids caching and referrers, since the
URL that reached this endpoint holds the code and the state.
"""

from __future__ import annotations

import html
import logging
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from app.domain.errors import PublicError
from app.domain.models import AuthMethod
from app.graphql.types.node import to_global_id
from app.metrics import Metrics
from app.observability import current_request_id, note
from app.services.oauth_connect import ConnectByLogin

log = logging.getLogger(__name__)

# Parameters the redirect to returnTo sets; any copy already in returnTo is dropped.
_RESULT_PARAMETERS = frozenset({"integration", "error"})
_NO_TRACE = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Referrer-Policy": "no-referrer",
}


async def oauth_callback(request: Request, login: ConnectByLogin, metrics: Metrics) -> Response:
    """Finish the login the host redirected back from, then send the browser on."""
    query = request.query_params
    state = query.get("state")
    if not state:
        return _page(
            400,
            "Sign-in not completed",
            "This sign-in link is incomplete (it has no state): start again from the app.",
        )
    try:
        pending = await login.claim(state)
    except PublicError as exc:  # an invalid state, or the database is unavailable
        note(outcome=exc.code)
        return _page(400 if exc.code == "INVALID_OAUTH_STATE" else 503, "Sign-in not completed", exc.message)
    note(user_id=pending.owner)  # the browser carries no JWT: the state says whose sign-in this is
    host_error = query.get("error")
    if host_error:
        # The user cancelled, or the host refused to start the sign-in: the flow ends here.
        denied = host_error == "access_denied"
        log.info(
            "oauth: the host ended the sign-in", extra={"reason": "access_denied" if denied else "error"}
        )
        code = "ACCESS_DENIED" if denied else "OAUTH_EXCHANGE_FAILED"
        metrics.connect_attempt(
            pending.provider.value, AuthMethod.OAUTH.value, pending.token_kind.value, code
        )
        return _finish(
            pending.return_to,
            ("error", code),
            "The sign-in was cancelled at the Git host." if denied else "The Git host refused the sign-in.",
        )
    try:
        integration = await login.finish(pending, query.get("code"), query.get("installation_id"))
    except PublicError as exc:
        return _finish(pending.return_to, ("error", exc.code), exc.message)
    except Exception:
        # The state is used up: tell the browser instead of leaving it on a bare 500.
        log.exception("oauth: unexpected error while completing a sign-in")
        request_id = current_request_id()
        return _finish(
            pending.return_to,
            ("error", "INTERNAL"),
            f"Internal error (request id {request_id})." if request_id else "Internal error.",
        )
    return _finish(
        pending.return_to,
        ("integration", to_global_id("Integration", integration.id)),
        f"Connected {integration.account.login} on {integration.host}. You can close this window.",
    )


def _finish(return_to: str | None, result: tuple[str, str], message: str) -> Response:
    note(outcome="ok" if result[0] == "integration" else result[1])
    if return_to is None:
        ok = result[0] == "integration"
        return _page(200 if ok else 400, "Connected" if ok else "Sign-in not completed", message)
    return RedirectResponse(with_result(return_to, result), status_code=302, headers=_NO_TRACE)


def with_result(return_to: str, result: tuple[str, str]) -> str:
    """``return_to`` (checked when the sign-in started) with ``integration=`` or ``error=`` set."""
    parts = urlsplit(return_to)
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in _RESULT_PARAMETERS]
    return urlunsplit(parts._replace(query=urlencode([*kept, result])))


def _page(status: int, title: str, message: str) -> Response:
    body = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head>"
        f"<body><h1>{html.escape(title)}</h1><p>{html.escape(message)}</p></body></html>"
    )
    headers = {**_NO_TRACE, "Content-Security-Policy": "default-src 'none'"}
    return HTMLResponse(body, status_code=status, headers=headers)
