"""What this service needs from GitHub and how it addresses it, in one place.

Sources: GitHub REST API "API versions" (``X-GitHub-Api-Version``), "Scopes for OAuth apps" and
"Permissions required for fine-grained personal access tokens" (``/work/shared/provider-facts.md``).
"""

from __future__ import annotations

from collections.abc import Mapping

API_VERSION = "2022-11-28"
USER_AGENT = "git-integrations-service"
ACCEPT = "application/vnd.github+json"

# Classic personal access tokens and OAuth App logins: what X-OAuth-Scopes must name.
REQUIRED_CLASSIC_SCOPES = ("repo", "admin:repo_hook")
# What an OAuth App login asks for (read:user to read the account behind the token).
OAUTH_APP_SCOPES = (*REQUIRED_CLASSIC_SCOPES, "read:user")

# Fine-grained permission areas the product needs, with the words GitHub's token page uses for them.
PERMISSION_AREAS: Mapping[str, str] = {
    "administration": "Administration",
    "statuses": "Commit statuses",
    "contents": "Contents",
    "webhooks": "Webhooks",
}
REQUIRED_FINE_GRAINED_PERMISSIONS = tuple(
    f"{area}:{level}" for area in PERMISSION_AREAS for level in ("read", "write")
)
# Installation permission names as the API spells them, in the words of the fine-grained vocabulary.
INSTALLATION_PERMISSION_NAMES: Mapping[str, str] = {"repository_hooks": "webhooks"}

MAX_TOKEN_LENGTH = 255
# Prefixes of personal access tokens, and of tokens that come from a sign-in flow.
CLASSIC_PREFIX = "ghp_"
FINE_GRAINED_PREFIX = "github_pat_"
LOGIN_TOKEN_PREFIXES = ("gho_", "ghu_", "ghs_", "ghr_")

PER_PAGE = 100
# /user/repos and /user/installations are read at most this many pages while a token is checked.
MAX_VERIFICATION_PAGES = 10
