"""The fake GitHub's OAuth: authorize, App installation, code and refresh exchange, revocation.

The "user" never sees a page: authorize and install answer at once with the 302 GitHub would send after
``fake.approving_user`` clicked the button (or ``error=access_denied`` with ``fake.deny_authorization``);
with ``fake.consent_page`` (``make demo``) a person clicks it on a page (``tests.fakes._consent``).
"""

from __future__ import annotations

import secrets
from html import escape
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.responses import Response

from tests.fakes._consent import APPROVE, DECISION, LOGIN, consent_page, remember, session_cookie
from tests.fakes._github_common import basic_auth, github_error
from tests.fakes._github_models import AuthorizationCode
from tests.fakes._http import Call, Router, json_response, s256

if TYPE_CHECKING:
    from tests.fakes.github import FakeGitHub

CODE_LIFETIME = 600
_TROUBLESHOOTING = (
    "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors"
)
_ERRORS = {
    "incorrect_client_credentials": "The client_id and/or client_secret passed are incorrect.",
    "redirect_uri_mismatch": "The redirect_uri MUST match the registered callback URL for this application.",
    "bad_verification_code": "The code passed is incorrect or expired.",
    "bad_refresh_token": "The refresh token passed is incorrect or expired.",
    "unsupported_grant_type": "The grant type is not supported.",
}


def redirect(url: str, params: dict[str, str | None]) -> Response:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return Response(status_code=302, headers={"Location": f"{url}{'&' if '?' in url else '?'}{query}"})


def page(status: int, text: str) -> Response:
    return Response(f"<html><body><p>{text}</p></body></html>", status, media_type="text/html")


class GitHubOAuth:
    def __init__(self, fake: FakeGitHub) -> None:
        self.fake = fake

    def register(self, router: Router) -> None:
        router.add("GET", "/login/oauth/authorize", self.authorize)
        router.add("POST", "/login/oauth/authorize", self.authorize)  # the consent page's form
        router.add("POST", "/login/oauth/access_token", self.access_token)
        router.add("GET", "/login/oauth/access_token", self.access_token)
        api = self.fake.api_prefix
        # The installation page answers only where the host it imitates has it: GHES (API under /api/v3)
        # at /github-apps/{slug}/installations/new ("Sharing your GitHub App", GHES docs; provider-facts
        # "GitHub App installation"), github.com at /apps/... - where the GHES spelling is a 404 (as on
        # SUB.ghe.com, coollabsio/coolify#10573). Whether GHES also answers /apps/ is unverified; answering
        # only the documented path keeps the service to it.
        install = f"/{'github-apps' if api == '/api/v3' else 'apps'}/{{slug}}/installations/new"
        router.add("GET", install, self.install)
        router.add("POST", install, self.install)  # the consent page's form
        router.add("DELETE", f"{api}/applications/{{client_id}}/grant", self.revoke_grant)
        router.add("DELETE", f"{api}/applications/{{client_id}}/token", self.revoke_token)

    # --- browser side ----------------------------------------------------------------------------

    def authorize(self, call: Call) -> Response:
        fake, q = self.fake, call.form()  # GET: the query; POST (the consent page): the form too
        if q.get("client_id") != fake.client_id:
            return page(404, "Not Found")
        redirect_uri = q.get("redirect_uri") or (fake.callback_urls[0] if fake.callback_urls else None)
        if redirect_uri is None:
            return page(400, "No redirect_uri and no callback URL registered for this application.")
        state = q.get("state")
        if fake.callback_urls and not any(redirect_uri.startswith(url) for url in fake.callback_urls):
            return redirect(
                fake.callback_urls[0],
                {
                    "error": "redirect_uri_mismatch",
                    "error_description": _ERRORS["redirect_uri_mismatch"],
                    "error_uri": f"{_TROUBLESHOOTING}/#redirect-uri-mismatch",
                    "state": state,
                },
            )
        challenge, method = q.get("code_challenge"), q.get("code_challenge_method")
        if challenge and method != "S256":
            return redirect(
                redirect_uri,
                {
                    "error": "invalid_request",
                    "error_description": "code_challenge_method must be S256",
                    "state": state,
                },
            )
        if fake.deny_authorization or fake.approving_user is None:
            return redirect(
                redirect_uri,
                {
                    "error": "access_denied",
                    "error_description": "The user has denied your application access.",
                    "error_uri": f"{_TROUBLESHOOTING}/#access-denied",
                    "state": state,
                },
            )
        user = fake.approving_user
        if fake.consent_page:
            signed_in = call.request.cookies.get(session_cookie("github"))
            if call.method == "GET" and not (signed_in and signed_in.lower() in fake.authorized_users):
                return self._consent(call, q, signed_in)
            if call.method == "POST":
                if q.get(DECISION) != APPROVE:
                    return redirect(
                        redirect_uri,
                        {
                            "error": "access_denied",
                            "error_description": "The user has denied your application access.",
                            "error_uri": f"{_TROUBLESHOOTING}/#access-denied",
                            "state": state,
                        },
                    )
                signed_in = q.get(LOGIN, "")
                if signed_in.lower() not in fake.accounts:
                    return page(400, "No such user.")
                fake.authorized_users.add(signed_in.lower())
            user = signed_in
        scopes = tuple(s for s in q.get("scope", "").replace(",", " ").split() if s)
        code = self._new_code(redirect_uri if "redirect_uri" in q else None, scopes, challenge, user=user)
        response = redirect(redirect_uri, {"code": code, "state": state})
        return remember(response, "github", user) if fake.consent_page and user else response

    def _users(self) -> list[str]:
        return [a.login for a in self.fake.accounts.values() if a.type == "User"]

    def _consent(self, call: Call, q: dict[str, str], signed_in: str | None) -> Response:
        fake = self.fake
        app = fake.app_slug or "an OAuth App"
        return consent_page(
            title=f"Authorize {app}",
            action=call.request.url.path,
            params=q,
            users=self._users(),
            signed_in=signed_in or fake.approving_user,
            explanation=(
                f"<code>{escape(app)}</code> (client <code>{escape(fake.client_id)}</code>) asks to act on "
                "your behalf"
                + (f" with the scopes <code>{escape(q['scope'])}</code>." if q.get("scope") else ".")
            ),
        )

    def install(self, call: Call) -> Response:
        """The installation page, answered as if the user clicked "Install" (or "Request").

        Sources: docs.github.com "About the setup URL" (GitHub redirects to the Setup URL with
        ``installation_id`` and ``setup_action``, and passes on the ``state`` given to
        ``installations/new``; the id can be forged) and ../shared/provider-facts.md "Learned since"
        (with "Request user authorization (OAuth) during installation" GitHub runs the authorization
        itself and redirects to the *callback* URL with ``code``, ``installation_id``,
        ``setup_action=install`` and the state, a code issued without the app's PKCE challenge; a
        member who may only *request* the installation comes back with ``setup_action=request``, no
        code and no installation id, the state possibly missing).
        """
        fake = self.fake
        if fake.app_slug is None or call.params["slug"] != fake.app_slug:
            return page(404, "Not Found")
        setup_url = fake.setup_url or (fake.callback_urls[0] if fake.callback_urls else None)
        callback_url = fake.callback_urls[0] if fake.callback_urls else setup_url
        if setup_url is None or callback_url is None or fake.approving_user is None:
            return page(400, "This fake has no setup_url / callback_urls or no approving_user configured.")
        form = call.form()
        state = form.get("state")
        user, selection, chosen = fake.approving_user, fake.install_selection, list(fake.install_repositories)
        if fake.consent_page:
            if call.method == "GET":
                return self._install_page(call, form)
            if form.get(DECISION) != APPROVE:
                # [unverified] what GitHub does on "Cancel" of an installation; the fake goes back to the
                # setup URL without an installation id, like a request that was not made.
                return redirect(setup_url, {"error": "access_denied", "state": state})
            user = form.get(LOGIN, "")
            if user.lower() not in fake.accounts:
                return page(400, "No such user.")
            selection = "selected" if form.get("repository_selection") == "selected" else "all"
            chosen = [name.strip() for name in form.get("repositories", "").split(",") if name.strip()]
        if fake.install_needs_approval:
            fake.installation_requests.append(fake.install_account or user)
            kept = state if fake.install_request_keeps_state else None
            return redirect(setup_url, {"setup_action": "request", "state": kept})
        account = fake.account(fake.install_account or user)
        existing = next(
            (i for i in fake.installations.values() if i.account is account and i.app_slug == fake.app_slug),
            None,
        )
        if existing is None:
            installation = fake.add_installation(user, selection, chosen, account=account.login)
            action = "install"
        else:
            existing.repository_selection = selection
            existing.repositories = chosen
            installation, action = existing, "update"
        params: dict[str, str | None] = {"installation_id": str(installation.id), "setup_action": action}
        if fake.request_oauth_on_install:
            # The installation page takes no PKCE challenge, so the code GitHub issues here has none.
            params["code"] = self._new_code(callback_url, (), None, user=user)
            params["state"] = state
            return redirect(callback_url, params)
        params["state"] = state
        if fake.consent_page and user:
            # Installing is consenting: GitHub's authorization that follows is instant for this user.
            fake.authorized_users.add(user.lower())
            return remember(redirect(setup_url, params), "github", user)
        return redirect(setup_url, params)

    def _install_page(self, call: Call, form: dict[str, str]) -> Response:
        fake = self.fake
        signed_in = call.request.cookies.get(session_cookie("github")) or fake.approving_user
        owned = [r.full_name for r in fake.repositories.values() if r.owner.login == signed_in][:3]
        suggested = ", ".join(fake.install_repositories or owned)
        choices = f"""<fieldset><legend>Repository access</legend>
<p><label><input type="radio" name="repository_selection" value="all" id="all" checked> All repositories</label></p>
<p><label><input type="radio" name="repository_selection" value="selected" id="selected"> Only select
repositories:</label> <input name="repositories" id="repositories" size="60" value="{escape(suggested)}"></p>
</fieldset>"""
        return consent_page(
            title=f"Install {fake.app_slug}",
            action=call.request.url.path,
            params=form,
            users=self._users(),
            signed_in=signed_in,
            explanation=f"Install the GitHub App <code>{escape(fake.app_slug or '')}</code> on your account.",
            extra_fields=choices,
            approve_label="Install & Authorize",
        )

    def _new_code(
        self, redirect_uri: str | None, scopes: tuple[str, ...], challenge: str | None, *, user: str | None
    ) -> str:
        fake = self.fake
        assert user is not None
        code = secrets.token_hex(10)
        fake.codes[code] = AuthorizationCode(
            code=code,
            client_id=fake.client_id,
            user=fake.account(user).login,
            redirect_uri=redirect_uri,
            scopes=scopes,
            code_challenge=challenge,
            code_challenge_method="S256" if challenge else None,
            expires_at=fake.now() + CODE_LIFETIME,
        )
        return code

    # --- server side -----------------------------------------------------------------------------

    def access_token(self, call: Call) -> Response:
        fake, p = self.fake, call.form()
        client_id, client_secret = p.get("client_id"), p.get("client_secret")
        basic = basic_auth(call)
        if basic and not client_id:
            client_id, client_secret = basic
        if client_id != fake.client_id or client_secret != fake.client_secret:
            return self._answer(call, self._error("incorrect_client_credentials"))
        grant_type = p.get("grant_type", "authorization_code")
        if grant_type == "refresh_token":
            return self._answer(call, self._refresh(p.get("refresh_token", "")))
        if grant_type != "authorization_code":
            return self._answer(call, self._error("unsupported_grant_type"))
        code = fake.codes.get(p.get("code", ""))
        if code is None or code.used or fake.now() >= code.expires_at or code.client_id != client_id:
            return self._answer(call, self._error("bad_verification_code"))
        if p.get("redirect_uri") and code.redirect_uri and p["redirect_uri"] != code.redirect_uri:
            return self._answer(call, self._error("redirect_uri_mismatch"))
        # A code issued without a challenge is exchanged whatever code_verifier comes with it: GitHub
        # does not require PKCE (github.blog changelog 2025-07-14, "GitHub is not requiring PKCE for
        # any authentication flow") and no page says it refuses a verifier for such a code [unverified],
        # although RFC 9700 section 2.1.1 asks servers to. The fake takes the case worse for the service.
        if code.code_challenge is not None:
            verifier = p.get("code_verifier")
            # [unverified] which error GitHub names for a wrong verifier; the fake answers like a bad code.
            if not verifier or s256(verifier) != code.code_challenge:
                return self._answer(call, self._error("bad_verification_code"))
        code.used = True
        return self._answer(
            call, fake.issue_user_token(code.user, code.scopes, lifetime=fake.code_token_lifetime)
        )

    def _refresh(self, value: str) -> dict[str, Any]:
        # A refresh token works once and lives refresh_token_expires_in seconds (about six months);
        # after that GitHub answers bad_refresh_token and the user must sign in again
        # (https://docs.github.com/apps/creating-github-apps/authenticating-with-a-github-app/refreshing-user-access-tokens).
        fake = self.fake
        record = fake.refresh_tokens.get(value)
        if (
            record is None
            or record.used
            or fake.now() >= record.expires_at
            or record.client_id != fake.client_id
        ):
            return self._error("bad_refresh_token")
        record.used = True
        fake.revoke_token(record.access_token)
        fake.refresh_count += 1
        return fake.issue_user_token(record.user, ())

    def _error(self, name: str) -> dict[str, Any]:
        anchor = name.replace("_", "-")
        return {
            "error": name,
            "error_description": _ERRORS[name],
            "error_uri": f"{_TROUBLESHOOTING}/#{anchor}",
        }

    def _answer(self, call: Call, body: dict[str, Any]) -> Response:
        """GitHub answers errors with HTTP 200 too; JSON only when asked for, else a form-encoded line."""
        if "json" in call.headers.get("accept", ""):
            return json_response(body)
        text = urlencode({k: str(v) for k, v in body.items()})
        return Response(text, 200, media_type="application/x-www-form-urlencoded")

    # --- revocation (API host, Basic client_id:client_secret) ----------------------------------
    # DELETE .../grant removes the user's whole authorization of the app: "Deleting an application's
    # grant will also delete all OAuth tokens associated with the application for the user"; DELETE
    # .../token revokes only the token in the body
    # (https://docs.github.com/rest/apps/oauth-applications#delete-an-app-authorization and
    # #delete-an-app-token). One GitHub account may be connected by several platform users, each with
    # a token of its own: the grant takes all of them.

    def revoke_grant(self, call: Call) -> Response:
        return self._revoke(call, "grant")

    def revoke_token(self, call: Call) -> Response:
        return self._revoke(call, "token")

    def _revoke(self, call: Call, how: str) -> Response:
        fake = self.fake
        basic = basic_auth(call)
        if basic != (fake.client_id, fake.client_secret) or call.params["client_id"] != fake.client_id:
            return github_error(404, "Not Found")
        try:
            body = call.json()
        except ValueError:
            return github_error(400, "Problems parsing JSON")
        value = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(value, str):
            return github_error(422, 'Invalid request.\n\n"access_token" wasn\'t supplied.')
        token = fake.tokens.get(value)
        if token is None or token.client_id != fake.client_id or token.revoked:
            return github_error(404, "Not Found")
        victims = [token]
        if how == "grant":
            victims = [
                t for t in fake.tokens.values() if t.user == token.user and t.client_id == fake.client_id
            ]
        for victim in victims:
            victim.revoked = True
            if victim.refresh_token and victim.refresh_token in fake.refresh_tokens:
                fake.refresh_tokens[victim.refresh_token].used = True
        fake.revocations.append((how, value))
        return Response(status_code=204)
