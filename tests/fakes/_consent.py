"""Consent pages for a person at a browser (``make demo``): "Authorize" / "Install" instead of an instant 302.

Tests drive the fakes without a browser, so by default authorize and install answer at once with the
redirect the host sends after its user clicked (``approving_user``). With ``fake.consent_page`` on, a GET
shows a page instead: who is signed in (any of the fake's users can be picked), the app, and the buttons.
The form posts back to the same path with the original parameters; the host's usual redirect follows.

Like the hosts, a fake remembers who is signed in (a cookie per fake) and which users authorized the
app before, and then redirects at once without a page: GitHub "will automatically redirect" a user who
already authorized the app with the same scopes
(https://docs.github.com/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps, "Directing users to
review their access"), and GitLab's Doorkeeper skips the page when the user holds a token for the
application with the same scopes (doorkeeper ``AuthorizationsController#new``: ``matching_token?``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

from starlette.responses import HTMLResponse, Response

DECISION = "decision"
APPROVE = "approve"
LOGIN = "login"


def session_cookie(host: str) -> str:
    """Cookies ignore ports: both fakes on 127.0.0.1 need names of their own."""
    return f"fake_{host}_session"


def consent_page(
    *,
    title: str,
    action: str,
    params: Mapping[str, str],
    users: Sequence[str],
    signed_in: str | None,
    explanation: str,
    extra_fields: str = "",
    approve_label: str = "Authorize",
) -> Response:
    """The page a user of the host sees; ``params`` travel back as hidden fields. ``explanation`` and
    ``extra_fields`` are HTML: the caller escapes what came with the request."""
    hidden = "".join(
        f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">'
        for k, v in params.items()
        if k not in (DECISION, LOGIN)
    )
    options = "".join(
        f'<option value="{escape(u)}"{" selected" if u == signed_in else ""}>{escape(u)}</option>'
        for u in users
    )
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto">
<p style="color: #a00"><strong>Fake host</strong> (test code: make demo). No real account is involved.</p>
<h1>{escape(title)}</h1>
<p>{explanation}</p>
<form method="post" action="{escape(action)}">
{hidden}
<p><label>Signed in as <select name="{LOGIN}" id="login">{options}</select></label></p>
{extra_fields}
<p><button type="submit" name="{DECISION}" value="{APPROVE}" id="approve">{escape(approve_label)}</button>
<button type="submit" name="{DECISION}" value="cancel" id="cancel">Cancel</button></p>
</form></body></html>"""
    return HTMLResponse(body)


def remember(response: Response, host: str, login: str) -> Response:
    response.set_cookie(session_cookie(host), login, httponly=True, samesite="lax", path="/")
    return response
