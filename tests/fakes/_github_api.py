"""The fake GitHub's REST API: authentication, rate limit and ETag handling, /user and installations."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from tests.fakes._github_app import AppEndpoints
from tests.fakes._github_common import credentials, github_error, paginate
from tests.fakes._github_deploy import DeployEndpoints
from tests.fakes._github_models import GitHubRepository, GitHubToken
from tests.fakes._github_repos import RepositoryEndpoints
from tests.fakes._http import Call, Handler, Router, conditional, iso, json_response

if TYPE_CHECKING:
    from tests.fakes.github import FakeGitHub

ApiHandler = Callable[[Call, GitHubToken], Response]
SUPPORTED_VERSIONS = ("2022-11-28", "2026-03-10")
# What X-Accepted-GitHub-Permissions says for endpoints that need no permission (GET /user as users
# recorded it from api.github.com with fine-grained tokens).
PERMISSIONLESS = "allows_permissionless_access=true"
_AFFILIATIONS = {"owner", "collaborator", "organization_member"}


def bad_credentials() -> Response:
    return github_error(401, "Bad credentials")


class GitHubAPI:
    def __init__(self, fake: FakeGitHub) -> None:
        self.fake = fake

    def register(self, router: Router) -> None:
        api = self.fake.api_prefix
        router.add("GET", f"{api}/user", self.api(self.get_user))
        router.add("GET", f"{api}/user/repos", self.api(self.list_user_repos, accepted_scopes=""))
        router.add("GET", f"{api}/user/installations", self.api(self.list_installations))
        router.add(
            "GET", f"{api}/user/installations/{{id}}/repositories", self.api(self.installation_repositories)
        )
        router.add("GET", f"{api}/rate_limit", self.api(self.rate_limit, counts=False))
        RepositoryEndpoints(self.fake).register(router, api, self.api)
        DeployEndpoints(self.fake).register(router, api, self.api)
        AppEndpoints(self.fake).register(router, api)
        # Repositories by id, where GitHub redirects a renamed repository's old name (and where its own
        # Link headers point): the same endpoints as /repos/{owner}/{repo}.
        for method in ("GET", "POST", "PATCH", "PUT", "DELETE"):
            by_id = self.by_repository_id(router, method)
            router.add(method, f"{api}/repositories/{{id}}", by_id)
            router.add(method, f"{api}/repositories/{{id}}/{{rest+}}", by_id)

    def by_repository_id(self, router: Router, method: str) -> Handler:
        def handle(call: Call) -> Response:
            repo_id = call.params["id"]
            repo = self.fake.repositories.get(int(repo_id)) if repo_id.isdigit() else None
            rest = call.params.get("rest", "")
            segments = [part for part in self.fake.api_prefix.split("/") if part]
            segments += ["repos", repo.owner.login, repo.name] if repo else []
            segments += rest.split("/") if rest else []
            found = router.resolve(method, segments) if repo is not None else None
            if found is None:
                return github_error(404, "Not Found")
            handler, params = found
            return handler(Call(call.request, params, call.body))

        return handle

    # --- the envelope every API answer goes through ----------------------------------------------

    def api(
        self,
        handler: ApiHandler,
        *,
        accepted_scopes: str | None = None,
        accepted_permissions: str = PERMISSIONLESS,
        counts: bool = True,
    ) -> Handler:
        def wrapped(call: Call) -> Response:
            fake = self.fake
            token: GitHubToken | None = None
            version = call.headers.get("x-github-api-version")
            raw = credentials(call)
            if version and version not in SUPPORTED_VERSIONS:
                response = github_error(400, f"API version '{version}' is not supported.")
            elif counts and fake.rate_limited():
                known = fake.valid_token(raw) if raw else None
                return self._rate_limited(fake.account(known.user).id if known else None)
            elif raw is None:
                response = github_error(401, "Requires authentication")
            else:
                token = fake.valid_token(raw)
                if token is None:
                    response = bad_credentials()
                else:
                    known = token
                    response = fake.kept_answer(raw, call, lambda: handler(call, known))
            # A 304 keeps Link; whether it repeats X-GitHub-SSO is not documented: the fake leaves it
            # out, the less convenient answer (a client must remember what the 200 said).
            response = conditional(call, response, weak=False, keep_headers=("Link",))
            if counts and fake.rate_limit_enabled and response.status_code != 304:
                fake.rate_limit_remaining = max(0, fake.rate_limit_remaining - 1)
            self._decorate(response, token, accepted_scopes, accepted_permissions, version)
            return response

        return wrapped

    def _rate_headers(self) -> dict[str, str]:
        fake = self.fake
        if not fake.rate_limit_enabled:
            return {}
        return {
            "x-ratelimit-limit": str(fake.rate_limit),
            "x-ratelimit-remaining": str(fake.rate_limit_remaining),
            "x-ratelimit-reset": str(fake.rate_limit_reset),
            "x-ratelimit-used": str(fake.rate_limit - fake.rate_limit_remaining),
            "x-ratelimit-resource": "core",
        }

    def _decorate(
        self,
        response: Response,
        token: GitHubToken | None,
        accepted_scopes: str | None,
        accepted_permissions: str,
        version: str | None,
    ) -> None:
        response.headers.update(self._rate_headers())
        response.headers["x-github-api-version-selected"] = (
            version if version in SUPPORTED_VERSIONS else "2022-11-28"
        )
        if token is None:
            return
        if accepted_scopes is not None and "X-Accepted-OAuth-Scopes" not in response.headers:
            # Every answer names the scopes the endpoint accepts, successes and refusals alike, and not
            # only to classic tokens: the recorded answer to a GitHub App user token
            # (user.github-app-token-empty-scopes, api.github.com 2024) carries X-Accepted-OAuth-Scopes
            # next to X-Accepted-GitHub-Permissions. For fine-grained PATs no recording says either
            # way: the fake sends it too, the less convenient answer (a client must not read a scope
            # refusal into a 404 of a token that has no scopes).
            response.headers["X-Accepted-OAuth-Scopes"] = accepted_scopes
        if token.kind in ("classic", "oauth_app"):
            response.headers["X-OAuth-Scopes"] = ", ".join(token.scopes)
        elif token.kind == "app_user":
            # The facts sheet expects no scope header for ghu_ tokens; the recorded real answer
            # (user.github-app-token-empty-scopes) carries an empty one, so the fake sends it empty.
            response.headers["X-OAuth-Scopes"] = ""
        if token.kind in ("fine_grained", "app_user"):
            # Sent on EVERY answer to a fine-grained permission actor (fine-grained PATs and GitHub
            # Apps), successes and refusals alike, naming what the endpoint accepts - like
            # X-Accepted-OAuth-Scopes for classic tokens. So its presence on a 403 proves nothing about
            # the token: only the message "Resource not accessible by ..." does.
            # https://github.blog/changelog/2023-08-10-x-accepted-github-permissions-header-for-fine-grained-permission-actors
            # https://docs.github.com/rest/authentication/permissions-required-for-fine-grained-personal-access-tokens
            response.headers["X-Accepted-GitHub-Permissions"] = accepted_permissions
        if token.client_id:
            response.headers["X-OAuth-Client-Id"] = token.client_id
        if token.expires_at is not None:
            response.headers["GitHub-Authentication-Token-Expiration"] = (
                iso(token.expires_at).replace("T", " ").replace("Z", " UTC")
            )

    def _rate_limited(self, user_id: int | None) -> Response:
        fake = self.fake
        who = f"user ID {user_id}" if user_id is not None else "127.0.0.1"
        response = github_error(
            fake.rate_limit_status,
            f"API rate limit exceeded for {who}. If you reach out to GitHub Support for help, "
            "please include the request ID.",
            "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
        )
        response.headers.update(self._rate_headers())
        if fake.rate_limit_retry_after is not None:
            response.headers["retry-after"] = str(fake.rate_limit_retry_after)
        return response

    # --- helpers ---------------------------------------------------------------------------------

    def bases(self, call: Call) -> tuple[str, str]:
        """(html base, api base) for URLs in bodies."""
        root = call.root_url()
        return (self.fake.html_url or root).rstrip("/"), root + self.fake.api_prefix

    # --- endpoints -------------------------------------------------------------------------------

    def get_user(self, call: Call, token: GitHubToken) -> Response:
        user = self.fake.account(token.user)
        html, api = self.bases(call)
        owned = [r for r in self.fake.repositories.values() if r.owner is user]
        private = sum(1 for r in owned if r.private)
        body = {
            **user.render(html, api),
            "name": user.name,
            "company": None,
            "blog": "",
            "location": None,
            "email": None,
            "hireable": None,
            "bio": None,
            "twitter_username": None,
            "public_repos": len(owned) - private,
            "public_gists": 0,
            "followers": 0,
            "following": 0,
            "created_at": iso(user.created_at),
            "updated_at": iso(user.created_at),
            "private_gists": 0,
            "total_private_repos": private,
            "owned_private_repos": private,
            "collaborators": 0,
            "two_factor_authentication": True,
        }
        return json_response(body)

    def list_user_repos(self, call: Call, token: GitHubToken) -> Response:
        query = call.query
        kind = query.get("type")
        if kind and ("affiliation" in query or "visibility" in query):
            return github_error(
                422,
                "If you specify visibility or affiliation, you cannot specify type.",
                "https://docs.github.com/rest/repos/repos#list-repositories-for-the-authenticated-user",
            )
        affiliations = {
            a.strip() for a in query.get("affiliation", ",".join(_AFFILIATIONS)).split(",") if a.strip()
        }
        if kind == "owner":
            affiliations = {"owner"}
        elif kind == "member":
            affiliations = {"collaborator", "organization_member"}
        visibility = query.get(
            "visibility", {"public": "public", "private": "private"}.get(kind or "", "all")
        )
        if not affiliations <= _AFFILIATIONS or visibility not in ("all", "public", "private"):
            return github_error(422, "Validation Failed")
        sort = query.get("sort", "full_name")
        direction = query.get("direction", "asc" if sort == "full_name" else "desc")
        # With ``fast_lists`` the filtered, sorted list is computed once per token and filters (the
        # world must then change only through the fake's methods): tens of thousands of repositories
        # would otherwise be filtered again for every page, which the real host does not do.
        key = (token.value, tuple(sorted(affiliations)), visibility, sort, direction)
        found = self.fake.list_index.get(key) if self.fake.fast_lists else None
        if found is None:
            found = self._sorted_repos(token, affiliations, visibility, sort, direction)
            if self.fake.fast_lists:
                self.fake.list_index[key] = found
        repos, hidden = found
        page, headers = paginate(call, repos)
        if hidden:
            headers["X-GitHub-SSO"] = f"partial-results; organizations={','.join(map(str, hidden))}"
        html, api = self.bases(call)
        return json_response([r.render(html, api, token.user) for r in page], headers=headers)

    def _sorted_repos(
        self, token: GitHubToken, affiliations: set[str], visibility: str, sort: str, direction: str
    ) -> tuple[list[GitHubRepository], list[int]]:
        """What ``/user/repos`` lists for this token and these filters, sorted; the SSO-hidden owners."""
        repos = [
            r for r in self.fake.repositories.values() if self._listed(r, token, affiliations, visibility)
        ]
        # SAML SSO: a list that could hold an SSO organisation's repositories answers 200 without them
        # and names the organisations' ids in X-GitHub-SSO (GitHub docs, "Authenticating to the REST
        # API", "Personal access tokens and SAML SSO": "the API will not return results from the
        # organizations that require SAML SSO. The X-GitHub-SSO header will indicate the ID of the
        # organizations"; the format is provider-facts': "partial-results; organizations=ID1,ID2").
        hidden = sorted({r.owner.id for r in repos if token.blocked_by_sso(r.owner)})
        repos = [r for r in repos if not token.blocked_by_sso(r.owner)]
        keys: dict[str, Callable[[GitHubRepository], Any]] = {
            "full_name": lambda r: r.full_name.lower(),
            "created": lambda r: (r.created_at, r.id),
            "updated": lambda r: (r.pushed_at, r.id),
            "pushed": lambda r: (r.pushed_at, r.id),
        }
        # sort=pushed lists the most recently pushed first (provider-facts: "created | updated | pushed
        # | full_name (default full_name, ascending; the others default to descending)"). GitHub does
        # not document how it orders equal push times: the fake breaks ties by id, descending with
        # the times, the opposite of the service's own order (ties by name), so that code trusting
        # the host's tie order shows in tests.
        repos.sort(key=keys.get(sort, keys["full_name"]), reverse=direction == "desc")
        return repos, hidden

    def _listed(
        self, repo: GitHubRepository, token: GitHubToken, affiliations: set[str], visibility: str
    ) -> bool:
        affiliation = repo.affiliation_of(token.user)
        if affiliation is None or affiliation not in affiliations:
            return False
        if visibility != "all" and repo.visibility != visibility:
            return False
        if token.kind in ("classic", "oauth_app") and repo.private and "repo" not in token.scopes:
            return False
        return token.kind in ("classic", "oauth_app") or self.fake.token_covers(token, repo)

    def list_installations(self, call: Call, token: GitHubToken) -> Response:
        if token.kind != "app_user":
            return github_error(
                403,
                "You must authenticate with an access token authorized to a GitHub App in order to list installations",
                "https://docs.github.com/rest/apps/installations#list-app-installations-accessible-to-the-user-access-token",
            )
        found = [i for i in self.fake.installations.values() if i.visible_to(token.user)]
        page, headers = paginate(call, found)
        html, api = self.bases(call)
        return json_response(
            {"total_count": len(found), "installations": [i.render(html, api) for i in page]}, headers=headers
        )

    def installation_repositories(self, call: Call, token: GitHubToken) -> Response:
        installation = (
            self.fake.installations.get(int(call.params["id"])) if call.params["id"].isdigit() else None
        )
        if token.kind != "app_user" or installation is None or not installation.visible_to(token.user):
            return github_error(404, "Not Found")
        repos = [
            r
            for r in self.fake.repositories.values()
            if installation.includes(r) and r.role_of(token.user) is not None
        ]
        page, headers = paginate(call, repos)
        html, api = self.bases(call)
        body = {
            "total_count": len(repos),
            "repository_selection": installation.repository_selection,
            "repositories": [r.render(html, api, token.user) for r in page],
        }
        return json_response(body, headers=headers)

    def rate_limit(self, call: Call, token: GitHubToken) -> Response:
        fake = self.fake
        core = {
            "limit": fake.rate_limit,
            "remaining": fake.rate_limit_remaining,
            "reset": fake.rate_limit_reset,
            "used": fake.rate_limit - fake.rate_limit_remaining,
            "resource": "core",
        }
        return json_response({"resources": {"core": core}, "rate": core})
