"""A fake GitLab (gitlab.com or a self-managed instance, possibly under a path prefix).

REST under ``/api/v4``, OAuth under ``/oauth``, both relative to wherever the app is mounted, e.g.
``Mount("/gitlab", app=fake.app)`` makes the instance URL ``http://host/gitlab``.

    fake = FakeGitLab()
    alice = fake.add_user("alice")
    acme = fake.add_group("acme")
    fake.add_member("alice", acme, MAINTAINER)
    fake.add_projects("acme", 50)
    fake.add_personal_token("glpat-x", "alice", ["api", "read_repository", "write_repository"])
"""

from __future__ import annotations

import itertools
import secrets
import uuid
from collections import defaultdict, deque
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar

from starlette.responses import Response

from tests.fakes._github_deploy import encode
from tests.fakes._gitlab_api import GitLabAPI, unknown_route
from tests.fakes._gitlab_deploy import outgoing, push_payload
from tests.fakes._gitlab_models import (
    GUEST,
    MAINTAINER,
    REPORTER,
    GitLabAuthorizationCode,
    GitLabBranch,
    GitLabGroup,
    GitLabHook,
    GitLabProject,
    GitLabRefreshToken,
    GitLabToken,
    GitLabUser,
    commit_sha,
)
from tests.fakes._gitlab_oauth import GitLabOAuth
from tests.fakes._host import FakeHost
from tests.fakes._http import Call, to_epoch
from tests.fakes._webhooks import Outbox

BASE_TIME = 1_748_779_200.0  # 2025-06-01T12:00:00Z; projects are stamped backwards from here
_ACTIVITY_STEP = 89.0
OAUTH_TOKEN_LIFETIME = 7200
DEFAULT_OAUTH_SCOPES = [
    "api",
    "read_user",
    "read_api",
    "read_repository",
    "write_repository",
    "openid",
    "profile",
]


class FakeGitLab(FakeHost):
    """In-memory GitLab. All public attributes may be changed by tests between requests."""

    CONFIGURABLE: ClassVar[frozenset[str]] = FakeHost.CONFIGURABLE | {
        "rate_limit_remaining",
        "retry_after",
        "version_below_17_4",
        "version_below_15_5",
        "approving_user",
        "deny_authorization",
        "redirect_uris",
        "confidential",
        "max_offset",
        "count_limit",
        "fast_lists",
        "compact_projects",
        "projects_list_limit",
    }

    def __init__(
        self,
        *,
        client_id: str = "fake-gitlab-application-id",
        client_secret: str = "gloas-fake-gitlab-secret",
        redirect_uris: list[str] | None = None,
        confidential: bool = True,
        version: str = "17.6.0-ee",
    ) -> None:
        super().__init__()
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uris: list[str] = list(redirect_uris or [])  # empty accepts any redirect_uri
        self.confidential = confidential  # False: PKCE alone authenticates the client
        self.oauth_scopes: list[str] = list(DEFAULT_OAUTH_SCOPES)  # what the application may request
        self.approving_user: str | None = None  # username; defaults to the first human user added
        self.deny_authorization = False
        # A person at a browser clicks "Authorize" (tests.fakes._consent); who authorized before.
        self.consent_page = False
        self.authorized_users: set[str] = set()  # lower-case usernames
        # Lifetime of the access token a code exchange hands out (None: GitLab's 2 hours), e.g. to make
        # the first token due for a refresh at once; refreshed tokens always get the usual lifetime.
        self.code_token_lifetime: int | None = None
        # The refresh must repeat the authorization's redirect_uri, as GitLab documents it (see
        # _gitlab_oauth.GitLabOAuth._refresh); False accepts a refresh without it.
        self.refresh_needs_redirect_uri = True
        self.version = version
        self.version_below_17_4 = False  # /personal_access_tokens/self/associations answers 404
        # Older than 15.5: no /personal_access_tokens/self either (and older than 17.4 too).
        self.version_below_15_5 = False
        # Rate limit: None = unlimited; otherwise requests left before 429 + Retry-After.
        self.rate_limit_remaining: int | None = None
        self.rate_limit_limit = 2000
        self.retry_after = 60
        # gitlab.com's own limit on listing projects: "Projects API (GET /projects) ... 2,000 requests
        # per 10 minutes" per user (docs.gitlab.com/user/gitlab_com/#rate-limits-on-gitlabcom; the
        # facts sheet's Rate limits). Past it: 429 "Retry later" with Retry-After, the seconds until the
        # oldest request of the window leaves it. It counts requests, not answers: a 304 counts too.
        # (requests, seconds) or None for an instance without it (self-managed, by default).
        self.projects_list_limit: tuple[int, float] | None = (2000, 600.0)
        self._projects_listed: dict[int, deque[float]] = {}
        # Offset pages of projects past this many records answer 400 (gitlab.com: 50,000).
        self.max_offset = 50_000
        # Above this many records a list carries no x-total, x-total-pages or rel="last" (GitLab: 10,000).
        self.count_limit = 10_000
        # Test aids for lists of tens of thousands of projects (off by default): remember each filtered,
        # sorted project list until the world changes through the methods below, and render projects
        # with only the fields the service reads.
        self.compact_projects = False
        self.list_index: dict[Any, list[GitLabProject]] = {}
        self._levels_index: dict[tuple[int, int], tuple[int | None, int | None, int | None]] = {}
        # State.
        self.users: dict[int, GitLabUser] = {}
        self.groups: dict[int, GitLabGroup] = {}
        self.projects: dict[int, GitLabProject] = {}
        self.members: defaultdict[tuple[str, int], dict[int, int]] = defaultdict(
            dict
        )  # (kind, id) -> user -> level
        self.tokens: dict[str, GitLabToken] = {}
        self.refresh_tokens: dict[str, GitLabRefreshToken] = {}
        self.codes: dict[str, GitLabAuthorizationCode] = {}
        self._user_ids = itertools.count(1)
        self._namespace_ids = itertools.count(1)
        self._user_namespace: dict[int, int] = {}
        self._project_ids = itertools.count(1000)
        self._token_ids = itertools.count(1)
        self._activity_seq = itertools.count(0)
        # Hooks, deploy tokens, statuses; deliveries waiting to be sent by the test (tests.fakes._webhooks).
        self.object_ids = itertools.count(1)
        self.hook_event_ids = itertools.count(5_000)
        self.outbox = Outbox()
        self.allow_local_requests = False  # an instance's default: hooks to local addresses are refused
        self.pushed_commits: dict[int, set[str]] = defaultdict(set)
        self.git_fetches: list[tuple[str, str]] = []  # ("https", project path) of accepted clones
        GitLabAPI(self).register(self.router)
        GitLabOAuth(self).register(self.router)

    # --- users and groups -----------------------------------------------------------------------

    def add_user(self, username: str, name: str | None = None, *, bot: bool = False) -> GitLabUser:
        with self.lock:
            user = GitLabUser(next(self._user_ids), username, name or username.title(), self.now(), bot=bot)
            self.users[user.id] = user
            self._user_namespace[user.id] = next(self._namespace_ids)
            if self.approving_user is None and not bot:
                self.approving_user = username
            return user

    def add_service_account(self, username: str | None = None, *, group: str | None = None) -> GitLabUser:
        """A service account: a bot user (``"bot": true``) named without the ``group_`` / ``project_``
        prefix of group and project token bots; its tokens are personal access tokens
        (``add_personal_token``). Default names as GitLab generates them: ``service_account_<hash>``,
        or ``service_account_group_<group id>_<hash>`` for a group's (example in GitLab's
        doc/api/group_service_accounts.md)."""
        if username is None:
            owner = f"group_{self.group(group).id}_" if group else ""
            username = f"service_account_{owner}{secrets.token_hex(16)}"
        return self.add_user(username, "Service account user", bot=True)

    def user(self, username: str | GitLabUser) -> GitLabUser:
        if isinstance(username, GitLabUser):
            return username
        for user in self.users.values():
            if user.username.lower() == username.lower():
                return user
        raise KeyError(f"no GitLab user {username!r}")

    def add_group(
        self,
        path: str,
        name: str | None = None,
        *,
        parent: str | GitLabGroup | None = None,
        visibility: str = "private",
    ) -> GitLabGroup:
        """A group; ``parent`` (full path or group) makes it a subgroup."""
        with self.lock:
            self.forget_lists()
            parent_group = self.group(parent) if parent is not None else None
            group = GitLabGroup(
                next(self._namespace_ids), name or path.title(), path, parent_group, self.now(), visibility
            )
            self.groups[group.id] = group
            return group

    def group(self, ref: str | int | GitLabGroup) -> GitLabGroup:
        found = self.find_group(ref)
        if found is None:
            raise KeyError(f"no GitLab group {ref!r}")
        return found

    def find_group(self, ref: str | int | GitLabGroup) -> GitLabGroup | None:
        if isinstance(ref, GitLabGroup):
            return ref
        if isinstance(ref, int) or ref.isdigit():
            return self.groups.get(int(ref))
        return next((g for g in self.groups.values() if g.full_path.lower() == ref.lower()), None)

    # --- projects -------------------------------------------------------------------------------

    def add_project(
        self,
        namespace: str | GitLabGroup | GitLabUser,
        name: str,
        *,
        path: str | None = None,
        visibility: str = "private",
        default_branch: str = "main",
        archived: bool = False,
        branches: list[str] | None = None,
        protected: list[str] | None = None,
    ) -> GitLabProject:
        """A project in a group (full path) or a user's personal namespace (username)."""
        with self.lock:
            self.forget_lists()
            owner = self._namespace(namespace)
            ns_id = owner.id if isinstance(owner, GitLabGroup) else self._user_namespace[owner.id]
            activity = BASE_TIME - next(self._activity_seq) * _ACTIVITY_STEP
            project = GitLabProject(
                id=next(self._project_ids),
                name=name,
                path=path or name.lower().replace(" ", "-"),
                namespace=owner,
                namespace_id=ns_id,
                default_branch=default_branch,
                visibility=visibility,
                created_at=activity - 86_400 * 30,
                last_activity_at=activity,
                archived=archived,
                description=f"{name} (generated)",
            )
            for branch in [default_branch, *(b for b in branches or [] if b != default_branch)]:
                sha = commit_sha(project.path_with_namespace, branch)
                project.branches[branch] = GitLabBranch(
                    branch, sha, branch in (protected or [default_branch])
                )
            self.projects[project.id] = project
            return project

    def add_projects(
        self,
        namespace: str | GitLabGroup | GitLabUser,
        count: int,
        *,
        private_ratio: float = 0.5,
        archived_every: int = 0,
        name_prefix: str = "project",
        branches_per_project: int = 3,
    ) -> list[GitLabProject]:
        """``count`` projects named ``{prefix}-0001``…, most recent activity first."""
        with self.lock:
            owner = self._namespace(namespace)
            start = sum(1 for p in self.projects.values() if p.namespace is owner)
            created = []
            for i in range(start, start + count):
                extra = ["develop", *(f"feature/f{n}" for n in range(1, branches_per_project - 1))]
                created.append(
                    self.add_project(
                        owner,
                        f"{name_prefix}-{i + 1:04d}",
                        visibility="private"
                        if int((i + 1) * private_ratio) > int(i * private_ratio)
                        else "public",
                        archived=bool(archived_every) and (i + 1) % archived_every == 0,
                        branches=extra[: max(0, branches_per_project - 1)],
                    )
                )
            return created

    def project(self, ref: str | int | GitLabProject) -> GitLabProject:
        found = self.find_project(ref)
        if found is None:
            raise KeyError(f"no GitLab project {ref!r}")
        return found

    def find_project(self, ref: str | int | GitLabProject) -> GitLabProject | None:
        if isinstance(ref, GitLabProject):
            return ref
        if isinstance(ref, int) or ref.isdigit():
            return self.projects.get(int(ref))
        return next((p for p in self.projects.values() if p.path_with_namespace.lower() == ref.lower()), None)

    def add_branch(
        self, project: str | int | GitLabProject, name: str, *, protected: bool = False
    ) -> GitLabBranch:
        with self.lock:
            self.forget_lists()
            target = self.project(project)
            branch = GitLabBranch(name, commit_sha(target.path_with_namespace, name), protected)
            target.branches[name] = branch
            return branch

    def add_branches(
        self, project: str | int | GitLabProject, names: list[str], *, protected: list[str] | None = None
    ) -> None:
        """Many branches at once (a project with thousands of them)."""
        with self.lock:
            self.forget_lists()
            target = self.project(project)
            shielded = set(protected or [])
            for name in names:
                target.branches[name] = GitLabBranch(
                    name, commit_sha(target.path_with_namespace, name), name in shielded
                )

    def _namespace(self, ref: str | GitLabGroup | GitLabUser) -> GitLabGroup | GitLabUser:
        if isinstance(ref, GitLabGroup | GitLabUser):
            return ref
        group = self.find_group(ref)
        return group if group is not None else self.user(ref)

    # --- memberships ----------------------------------------------------------------------------

    def add_member(
        self, user: str | GitLabUser, target: str | GitLabGroup | GitLabProject, access_level: int
    ) -> None:
        """Membership of a group (full path or object) or project (``path_with_namespace`` or object)."""
        with self.lock:
            self.forget_lists()
            member = self.user(user)
            if isinstance(target, str):
                group = self.find_group(target)
                resolved: GitLabGroup | GitLabProject = group if group is not None else self.project(target)
            else:
                resolved = target
            kind = "group" if isinstance(resolved, GitLabGroup) else "project"
            self.members[(kind, resolved.id)][member.id] = access_level

    def share_project(
        self, project: str | GitLabProject, group: str | GitLabGroup, access_level: int
    ) -> None:
        with self.lock:
            self.forget_lists()
            self.project(project).shared_with[self.group(group).id] = access_level

    def forget_lists(self) -> None:
        """The world changed: lists, roles and answers kept for ``fast_lists`` are computed again."""
        super().forget_lists()
        self.list_index.clear()
        self._levels_index.clear()

    def group_level(self, user_id: int, group: GitLabGroup) -> int | None:
        """The user's role in a group, inherited from ancestors."""
        levels = [self.members[("group", g.id)].get(user_id) for g in group.lineage()]
        return max((lv for lv in levels if lv), default=None)

    def project_levels(
        self, user_id: int, project: GitLabProject
    ) -> tuple[int | None, int | None, int | None]:
        """(project_access, group_access, effective) for ``permissions`` and filtering."""
        if not self.fast_lists:
            return self._project_levels(user_id, project)
        key = (user_id, project.id)
        levels = self._levels_index.get(key)
        if levels is None:
            levels = self._levels_index[key] = self._project_levels(user_id, project)
        return levels

    def _project_levels(
        self, user_id: int, project: GitLabProject
    ) -> tuple[int | None, int | None, int | None]:
        direct = self.members[("project", project.id)].get(user_id)
        if isinstance(project.namespace, GitLabUser) and project.namespace.id == user_id:
            direct = max(direct or 0, 50)
        group = (
            self.group_level(user_id, project.namespace)
            if isinstance(project.namespace, GitLabGroup)
            else None
        )
        shared = [
            min(level, cap)
            for gid, cap in project.shared_with.items()
            if gid in self.groups and (level := self.group_level(user_id, self.groups[gid])) is not None
        ]
        effective = max([lv for lv in (direct, group, *shared) if lv], default=None)
        return direct, group, effective

    def can_see(self, user_id: int, project: GitLabProject) -> bool:
        if project.visibility in ("public", "internal"):
            return True
        effective = self.project_levels(user_id, project)[2]
        return effective is not None and effective >= GUEST

    # --- tokens ---------------------------------------------------------------------------------

    def add_personal_token(
        self,
        token: str,
        user: str | GitLabUser,
        scopes: list[str],
        expires_at: date | str | None = None,
        active: bool = True,
        revoked: bool = False,
        *,
        name: str = "fake token",
    ) -> GitLabToken:
        return self._add_token(
            token, "personal", self.user(user), scopes, _as_date(expires_at), name, active, revoked
        )

    def add_group_token(
        self,
        token: str,
        group: str | GitLabGroup,
        scopes: list[str],
        access_level: int = MAINTAINER,
        expires_at: date | str | None = None,
        *,
        name: str = "group token",
    ) -> GitLabToken:
        """A group access token: a new bot user ``group_{id}_bot_<hex>`` holding ``access_level`` in the group."""
        target = self.group(group)
        self.forget_lists()
        bot = self.add_user(f"group_{target.id}_bot_{secrets.token_hex(16)}", name, bot=True)
        self.members[("group", target.id)][bot.id] = access_level
        return self._add_token(
            token, "group", bot, scopes, _as_date(expires_at) or self._default_expiry(), name
        )

    def add_project_token(
        self,
        token: str,
        project: str | int | GitLabProject,
        scopes: list[str],
        access_level: int = MAINTAINER,
        expires_at: date | str | None = None,
        *,
        name: str = "project token",
    ) -> GitLabToken:
        """A project access token: a new bot user ``project_{id}_bot_<hex>`` holding ``access_level``."""
        target = self.project(project)
        self.forget_lists()
        bot = self.add_user(f"project_{target.id}_bot_{secrets.token_hex(16)}", name, bot=True)
        self.members[("project", target.id)][bot.id] = access_level
        return self._add_token(
            token, "project", bot, scopes, _as_date(expires_at) or self._default_expiry(), name
        )

    def add_oauth_token(
        self,
        token: str,
        user: str | GitLabUser,
        scopes: list[str],
        *,
        expires_in: int = OAUTH_TOKEN_LIFETIME,
        refresh_token: str | None = None,
        redirect_uri: str | None = None,
    ) -> GitLabToken:
        """An OAuth access token as ``POST /oauth/token`` would issue (optionally with its refresh token,
        bound to the ``redirect_uri`` of its authorization)."""
        with self.lock:
            record = self._add_token(token, "oauth", self.user(user), scopes, None, "oauth")
            record.expires_at_ts = self.now() + expires_in
            record.application_uid = self.client_id
            if refresh_token:
                record.refresh_token = refresh_token
                self.refresh_tokens[refresh_token] = GitLabRefreshToken(
                    refresh_token, token, record.user_id, scopes, redirect_uri=redirect_uri
                )
            return record

    def _add_token(
        self,
        value: str,
        kind: Any,
        user: GitLabUser,
        scopes: list[str],
        expires_at: date | None,
        name: str,
        active: bool = True,
        revoked: bool = False,
    ) -> GitLabToken:
        with self.lock:
            record = GitLabToken(
                id=next(self._token_ids),
                value=value,
                name=name,
                user_id=user.id,
                scopes=list(scopes),
                kind=kind,
                created_at=self.now(),
                expires_at=expires_at,
                active=active,
                revoked=revoked,
            )
            self.tokens[value] = record
            return record

    def _default_expiry(self) -> date:
        return self.today() + timedelta(days=30)

    def today(self) -> date:
        return datetime.fromtimestamp(self.now(), UTC).date()

    def valid_token(self, value: str) -> GitLabToken | None:
        record = self.tokens.get(value)
        if record is None or record.revoked or not record.active:
            return None
        if record.expires_at is not None and self.today() >= record.expires_at:
            return None
        if record.expires_at_ts is not None and self.now() >= record.expires_at_ts:
            return None
        return record

    def revoke_token(self, value: str) -> None:
        with self.lock:
            if value in self.tokens:
                self.tokens[value].revoked = True

    def issue_oauth_tokens(
        self, user_id: int, scopes: list[str], *, lifetime: int | None = None, redirect_uri: str | None = None
    ) -> dict[str, Any]:
        access, refresh = secrets.token_hex(32), secrets.token_hex(32)
        lifetime = lifetime or OAUTH_TOKEN_LIFETIME
        record = self.add_oauth_token(
            access,
            self.users[user_id],
            scopes,
            expires_in=lifetime,
            refresh_token=refresh,
            redirect_uri=redirect_uri,
        )
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": lifetime,
            "refresh_token": refresh,
            "scope": " ".join(scopes),
            "created_at": int(record.created_at),
        }

    # --- webhooks, deliveries and the Git server (tests.fakes._gitlab_deploy) ----------------------

    def push(
        self,
        project: str | int | GitLabProject,
        *,
        branch: str | None = None,
        tag: str | None = None,
        message: str = "Deploy me",
        user: str | None = None,
        after: str | None = None,
    ) -> list[str]:
        """Push to a branch (default: the default branch) or a tag; the hooks' deliveries are queued in
        ``outbox`` (none for a disabled hook: GitLab sends nothing then). Their delivery ids."""
        with self.lock:
            target = self.project(project)
            if tag is not None:
                kind, event, ref, before = "tag_push", "Tag Push Hook", f"refs/tags/{tag}", "0" * 40
                after = after or commit_sha(target.path_with_namespace, "tag", tag)
            else:
                name = branch or target.default_branch
                kind, event, ref = "push", "Push Hook", f"refs/heads/{name}"
                current = target.branches.get(name)
                before = current.sha if current else "0" * 40
                count = str(len(self.pushed_commits[target.id]))
                after = after or commit_sha(target.path_with_namespace, name, count)
                target.branches[name] = GitLabBranch(name, after, current.protected if current else False)
            self.pushed_commits[target.id].add(after)
            namespace = target.namespace
            pusher = user or (namespace.username if isinstance(namespace, GitLabUser) else "alice")
            payload = push_payload(
                target,
                "https://gitlab.test",
                kind=kind,
                ref=ref,
                before=before,
                after=after,
                message=message,
                user=pusher,
            )
            body = encode(payload)
            ids = []
            for hook in target.hooks:
                wanted = hook.tag_push_events if tag is not None else hook.push_events
                if not wanted or not self.delivering(hook):
                    continue
                event_uuid, key = str(uuid.uuid4()), str(uuid.uuid4())
                idempotency_key = None if self.version_below_17_4 else key
                self.enqueue(target, hook, event, body, event_uuid, idempotency_key)
                ids.append(idempotency_key or event_uuid)
            return ids

    def delivering(self, hook: GitLabHook) -> bool:
        if hook.alert_status == "disabled":
            return False
        return hook.disabled_until is None or self.now() >= hook.disabled_until

    def enqueue(
        self,
        project: GitLabProject,
        hook: GitLabHook,
        event: str,
        body: bytes,
        event_uuid: str,
        key: str | None,
    ) -> None:
        self.outbox.put(outgoing(self, hook, event, body, event_uuid, key))

    def commits_of(self, project: GitLabProject) -> set[str]:
        return {b.sha for b in project.branches.values()} | self.pushed_commits[project.id]

    def git_read_allowed(self, project: GitLabProject, auth: tuple[str, str] | None) -> bool:
        """Whether Git over HTTPS lets these Basic credentials (or none) fetch ``project``."""
        if auth is None:
            return project.visibility == "public"
        user, password = auth
        for deploy in project.deploy_tokens:
            if deploy.username == user:
                usable = not deploy.revoked and (deploy.expires_at is None or self.now() < deploy.expires_at)
                return usable and deploy.token == password and "read_repository" in deploy.scopes
        token = self.valid_token(password)
        if token is None or not {"read_repository", "api"} & set(token.scopes):
            return False
        level = self.project_levels(token.user_id, project)[2]
        return project.visibility != "private" or (level or 0) >= REPORTER

    def hook_posting_to(self, url_prefix: str) -> tuple[GitLabProject, GitLabHook] | None:
        for project in self.projects.values():
            for hook in project.hooks:
                if hook.url.startswith(url_prefix):
                    return project, hook
        return None

    # --- misc -----------------------------------------------------------------------------------

    def projects_list_wait(self, user_id: int) -> int | None:
        """Count one ``GET /projects`` of this user; the Retry-After seconds when it is over the limit."""
        if self.projects_list_limit is None:
            return None
        allowed, seconds = self.projects_list_limit
        now = self.now()
        times = self._projects_listed.setdefault(user_id, deque())
        while times and times[0] <= now - seconds:
            times.popleft()
        if len(times) >= allowed:
            return max(1, int(times[0] + seconds - now) + 1)
        times.append(now)
        return None

    def rate_limited(self) -> bool:
        return self.rate_limit_remaining is not None and self.rate_limit_remaining <= 0

    def not_found(self, call: Call) -> Response:
        # A route the instance does not have. GitLab's catch-all is `route :any, '*path'` →
        # `error!('404 Not Found', 404)` (gitlabhq lib/api/api.rb), which Grape renders as
        # {"error": "404 Not Found"} - unlike a missing resource's {"message": "404 Project Not Found"}.
        return unknown_route()

    def seed(self, data: dict[str, Any]) -> None:
        """Apply a seed document (see ``tests.fakes.scenarios.seed_gitlab``)."""
        from tests.fakes.scenarios import seed_gitlab

        seed_gitlab(self, data)


def _as_date(value: date | str | None) -> date | None:
    if value is None or isinstance(value, date):
        return value
    epoch = to_epoch(value if "T" in value else f"{value}T00:00:00+00:00")
    assert epoch is not None
    return datetime.fromtimestamp(epoch, UTC).date()
