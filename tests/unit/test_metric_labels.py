"""Metric labels: endpoint families from paths, and label sets that outside input cannot grow without end."""

from __future__ import annotations

import pytest

from app.metrics import ENDPOINT_FAMILIES, BoundedLabel, endpoint_family


@pytest.mark.parametrize(
    ("url", "family"),
    [
        ("https://api.github.com/user", "user"),
        ("https://api.github.com/user/repos?page=2", "user_repos"),
        ("https://api.github.com/user/installations", "installations"),
        ("https://api.github.com/user/installations/42/repositories", "installations"),
        ("https://api.github.com/repos/octo/app/branches", "branches"),
        ("https://api.github.com/repos/octo/app/branches/main/protection", "branches"),
        ("https://api.github.com/repos/octo/app/hooks", "repos"),
        ("https://api.github.com/repos/octo/branches/hooks", "repos"),  # a repository named "branches"
        ("https://api.github.com/repos/octo/oauth/contents/x", "repos"),
        ("https://api.github.com/applications/Iv1.abc/grant", "oauth"),
        ("https://github.com/login/oauth/access_token", "oauth"),
        ("https://ghe.example.com/api/v3/user/repos", "user_repos"),
        ("https://gitlab.com/api/v4/user", "user"),
        ("https://gitlab.com/api/v4/personal_access_tokens/self/associations", "personal_access_tokens"),
        ("https://gitlab.com/api/v4/projects?membership=true", "projects"),
        ("https://gitlab.com/api/v4/projects/team%2Fapp", "projects"),
        ("https://gitlab.com/api/v4/projects/7/repository/branches", "branches"),
        ("https://gitlab.com/api/v4/groups/3/projects", "groups"),
        ("https://gitlab.com/oauth/token", "oauth"),
        ("https://gitlab.com/oauth/token/info", "oauth"),
        ("https://git.example.com/gitlab/api/v4/projects", "projects"),
        ("https://git.example.com/gitlab/oauth/revoke", "oauth"),
        ("https://git.example.com/anything/else", "other"),
    ],
)
def test_each_path_maps_to_a_fixed_endpoint_family(url: str, family: str) -> None:
    assert endpoint_family(url) == family
    assert family in ENDPOINT_FAMILIES


def test_values_beyond_the_limit_become_other_but_allowed_ones_never_do() -> None:
    hosts = BoundedLabel(limit=3, max_length=30, pattern=r"[a-z0-9][a-z0-9.:-]*")
    hosts.allow(["github.com"])

    seen = [hosts(f"gitlab{n}.example.com") for n in range(5)]

    assert seen == ["gitlab0.example.com", "gitlab1.example.com", "gitlab2.example.com", "other", "other"]
    assert hosts("gitlab1.example.com") == "gitlab1.example.com"  # a known one stays itself
    assert hosts("github.com") == "github.com"


def test_values_that_are_too_long_or_oddly_spelled_become_other_and_use_up_nothing() -> None:
    names = BoundedLabel(limit=1, max_length=8, pattern=r"[A-Za-z_][A-Za-z0-9_]*")

    assert names("muchtoolongname") == "other"
    assert names('Evil"} 1') == "other"
    assert names("Ok") == "Ok"
    assert names("Next") == "other"
