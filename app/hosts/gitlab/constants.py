"""What this service needs from GitLab and how it addresses it, in one place.

Sources: GitLab "Personal access token scopes", "Roles and permissions" (access levels) and the REST
API reference (``/work/shared/provider-facts.md``).
"""

from __future__ import annotations

from collections.abc import Mapping

API_PATH = "/api/v4"
# Personal, group, project and OAuth tokens alike.
REQUIRED_SCOPES: tuple[str, ...] = ("api", "read_repository", "write_repository")

# GitLab access levels. 5 and 25 are not roles a member picks in the UI but the API can report them.
GUEST = 10
MAINTAINER = 40
ROLE_NAMES: Mapping[int, str] = {
    5: "Minimal Access",
    10: "Guest",
    15: "Planner",
    20: "Reporter",
    25: "Security Manager",
    30: "Developer",
    40: "Maintainer",
    50: "Owner",
}
REQUIRED_ROLE = ROLE_NAMES[MAINTAINER]

MAX_TOKEN_LENGTH = 255
PER_PAGE = 100
