"""The fake GitLab's OAuth (Doorkeeper): authorize, token (code and refresh), revoke, token info.

Authorize answers at once with the 302 GitLab would send after ``fake.approving_user`` clicked
"Authorize" (or ``error=access_denied`` when ``fake.deny_authorization``); with ``fake.consent_page``
(``make demo``) a person clicks it on a page (``tests.fakes._consent``).
"""

from __future__ import annotations

import base64
import secrets
from html import escape
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from starlette.responses import Response

from tests.fakes._consent import APPROVE, DECISION, LOGIN, consent_page, remember, session_cookie
from tests.fakes._gitlab_models import GitLabAuthorizationCode
from tests.fakes._http import Call, Router, json_response, s256

if TYPE_CHECKING:
    from tests.fakes.gitlab import FakeGitLab

CODE_LIFETIME = 600
INVALID_GRANT = (
    "The provided authorization grant is invalid, expired, revoked, does not match the redirection URI used "
    "in the authorization request, or was issued to another client."
)
INVALID_CLIENT = (
    "Client authentication failed due to unknown client, no client authentication included, or unsupported "
    "authentication method."
)


def redirect(url: str, params: dict[str, str | None]) -> Response:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return Response(status_code=302, headers={"Location": f"{url}{'&' if '?' in url else '?'}{query}"})


def oauth_error(status: int, error: str, description: str) -> Response:
    return json_response({"error": error, "error_description": description}, status)


class GitLabOAuth:
    def __init__(self, fake: FakeGitLab) -> None:
        self.fake = fake

    def register(self, router: Router) -> None:
        router.add("GET", "/oauth/authorize", self.authorize)
        router.add("POST", "/oauth/authorize", self.authorize)  # the consent page's form
        router.add("POST", "/oauth/token", self.token)
        router.add("POST", "/oauth/revoke", self.revoke)
        router.add("GET", "/oauth/token/info", self.token_info)

    def authorize(self, call: Call) -> Response:
        fake, q = self.fake, call.form()  # GET: the query; POST (the consent page): the form too
        if q.get("client_id") != fake.client_id:
            return Response("<p>The client identifier provided is invalid.</p>", 401, media_type="text/html")
        redirect_uri = q.get("redirect_uri", "")
        if not redirect_uri or (fake.redirect_uris and redirect_uri not in fake.redirect_uris):
            return Response("<p>The redirect URI included is not valid.</p>", 400, media_type="text/html")
        state = q.get("state")
        if q.get("response_type") != "code":
            return redirect(
                redirect_uri,
                {
                    "error": "unsupported_response_type",
                    "state": state,
                    "error_description": "The authorization server does not support this response type.",
                },
            )
        scopes = q.get("scope", "").split() or ["api"]
        if not set(scopes) <= set(fake.oauth_scopes):
            return redirect(
                redirect_uri,
                {
                    "error": "invalid_scope",
                    "state": state,
                    "error_description": "The requested scope is invalid, unknown, or malformed.",
                },
            )
        challenge, method = q.get("code_challenge"), q.get("code_challenge_method")
        if challenge and (method or "plain") not in ("S256", "plain"):
            return redirect(
                redirect_uri,
                {
                    "error": "invalid_request",
                    "state": state,
                    "error_description": "The code_challenge_method is not supported.",
                },
            )
        if fake.deny_authorization or fake.approving_user is None:
            return redirect(
                redirect_uri,
                {
                    "error": "access_denied",
                    "state": state,
                    "error_description": "The resource owner or authorization server denied the request.",
                },
            )
        user = fake.approving_user
        if fake.consent_page:
            signed_in = call.request.cookies.get(session_cookie("gitlab"))
            if call.method == "GET" and not (signed_in and signed_in.lower() in fake.authorized_users):
                return consent_page(
                    title="Authorize application",
                    action=call.request.url.path,
                    params=q,
                    users=[u.username for u in fake.users.values() if not u.bot],
                    signed_in=signed_in or fake.approving_user,
                    explanation=(
                        f"An application (<code>{escape(fake.client_id)}</code>) is requesting access to "
                        f"your GitLab account with the scopes <code>{escape(' '.join(scopes))}</code>."
                    ),
                )
            if call.method == "POST":
                if q.get(DECISION) != APPROVE:
                    return redirect(
                        redirect_uri,
                        {
                            "error": "access_denied",
                            "state": state,
                            "error_description": "The resource owner or authorization server denied the request.",
                        },
                    )
                signed_in = q.get(LOGIN, "")
                try:
                    fake.user(signed_in)
                except KeyError:
                    return Response("<p>No such user.</p>", 400, media_type="text/html")
                fake.authorized_users.add(signed_in.lower())
            user = signed_in
        code = secrets.token_hex(32)
        fake.codes[code] = GitLabAuthorizationCode(
            code=code,
            user_id=fake.user(user).id,
            redirect_uri=redirect_uri,
            scopes=scopes,
            code_challenge=challenge,
            code_challenge_method=(method or "plain") if challenge else None,
            expires_at=fake.now() + CODE_LIFETIME,
        )
        response = redirect(redirect_uri, {"code": code, "state": state})
        return remember(response, "gitlab", user) if fake.consent_page and user else response

    def _client_ok(self, call: Call, params: dict[str, str], *, pkce: bool) -> bool:
        """Confidential applications need their secret; public ones may rely on PKCE alone."""
        fake = self.fake
        client_id, secret = params.get("client_id"), params.get("client_secret")
        header = call.headers.get("authorization", "")
        if header.lower().startswith("basic ") and not secret:
            try:
                client_id, _, secret = base64.b64decode(header[6:].strip()).decode().partition(":")
            except ValueError:
                return False
        if client_id != fake.client_id:
            return False
        if secret is not None and secret != "":
            return secrets.compare_digest(secret, fake.client_secret)
        return not fake.confidential and pkce

    def token(self, call: Call) -> Response:
        fake, p = self.fake, call.form()
        grant_type = p.get("grant_type")
        if grant_type not in ("authorization_code", "refresh_token"):
            return oauth_error(
                400,
                "unsupported_grant_type",
                "The authorization grant type is not supported by the authorization server.",
            )
        if not self._client_ok(call, p, pkce=bool(p.get("code_verifier"))):
            return oauth_error(401, "invalid_client", INVALID_CLIENT)
        if grant_type == "refresh_token":
            return self._refresh(p.get("refresh_token", ""), p.get("redirect_uri"))
        code = fake.codes.get(p.get("code", ""))
        if (
            code is None
            or code.used
            or fake.now() >= code.expires_at
            or p.get("redirect_uri") != code.redirect_uri
        ):
            return oauth_error(400, "invalid_grant", INVALID_GRANT)
        if code.code_challenge is not None:
            verifier = p.get("code_verifier") or ""
            expected = s256(verifier) if code.code_challenge_method == "S256" else verifier
            if not verifier or expected != code.code_challenge:
                return oauth_error(400, "invalid_grant", INVALID_GRANT)
        code.used = True
        return json_response(
            fake.issue_oauth_tokens(
                code.user_id, code.scopes, lifetime=fake.code_token_lifetime, redirect_uri=code.redirect_uri
            )
        )

    def _refresh(self, value: str, redirect_uri: str | None) -> Response:
        # GitLab documents the refresh with the redirect_uri: "parameters = '...&refresh_token=
        # REFRESH_TOKEN&grant_type=refresh_token&redirect_uri=REDIRECT_URI'" and "The redirect_uri must
        # match the redirect_uri used in the original authorization request" (gitlabhq
        # doc/api/oauth2.md). [unverified] whether GitLab refuses a refresh without it (Doorkeeper's
        # RefreshTokenRequest does not read it); the fake holds clients to the documented request.
        fake = self.fake
        record = fake.refresh_tokens.get(value)
        if record is None or record.used:
            return oauth_error(400, "invalid_grant", INVALID_GRANT)
        if fake.refresh_needs_redirect_uri and record.redirect_uri and redirect_uri != record.redirect_uri:
            return oauth_error(400, "invalid_grant", INVALID_GRANT)
        record.used = True
        fake.revoke_token(record.access_token)
        fake.refresh_count += 1
        return json_response(
            fake.issue_oauth_tokens(record.user_id, record.scopes, redirect_uri=record.redirect_uri)
        )

    def revoke(self, call: Call) -> Response:
        fake, p = self.fake, call.form()
        if not self._client_ok(call, p, pkce=False):
            return oauth_error(403, "unauthorized_client", "You are not authorized to revoke this token")
        value = p.get("token", "")
        refresh = fake.refresh_tokens.get(value)
        access = fake.tokens.get(refresh.access_token if refresh else value)
        if access is not None and access.kind == "oauth":
            access.revoked = True
            if access.refresh_token in fake.refresh_tokens:
                fake.refresh_tokens[access.refresh_token].used = True
            fake.revocations.append(("revoke", value))
        return json_response({})

    def token_info(self, call: Call) -> Response:
        fake = self.fake
        scheme, _, value = call.headers.get("authorization", "").partition(" ")
        raw = value.strip() if scheme.lower() == "bearer" else call.query.get("access_token", "")
        token = fake.valid_token(raw) if raw else None
        if token is None or token.kind != "oauth" or token.expires_at_ts is None:
            return json_response(
                {
                    "error": "invalid_token",
                    "error_description": "The access token is invalid",
                    "state": "unauthorized",
                },
                401,
            )
        left = max(0, int(token.expires_at_ts - fake.now()))
        return json_response(
            {
                "resource_owner_id": token.user_id,
                "scope": list(token.scopes),
                "expires_in": left,
                "expires_in_seconds": left,
                "application": {"uid": token.application_uid},
                "created_at": int(token.created_at),
            }
        )
