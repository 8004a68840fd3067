"""The demo's seeded world: the fake GitHub and GitLab, their tokens and users, and the cheat sheet.

Every case a frontend must handle has an entry in ``CASES``: which platform user (the JWT's ``sub``) and
which token or login shows it, and what the API answers. ``demo.seeding`` prepares the cases that need
history (a login made earlier, a token revoked since, a linked repository) through the service's own API;
``tests/demo/test_demo_cheat_sheet.py`` walks every entry through the API and fails when one shows
something else than the sheet says.
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.fakes._gitlab_models import DEVELOPER, OWNER
from tests.fakes.github import FakeGitHub
from tests.fakes.gitlab import FakeGitLab

# The OAuth applications registered at the fakes (not secrets: the fakes are the only ones who know them).
GITHUB_APP_SLUG = "demo-deploy-app"
GITHUB_CLIENT_ID = "Iv1.demo0deploy0app"
GITHUB_CLIENT_SECRET = "demo-github-app-client-secret"
GITLAB_CLIENT_ID = "demo-gitlab-application"
GITLAB_CLIENT_SECRET = "gloas-demo-gitlab-application-secret"


def _token(prefix: str, label: str, length: int) -> str:
    """A token of the host's shape (the service checks shapes), readable as what it is for."""
    return prefix + label.ljust(length, "0")


GH_EVERYTHING = _token("ghp_", "DemoThousandsOfRepos", 36)
GH_MISSING_SCOPE = _token("ghp_", "DemoMissingHookScope", 36)
GH_SELECTED = _token("github_pat_", "DemoSelectedRepositories", 82)
GH_REVOKED = _token("ghp_", "DemoRevokedToken", 36)
GH_EXPIRING = _token("ghp_", "DemoExpiresInThreeDays", 36)
GH_RITA = _token("ghp_", "DemoRitaRevokedLater", 36)
GH_LENA = _token("github_pat_", "DemoLenaLinkedRepository", 82)
GL_MAINTAINER = _token("glpat-", "DemoAliceMaintainer", 20)
GL_DEVELOPER = _token("glpat-", "DemoDaveDeveloper", 20)
GL_MISSING_SCOPE = _token("glpat-", "DemoReadApiOnly", 20)

GITHUB_REPOSITORIES = 2_400  # octocat's own: "thousands"
ACME_REPOSITORIES = 120  # organisation acme, where octocat is a plain member (no admin rights)
SSO_REPOSITORIES = 15  # organisation sso-corp, SAML SSO enforced, the classic token not authorized for it
MONOREPO = "octocat/monorepo"
MONOREPO_BRANCHES = 350
SELECTED = ["octocat/monorepo", "octocat/web-app", "octocat/api-server"]
LINKED = "octocat/web-app"  # lena's linked repository
EXPIRING_DAYS = 3
GITLAB_PROJECTS = 300
FULL_PERMISSIONS = {"administration": "write", "statuses": "write", "contents": "write", "webhooks": "write"}
REQUIRED_GITLAB_SCOPES = ["api", "read_repository", "write_repository"]


@dataclass(frozen=True)
class Case:
    """One line of the cheat sheet."""

    key: str  # stable name (the test checks each by it)
    host: str  # GitHub, GitLab
    user: str  # the platform user (JWT sub) to use
    use: str  # what to do: a token to paste, a login to click, nothing (already connected)
    token: str | None
    shows: str  # what the API answers, in the words of the UI


CASES: tuple[Case, ...] = (
    Case(
        "thousands",
        "GitHub",
        "alice",
        "connect this token",
        GH_EVERYTHING,
        f"{GITHUB_REPOSITORIES + ACME_REPOSITORIES:,} repositories (paginate with after); {MONOREPO} first",
    ),
    Case(
        "sso",
        "GitHub",
        "alice",
        "same token, repositories(...) { notices }",
        GH_EVERYTHING,
        "notice SSO_AUTHORIZATION_REQUIRED (organizations: sso-corp's id, url: where to authorize): its "
        "repositories stay hidden until the token is authorized for SAML single sign-on",
    ),
    Case(
        "no-admin",
        "GitHub",
        "alice",
        "same token, search: acme/",
        GH_EVERYTHING,
        f"{ACME_REPOSITORIES} repositories of organisation acme with viewerCanAdminister false "
        "(octocat is a member without admin rights): show them greyed out",
    ),
    Case(
        "branches",
        "GitHub",
        "alice",
        f"same token, branches of {MONOREPO}",
        GH_EVERYTHING,
        f"{MONOREPO_BRANCHES + 1} branches: main first, hasNextPage after the first 100",
    ),
    Case(
        "selected",
        "GitHub",
        "alice",
        "connect this fine-grained token",
        GH_SELECTED,
        f"repositoryAccess SELECTED, {len(SELECTED)} repositories, manageAccessUrl to add more",
    ),
    Case(
        "missing-scope",
        "GitHub",
        "alice",
        "connect this token (scope repo only)",
        GH_MISSING_SCOPE,
        "MissingPermissionsError: missing admin:repo_hook",
    ),
    Case(
        "revoked-token",
        "GitHub",
        "alice",
        "connect this token (revoked at GitHub)",
        GH_REVOKED,
        "InvalidTokenError",
    ),
    Case(
        "expiring-token",
        "GitHub",
        "alice",
        "connect this token",
        GH_EXPIRING,
        f"expiresAt in {EXPIRING_DAYS} days: remind the user to replace it",
    ),
    Case(
        "expiring-login",
        "GitHub",
        "erin",
        "nothing: erin signed in with GitHub (the GitHub App) before",
        None,
        "authMethod OAUTH, reconnectBy in 2 days: show the reminder (GitHub user erin's sign-in ends then)",
    ),
    Case(
        "revoked-later",
        "GitHub",
        "rita",
        "nothing: rita connected a token that was revoked at GitHub since",
        None,
        "status NEEDS_RECONNECT: offer Connect again",
    ),
    Case(
        "linked-push",
        "GitHub",
        "lena",
        "nothing: lena linked a repository; the demo page's Push button pushes again",
        None,
        f"repositoryLinks: {LINKED} ACTIVE with a PUSH event (read with the deployer JWT)",
    ),
    Case(
        "gitlab-maintainer",
        "GitLab",
        "alice",
        "connect this token (host empty: the demo GitLab)",
        GL_MAINTAINER,
        f"{GITLAB_PROJECTS} projects in acme and acme/platform, viewerCanAdminister true",
    ),
    Case(
        "gitlab-developer",
        "GitLab",
        "alice",
        "connect this token (dave is Developer in acme)",
        GL_DEVELOPER,
        "InsufficientRoleError: required Maintainer, actual Developer",
    ),
    Case(
        "gitlab-missing-scope",
        "GitLab",
        "alice",
        "connect this token (scope read_api only)",
        GL_MISSING_SCOPE,
        "MissingPermissionsError: missing api, read_repository, write_repository",
    ),
    Case(
        "github-login",
        "GitHub",
        "alice",
        "Connect with GitHub on the demo page (install the app, all or selected repositories)",
        None,
        "the fake GitHub's install page, then the Integration (authMethod OAUTH)",
    ),
    Case(
        "gitlab-login",
        "GitLab",
        "alice",
        "Connect with GitLab on the demo page",
        None,
        "the fake GitLab's Authorize page, then the Integration for GitLab user alice",
    ),
)


def build_github() -> FakeGitHub:
    """octocat with thousands of repositories, two organisations, a monorepo with many branches; erin,
    whose sign-in must be renewed in two days; rita; the tokens of the cheat sheet."""
    github = FakeGitHub(
        app_slug=GITHUB_APP_SLUG, client_id=GITHUB_CLIENT_ID, client_secret=GITHUB_CLIENT_SECRET
    )
    github.consent_page = True
    github.rate_limit_enabled = False  # a demo clicked through for an afternoon
    for login, name in (("octocat", "The Octocat"), ("erin", "Erin Expiring"), ("rita", "Rita Revoked")):
        github.add_user(login, name)
    github.approving_user = "octocat"
    github.refresh_token_lifetimes["erin"] = 2 * 86_400
    # Created newest push first: the monorepo and the two selected ones head the picker.
    branches = [f"release/{n // 10}.{n % 10}" for n in range(MONOREPO_BRANCHES)]
    github.add_repository("octocat", "monorepo", private=True, branches=branches, protected=["main"])
    github.add_repository("octocat", "web-app", private=True)
    github.add_repository("octocat", "api-server")
    github.add_repositories("octocat", GITHUB_REPOSITORIES - 3, archived_every=25)
    github.add_org("acme", {"octocat": "member"})
    github.account("acme").member_role = "read"
    github.add_repositories("acme", ACME_REPOSITORIES, name_prefix="service")
    github.add_org("sso-corp", {"octocat": "admin"})
    github.add_repositories("sso-corp", SSO_REPOSITORIES, private_ratio=1.0, name_prefix="secret")
    github.enforce_sso("sso-corp")
    github.add_repositories("erin", 12)
    github.add_repositories("rita", 5)
    github.add_classic_token(GH_EVERYTHING, "octocat", ["repo", "admin:repo_hook", "read:org"])
    github.add_classic_token(GH_MISSING_SCOPE, "octocat", ["repo"])
    github.add_fine_grained_token(GH_SELECTED, "octocat", FULL_PERMISSIONS, list(SELECTED))
    github.add_fine_grained_token(GH_LENA, "octocat", FULL_PERMISSIONS, [LINKED])
    github.add_classic_token(GH_REVOKED, "octocat", ["repo", "admin:repo_hook"])
    github.revoke_token(GH_REVOKED)
    expires = github.now() + EXPIRING_DAYS * 86_400
    github.add_classic_token(GH_EXPIRING, "octocat", ["repo", "admin:repo_hook"], expires)
    github.add_classic_token(GH_RITA, "rita", ["repo", "admin:repo_hook"])
    return github


def build_gitlab() -> FakeGitLab:
    """alice, Owner of acme (and its subgroup platform) with their projects; dave, a Developer there."""
    gitlab = FakeGitLab(client_id=GITLAB_CLIENT_ID, client_secret=GITLAB_CLIENT_SECRET)
    gitlab.consent_page = True
    gitlab.allow_local_requests = True  # what an administrator allows so that hooks reach 127.0.0.1
    gitlab.add_user("alice", "Alice Liddell")
    gitlab.add_user("dave", "Dave Developer")
    acme = gitlab.add_group("acme")
    platform = gitlab.add_group("platform", parent=acme)
    gitlab.add_member("alice", acme, OWNER)
    gitlab.add_member("dave", acme, DEVELOPER)
    gitlab.add_projects(acme, GITLAB_PROJECTS // 2, archived_every=20)
    gitlab.add_projects(platform, GITLAB_PROJECTS - GITLAB_PROJECTS // 2, name_prefix="service")
    gitlab.add_personal_token(GL_MAINTAINER, "alice", REQUIRED_GITLAB_SCOPES)
    gitlab.add_personal_token(GL_DEVELOPER, "dave", REQUIRED_GITLAB_SCOPES)
    gitlab.add_personal_token(GL_MISSING_SCOPE, "alice", ["read_api"])
    return gitlab
