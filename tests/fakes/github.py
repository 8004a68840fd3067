"""A fake GitHub (github.com or GitHub Enterprise Server) for end-to-end tests and benchmarks.

One Starlette app serves the REST API (under ``api_prefix``: ``""`` like api.github.com, ``"/api/v3"`` like
GHES) and the web endpoints of OAuth (``/login/oauth/...``, ``/apps/{slug}/installations/new``; with the GHES
prefix ``/github-apps/{slug}/...``). Point both ``GITHUB_URL`` and ``GITHUB_API_URL`` (plus the prefix) at it,
or serve it twice for a separate API origin like api.github.com. Behaviour follows the project's facts sheet;
where that sheet marks something unverified the choice is noted next to the code.

    fake = FakeGitHub()
    fake.add_user("octocat")
    fake.add_repositories("octocat", 120, private_ratio=0.5, archived_every=10)
    fake.add_classic_token("ghp_x", "octocat", ["repo", "admin:repo_hook"])
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app), base_url="http://github.test")
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import secrets
import string
from datetime import datetime
from typing import Any, ClassVar, Literal, NamedTuple

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.responses import Response

from tests.fakes._github_api import GitHubAPI
from tests.fakes._github_common import github_error
from tests.fakes._github_deploy import encode, new_guid, outgoing, push_payload
from tests.fakes._github_models import (
    AuthorizationCode,
    GitHubAccount,
    GitHubBranch,
    GitHubHook,
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
from tests.fakes._github_permissions import Need, authorize
from tests.fakes._host import FakeHost
from tests.fakes._http import Call, json_response, to_epoch
from tests.fakes._webhooks import Outbox

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
        "fast_lists",
        "concurrency_limit",
        "secondary_limit_status",
        "secondary_retry_after",
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
        # A person at a browser clicks "Authorize" / "Install" (tests.fakes._consent); who authorized before.
        self.consent_page = False
        self.authorized_users: set[str] = set()  # lower-case logins
        # Per user: seconds a login's refresh token lives (default REFRESH_TOKEN_LIFETIME, about six
        # months), e.g. a login that must be renewed by signing in again in two days.
        self.refresh_token_lifetimes: dict[str, int] = {}
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
        # Secondary rate limit: "No more than 100 concurrent requests are allowed. This limit is shared
        # across the REST API and GraphQL API." Over it GitHub answers "403 or 429" with the secondary-limit
        # message, and "If the retry-after response header is present, you should not retry your request
        # until after that many seconds has elapsed" (docs.github.com/rest/using-the-rest-api/
        # rate-limits-for-the-rest-api, "About secondary rate limits" and "Exceeding the rate limit").
        # The body: tests/fixtures/github/error-403-secondary-rate-limit.github-docs.json.
        self.concurrency_limit = 100
        self.secondary_limit_status = 403
        self.secondary_retry_after = 60
        # A test aid for tens of thousands of repositories (off by default): remember each filtered,
        # sorted /user/repos list until the world changes through the methods below.
        self.list_index: dict[Any, tuple[list[GitHubRepository], list[int]]] = {}
        # State.
        self.accounts: dict[str, GitHubAccount] = {}  # lower-case login -> user or organisation
        self.repositories: dict[int, GitHubRepository] = {}
        self.tokens: dict[str, GitHubToken] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.installations: dict[int, GitHubInstallation] = {}
        self.side_effects: list[SideEffect] = []
        self._by_full_name: dict[str, int] = {}
        self._moved: dict[str, int] = {}  # old full names of renamed repositories -> their ids
        self._account_ids = itertools.count(1)
        self._repo_ids = itertools.count(100_000)
        self._installation_ids = itertools.count(1_000)
        self.object_ids = itertools.count(1)  # hooks, statuses, deploy keys
        self.delivery_ids = itertools.count(9_000_000)
        self._push_seq = itertools.count(0)
        # Webhook deliveries waiting to be sent by the test (tests.fakes._webhooks), and the Git servers.
        self.outbox = Outbox()
        self.installation_tokens: dict[str, dict[str, Any]] = {}  # ghs_ tokens minted for the app
        self.app_public_pem: str | None = None  # the app's public key: app JWTs are checked with it
        self.app_jwt_count = 0
        self.git_fetches: list[tuple[str, str]] = []  # ("https" | "ssh", full name) of accepted clones
        self.ssh_host_key = Ed25519PrivateKey.generate()
        GitHubAPI(self).register(self.router)
        GitHubOAuth(self).register(self.router)

    # --- accounts ------------------------------------------------------------------------------

    def add_user(self, login: str, name: str | None = None, *, plan: Plan = "free") -> GitHubAccount:
        with self.lock:
            self.forget_lists()
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
            self.forget_lists()
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
            self.forget_lists()
            self.account(org).sso_enforced = True

    def authorize_sso(self, token: str, org: str) -> None:
        """What "Configure SSO" → "Authorize" does for ``token`` and ``org`` on github.com."""
        with self.lock:
            self.forget_lists()
            self.tokens[token].sso_authorized.add(org.lower())

    def forget_lists(self) -> None:
        """The world changed: lists and answers kept for ``fast_lists`` are computed again."""
        super().forget_lists()
        self.list_index.clear()

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
            self.forget_lists()
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
            self.forget_lists()
            repo = self.repository(full_name)
            branch = GitHubBranch(name, sha or fake_sha(full_name, name), protected)
            repo.branches[name] = branch
            repo.commits.add(branch.sha)
            return branch

    def add_branches(self, full_name: str, names: list[str], *, protected: list[str] | None = None) -> None:
        """Many branches at once (a repository with thousands of them)."""
        with self.lock:
            self.forget_lists()
            repo = self.repository(full_name)
            shielded = set(protected or [])
            for name in names:
                branch = GitHubBranch(name, fake_sha(full_name, name), name in shielded)
                repo.branches[name] = branch
                repo.commits.add(branch.sha)

    def add_collaborator(self, full_name: str, login: str, role: Role = "write") -> None:
        with self.lock:
            self.forget_lists()
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
        self.forget_lists()
        self._by_full_name.pop(repo.full_name.lower(), None)
        # GitHub keeps redirecting the old name to the repository until another one takes that name
        # ("Renaming a repository": "all ... API requests to the old name are redirected").
        self._moved[repo.full_name.lower()] = repo.id
        repo.name = name
        self._by_full_name[repo.full_name.lower()] = repo.id

    def moved_repository(self, full_name: str) -> GitHubRepository | None:
        """The repository a renamed one's old ``full_name`` now redirects to (None: no such old name)."""
        if full_name.lower() in self._by_full_name:
            return None  # the name is taken again: it names that repository now
        repo_id = self._moved.get(full_name.lower())
        return self.repositories.get(repo_id) if repo_id is not None else None

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
            self.forget_lists()
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
        refresh_lifetime = self.refresh_token_lifetimes.get(user.lower(), REFRESH_TOKEN_LIFETIME)
        self.refresh_tokens[refresh] = RefreshToken(
            refresh, access, user, self.client_id, now + refresh_lifetime
        )
        return {
            "access_token": access,
            "expires_in": lifetime or APP_TOKEN_LIFETIME,
            "refresh_token": refresh,
            "refresh_token_expires_in": refresh_lifetime,
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
            self.forget_lists()
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

    # --- webhooks, deliveries and the Git servers (tests.fakes._github_deploy, _github_app) ---------

    def push(
        self,
        full_name: str,
        *,
        branch: str | None = None,
        tag: str | None = None,
        message: str = "Deploy me",
        pusher: str | None = None,
        after: str | None = None,
        padding: int = 0,
    ) -> list[str]:
        """Push to a branch (default: the default branch) or a tag: the hooks' deliveries are queued in
        ``outbox``. ``padding``: bytes added to the payload (GitHub sends nothing above 25 MB). The GUIDs."""
        with self.lock:
            repo = self.repository(full_name)
            if tag is not None:
                ref, before = f"refs/tags/{tag}", "0" * 40
                after = after or fake_sha(full_name, "tag", tag)
            else:
                name = branch or repo.default_branch
                ref = f"refs/heads/{name}"
                current = repo.branches.get(name)
                before = current.sha if current else "0" * 40
                after = after or fake_sha(full_name, name, str(len(repo.commits)))
                repo.branches[name] = GitHubBranch(name, after, current.protected if current else False)
            repo.commits.add(after)
            html, api = self._bases()
            payload = push_payload(
                repo,
                html,
                api,
                ref=ref,
                before=before,
                after=after,
                message=message,
                pusher=pusher or repo.owner.login,
            )
            if padding:
                payload["padding"] = "x" * padding
            body = encode(payload)
            guids = []
            for hook in repo.hooks:
                if not hook.active or "push" not in hook.events or len(body) > 25 * 1024 * 1024:
                    continue
                guid = new_guid()
                self.enqueue(repo, hook, "push", body, guid, redelivery=False)
                guids.append(guid)
            return guids

    def enqueue(
        self,
        repo: GitHubRepository,
        hook: GitHubHook,
        event: str,
        body: bytes,
        guid: str,
        *,
        redelivery: bool,
    ) -> None:
        self.outbox.put(outgoing(self, repo, hook, event, body, guid, redelivery=redelivery))

    def send_ping(self, repo: GitHubRepository, hook: GitHubHook, api: str) -> None:
        payload = {
            "zen": "Keep it logically awesome.",
            "hook_id": hook.id,
            "hook": hook.render(api, repo.full_name),
        }
        self.enqueue(repo, hook, "ping", encode(payload), new_guid(), redelivery=False)

    def hook_posting_to(self, url_prefix: str) -> tuple[GitHubRepository, GitHubHook] | None:
        for repo in self.repositories.values():
            for hook in repo.hooks:
                if hook.url.startswith(url_prefix):
                    return repo, hook
        return None

    def git_read_allowed(self, repo: GitHubRepository, auth: tuple[str, str] | None) -> bool:
        """Whether Git over HTTPS lets these Basic credentials (or none) fetch ``repo``."""
        if auth is None:
            return not repo.private
        user, password = auth
        minted = self.installation_tokens.get(password)
        if minted is not None:
            return (
                user == "x-access-token"
                and self.now() < minted["expires_at"]
                and repo.full_name in minted["repositories"]
                and minted["permissions"].get("contents") in ("read", "write")
            )
        token = self.valid_token(password)
        if token is None or (repo.private and token.kind == "classic" and "repo" not in token.scopes):
            return False
        return repo.role_of(token.user) is not None and self.token_covers(token, repo)

    def ssh_host_public_key(self) -> str:
        raw = self.ssh_host_key.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
        return raw.decode()

    def ssh_host_fingerprint(self) -> str:
        blob = base64.b64decode(self.ssh_host_public_key().split()[1])
        return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")

    # --- helpers the endpoint modules share -------------------------------------------------------

    def authorize(self, call: Call, token: GitHubToken, need: Need) -> GitHubRepository | Response:
        return authorize(self, call, token, need)

    def json_body(self, call: Call, docs: str) -> tuple[Any, Response | None]:
        try:
            return call.json(), None
        except ValueError:
            return None, github_error(400, "Problems parsing JSON", docs)

    def record_side_effect(self, call: Call, body: Any) -> None:
        self.side_effects.append(SideEffect(call.method, call.request.url.path, body))

    def _bases(self) -> tuple[str, str]:
        root = self.html_url or "https://github.test"
        return root.rstrip("/"), root.rstrip("/") + self.api_prefix

    # --- rate limit -----------------------------------------------------------------------------

    def rate_limited(self) -> bool:
        if not self.rate_limit_enabled:
            return False
        if self.now() >= self.rate_limit_reset:
            self.rate_limit_remaining = self.rate_limit
            self.rate_limit_reset = int(self.now()) + 3600
        return self.rate_limit_remaining <= 0

    def concurrency_refusal(self) -> Response:
        """GitHub's secondary-limit answer to a request past ``concurrency_limit`` (see ``__init__``)."""
        return github_error(
            self.secondary_limit_status,
            "You have exceeded a secondary rate limit and have been temporarily blocked from content "
            "creation. Please retry your request again later.",
            "https://docs.github.com/rest/overview/resources-in-the-rest-api#secondary-rate-limits",
            headers={"retry-after": str(self.secondary_retry_after)},
        )

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
