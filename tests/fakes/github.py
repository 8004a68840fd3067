"""A fake GitHub (github.com or GitHub Enterprise Server) for end-to-end tests and benchmarks.

One Starlette app serves the REST API (under ``api_prefix``: ``""`` like api.github.com, ``"/api/v3"`` like
GHES) and the web endpoints of OAuth (``/login/oauth/...``, ``/apps/{slug}/installations/new``). Point both
``GITHUB_URL`` and ``GITHUB_API_URL`` (plus the prefix) at it. Behaviour follows the project's facts sheet;
where that sheet marks something unverified the choice is noted next to the code.

    fake = FakeGitHub()
    fake.add_user("octocat")
    fake.add_repositories("octocat", 120, private_ratio=0.5, archived_every=10)
    fake.add_classic_token("ghp_x", "octocat", ["repo", "admin:repo_hook"])
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app), base_url="http://github.test")
"""

from __future__ import annotations

import itertools
import secrets
import string
from datetime import datetime
from typing import Any, ClassVar, Literal, NamedTuple

from starlette.responses import Response

from tests.fakes._github_api import GitHubAPI
from tests.fakes._github_models import (
    AuthorizationCode,
    GitHubAccount,
    GitHubBranch,
    GitHubInstallation,
    GitHubRepository,
    GitHubToken,
    Plan,
    RefreshToken,
    Role,
    TokenKind,
    fake_sha,
    normalise_permissions,
    normalise_scopes,
)
from tests.fakes._github_oauth import GitHubOAuth
from tests.fakes._host import FakeHost
from tests.fakes._http import Call, json_response, to_epoch

# Repositories are stamped backwards from here, one ``_PUSH_STEP`` apart, so pushed_at is distinct and
# the order of creation is the order of ``sort=pushed``.
BASE_TIME = 1_748_779_200.0  # 2025-06-01T12:00:00Z
_PUSH_STEP = 97.0
APP_TOKEN_LIFETIME = 28_800
REFRESH_TOKEN_LIFETIME = 15_897_600
DEFAULT_APP_PERMISSIONS = {
    "administration": "write",
    "contents": "write",
    "statuses": "write",
    "repository_hooks": "write",
    "metadata": "read",
}
_ALPHABET = string.ascii_letters + string.digits


class SideEffect(NamedTuple):
    """A write the fake performed because the request was authorised and valid."""

    method: str
    path: str
    body: Any


def random_token(prefix: str, length: int = 36) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


class FakeGitHub(FakeHost):
    """In-memory GitHub. All public attributes may be changed by tests between requests."""

    CONFIGURABLE: ClassVar[frozenset[str]] = FakeHost.CONFIGURABLE | {
        "rate_limit_remaining",
        "rate_limit_status",
        "rate_limit_retry_after",
        "rate_limit_enabled",
        "approving_user",
        "deny_authorization",
        "callback_urls",
        "setup_url",
        "install_selection",
        "install_repositories",
        "install_account",
        "request_oauth_on_install",
        "install_needs_approval",
        "install_request_keeps_state",
    }

    def __init__(
        self,
        *,
        api_prefix: str = "",
        client_id: str = "Iv1.fakegithubclient",
        client_secret: str = "fake-github-client-secret",
        app_slug: str | None = None,
        app_id: int = 4242,
        expiring: bool | None = None,
        html_url: str | None = None,
        rate_limit: int = 5000,
    ) -> None:
        super().__init__()
        self.api_prefix = api_prefix.rstrip("/")
        self.html_url = html_url  # None: the address the request came to (like GHES)
        # OAuth App (app_slug None, gho_ tokens) or GitHub App (ghu_ tokens, expiring unless told otherwise).
        self.client_id = client_id
        self.client_secret = client_secret
        self.app_slug = app_slug
        self.app_id = app_id
        self.expiring = app_slug is not None if expiring is None else expiring
        self.app_permissions: dict[str, str] = dict(DEFAULT_APP_PERMISSIONS)
        self.callback_urls: list[str] = []  # registered callbacks; empty accepts any redirect_uri
        self.setup_url: str | None = None  # installation redirect; defaults to callback_urls[0]
        self.approving_user: str | None = None  # who "clicks Authorize"; defaults to the first user added
        self.deny_authorization = False
        self.install_selection: Literal["all", "selected"] = "all"
        self.install_repositories: list[str] = []
        self.install_account: str | None = None  # defaults to the approving user
        # "Request user authorization (OAuth) during installation" (the setting the README advises against).
        self.request_oauth_on_install = False
        # An organization member who may only request the installation (an owner must approve it).
        self.install_needs_approval = False
        self.install_request_keeps_state = True
        self.installation_requests: list[str] = []
        # Lifetime of the access token a code exchange hands out (None: GitHub's 8 hours), e.g. to make
        # the first token due for a refresh at once; refreshed tokens always get the usual lifetime.
        self.code_token_lifetime: int | None = None
        # Rate limit (one budget for the whole fake).
        self.rate_limit = rate_limit
        self.rate_limit_remaining = rate_limit
        self.rate_limit_reset = int(self.now()) + 3600
        self.rate_limit_status = 403
        self.rate_limit_retry_after: int | None = None
        self.rate_limit_enabled = True
        # State.
        self.accounts: dict[str, GitHubAccount] = {}  # lower-case login -> user or organisation
        self.repositories: dict[int, GitHubRepository] = {}
        self.tokens: dict[str, GitHubToken] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.installations: dict[int, GitHubInstallation] = {}
        self.side_effects: list[SideEffect] = []
        self._by_full_name: dict[str, int] = {}
        self._account_ids = itertools.count(1)
        self._repo_ids = itertools.count(100_000)
        self._installation_ids = itertools.count(1_000)
        self.object_ids = itertools.count(1)  # hooks, statuses
        self._push_seq = itertools.count(0)
        GitHubAPI(self).register(self.router)
        GitHubOAuth(self).register(self.router)

    # --- accounts ------------------------------------------------------------------------------

    def add_user(self, login: str, name: str | None = None, *, plan: Plan = "free") -> GitHubAccount:
        with self.lock:
            account = GitHubAccount(
                next(self._account_ids), login, name or login.title(), self.now(), plan=plan
            )
            self.accounts[login.lower()] = account
            if self.approving_user is None:
                self.approving_user = login
            return account

    def add_org(
        self, login: str, members: dict[str, str] | list[str] | None = None, *, plan: Plan = "free"
    ) -> GitHubAccount:
        """An organisation; ``members`` maps login to ``"admin"`` or ``"member"`` (a list means members)."""
        with self.lock:
            roles = dict.fromkeys(members, "member") if isinstance(members, list) else dict(members or {})
            account = GitHubAccount(
                next(self._account_ids),
                login,
                login.title(),
                self.now(),
                type="Organization",
                members=roles,
                plan=plan,
            )
            self.accounts[login.lower()] = account
            return account

    def enforce_sso(self, org: str) -> None:
        """The organisation enforces SAML SSO: unauthorized classic / OAuth App tokens lose sight of it."""
        with self.lock:
            self.account(org).sso_enforced = True

    def authorize_sso(self, token: str, org: str) -> None:
        """What "Configure SSO" → "Authorize" does for ``token`` and ``org`` on github.com."""
        with self.lock:
            self.tokens[token].sso_authorized.add(org.lower())

    def account(self, login: str) -> GitHubAccount:
        try:
            return self.accounts[login.lower()]
        except KeyError:
            raise KeyError(f"no GitHub account {login!r}; add_user() or add_org() first") from None

    # --- repositories ---------------------------------------------------------------------------

    def add_repository(
        self,
        owner_login: str,
        name: str,
        *,
        private: bool = False,
        archived: bool = False,
        fork: bool = False,
        default_branch: str = "main",
        branches: list[str] | None = None,
        protected: list[str] | None = None,
    ) -> GitHubRepository:
        with self.lock:
            owner = self.account(owner_login)
            pushed_at = BASE_TIME - next(self._push_seq) * _PUSH_STEP
            repo = GitHubRepository(
                id=next(self._repo_ids),
                name=name,
                owner=owner,
                private=private,
                default_branch=default_branch,
                pushed_at=pushed_at,
                created_at=pushed_at - 86_400 * 30,
                archived=archived,
                fork=fork,
                description=f"{name} (generated)",
            )
            for branch in [default_branch, *(b for b in branches or [] if b != default_branch)]:
                sha = fake_sha(repo.full_name, branch)
                repo.branches[branch] = GitHubBranch(branch, sha, branch in (protected or []))
                repo.commits.add(sha)
            self.repositories[repo.id] = repo
            self._by_full_name[repo.full_name.lower()] = repo.id
            return repo

    def add_repositories(
        self,
        owner_login: str,
        count: int,
        *,
        private_ratio: float = 0.5,
        archived_every: int = 0,
        fork_every: int = 0,
        name_prefix: str = "repo",
        branches_per_repo: int = 3,
        protect_default_every: int = 2,
    ) -> list[GitHubRepository]:
        """``count`` repositories named ``{prefix}-0001``…, newest push first; private ones spread evenly."""
        created: list[GitHubRepository] = []
        with self.lock:
            start = sum(1 for r in self.repositories.values() if r.owner.login.lower() == owner_login.lower())
            for i in range(start, start + count):
                extra = ["develop", *(f"feature/f{n}" for n in range(1, branches_per_repo - 1))]
                created.append(
                    self.add_repository(
                        owner_login,
                        f"{name_prefix}-{i + 1:04d}",
                        private=int((i + 1) * private_ratio) > int(i * private_ratio),
                        archived=bool(archived_every) and (i + 1) % archived_every == 0,
                        fork=bool(fork_every) and (i + 1) % fork_every == 0,
                        branches=extra[: max(0, branches_per_repo - 1)],
                        protected=["main"]
                        if protect_default_every and i % protect_default_every == 0
                        else [],
                    )
                )
        return created

    def add_branch(
        self, full_name: str, name: str, *, protected: bool = False, sha: str | None = None
    ) -> GitHubBranch:
        with self.lock:
            repo = self.repository(full_name)
            branch = GitHubBranch(name, sha or fake_sha(full_name, name), protected)
            repo.branches[name] = branch
            repo.commits.add(branch.sha)
            return branch

    def add_branches(self, full_name: str, names: list[str], *, protected: list[str] | None = None) -> None:
        """Many branches at once (a repository with thousands of them)."""
        with self.lock:
            repo = self.repository(full_name)
            shielded = set(protected or [])
            for name in names:
                branch = GitHubBranch(name, fake_sha(full_name, name), name in shielded)
                repo.branches[name] = branch
                repo.commits.add(branch.sha)

    def add_collaborator(self, full_name: str, login: str, role: Role = "write") -> None:
        with self.lock:
            self.repository(full_name).collaborators[login] = role

    def repository(self, full_name: str) -> GitHubRepository:
        found = self.find_repository(full_name)
        if found is None:
            raise KeyError(f"no repository {full_name!r}")
        return found

    def find_repository(self, full_name: str) -> GitHubRepository | None:
        repo_id = self._by_full_name.get(full_name.lower())
        return self.repositories.get(repo_id) if repo_id is not None else None

    def rename_repository(self, repo: GitHubRepository, name: str) -> None:
        self._by_full_name.pop(repo.full_name.lower(), None)
        repo.name = name
        self._by_full_name[repo.full_name.lower()] = repo.id

    # --- tokens ---------------------------------------------------------------------------------

    def add_classic_token(
        self, token: str, user: str, scopes: list[str], expires: datetime | float | str | None = None
    ) -> GitHubToken:
        """A ``ghp_`` token; scopes are normalised as GitHub does (``repo`` swallows ``repo:status``…)."""
        return self._add_token(
            token, "classic", user, scopes=normalise_scopes(scopes), expires_at=to_epoch(expires)
        )

    def add_fine_grained_token(
        self,
        token: str,
        user: str,
        permissions: dict[str, str],
        repositories: list[str] | Literal["all"] = "all",
        *,
        owner: str | None = None,
        expires: datetime | float | str | None = None,
    ) -> GitHubToken:
        """A ``github_pat_`` token for one resource ``owner`` (default: the user); ``webhooks`` means
        ``repository_hooks``; ``repositories`` are full names or ``"all"`` of the owner's."""
        return self._add_token(
            token,
            "fine_grained",
            user,
            permissions=normalise_permissions(permissions),
            repositories=repositories if repositories == "all" else list(repositories),
            resource_owner=owner or user,
            expires_at=to_epoch(expires),
        )

    def add_oauth_token(
        self,
        token: str,
        user: str,
        scopes: list[str] | None = None,
        *,
        app_user: bool = False,
        expires: datetime | float | str | None = None,
    ) -> GitHubToken:
        """A token as if issued by the OAuth endpoints (``gho_`` OAuth App, or ``ghu_`` GitHub App user)."""
        kind: TokenKind = "app_user" if app_user else "oauth_app"
        return self._add_token(
            token,
            kind,
            user,
            scopes=normalise_scopes(scopes or []),
            expires_at=to_epoch(expires),
            client_id=self.client_id,
        )

    def _add_token(self, token: str, kind: TokenKind, user: str, **fields: Any) -> GitHubToken:
        with self.lock:
            self.account(user)
            record = GitHubToken(
                value=token, kind=kind, user=self.account(user).login, created_at=self.now(), **fields
            )
            self.tokens[token] = record
            return record

    def revoke_token(self, token: str) -> None:
        with self.lock:
            if token in self.tokens:
                self.tokens[token].revoked = True

    def valid_token(self, token: str) -> GitHubToken | None:
        record = self.tokens.get(token)
        if record is None or record.revoked:
            return None
        if record.expires_at is not None and self.now() >= record.expires_at:
            return None
        return record

    def issue_user_token(
        self, user: str, scopes: tuple[str, ...], *, lifetime: int | None = None
    ) -> dict[str, Any]:
        """What ``POST /login/oauth/access_token`` hands out for this fake's app."""
        if self.app_slug is None:
            scopes = normalise_scopes(scopes)
            access = random_token("gho_")
            self._add_token(access, "oauth_app", user, scopes=scopes, client_id=self.client_id)
            return {"access_token": access, "token_type": "bearer", "scope": ",".join(scopes)}
        access = random_token("ghu_")
        if not self.expiring:
            self._add_token(access, "app_user", user, client_id=self.client_id)
            return {"access_token": access, "token_type": "bearer", "scope": ""}
        refresh = random_token("ghr_", 76)
        now = self.now()
        self._add_token(
            access,
            "app_user",
            user,
            client_id=self.client_id,
            expires_at=now + (lifetime or APP_TOKEN_LIFETIME),
            refresh_token=refresh,
        )
        self.refresh_tokens[refresh] = RefreshToken(
            refresh, access, user, self.client_id, now + REFRESH_TOKEN_LIFETIME
        )
        return {
            "access_token": access,
            "expires_in": lifetime or APP_TOKEN_LIFETIME,
            "refresh_token": refresh,
            "refresh_token_expires_in": REFRESH_TOKEN_LIFETIME,
            "token_type": "bearer",
            "scope": "",
        }

    # --- installations --------------------------------------------------------------------------

    def add_installation(
        self,
        user: str,
        repository_selection: Literal["all", "selected"] = "all",
        repositories: list[str] | None = None,
        *,
        account: str | None = None,
    ) -> GitHubInstallation:
        """Install this fake's GitHub App on ``account`` (default: ``user``'s own account)."""
        with self.lock:
            target = self.account(account or user)
            installation = GitHubInstallation(
                id=next(self._installation_ids),
                account=target,
                app_slug=self.app_slug or "fake-app",
                app_id=self.app_id,
                repository_selection=repository_selection,
                repositories=list(repositories or []),
                permissions=dict(self.app_permissions),
                created_at=self.now(),
            )
            self.installations[installation.id] = installation
            return installation

    def token_covers(self, token: GitHubToken, repo: GitHubRepository) -> bool:
        """Whether the token reaches this repository (scopes and permissions aside)."""
        if repo.role_of(token.user) is None:
            return False
        if token.kind == "fine_grained":
            if token.repositories == "all":
                return repo.owner.login.lower() == (token.resource_owner or "").lower()
            return repo.full_name.lower() in {name.lower() for name in token.repositories}
        if token.kind == "app_user":
            return any(i.includes(repo) and i.visible_to(token.user) for i in self.installations.values())
        return True

    # --- rate limit -----------------------------------------------------------------------------

    def rate_limited(self) -> bool:
        if not self.rate_limit_enabled:
            return False
        if self.now() >= self.rate_limit_reset:
            self.rate_limit_remaining = self.rate_limit
            self.rate_limit_reset = int(self.now()) + 3600
        return self.rate_limit_remaining <= 0

    # --- misc -----------------------------------------------------------------------------------

    def not_found(self, call: Call) -> Response:
        return json_response(
            {"message": "Not Found", "documentation_url": "https://docs.github.com/rest", "status": "404"},
            404,
        )

    def state_summary(self) -> dict[str, Any]:
        return {
            **super().state_summary(),
            "side_effects": [list(effect) for effect in self.side_effects],
            "rate_limit_remaining": self.rate_limit_remaining,
            "installations": len(self.installations),
        }

    def seed(self, data: dict[str, Any]) -> None:
        """Apply a seed document (see ``tests.fakes.scenarios.seed_github``)."""
        from tests.fakes.scenarios import seed_github

        seed_github(self, data)
