"""Pages of a repository list: Relay slices with opaque cursors that survive changes to the list."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.domain.errors import BadUserInputError
from app.domain.models import Repository, RepositoryAccess, ordered
from app.graphql.types.connection import cursor_of, page_of
from app.services.catalog import RepositoryList

START = datetime(2025, 6, 1, tzinfo=UTC)


def repo(number: int, *, pushed: datetime | None = None) -> Repository:
    return Repository(
        id=f"octocat/repo-{number:03d}",
        name=f"repo-{number:03d}",
        full_name=f"octocat/repo-{number:03d}",
        owner="octocat",
        private=False,
        web_url="https://github.com/octocat",
        clone_url="https://github.com/octocat.git",
        pushed_at=pushed if pushed is not None else START - timedelta(minutes=number),
    )


def listing(repositories: list[Repository]) -> RepositoryList:
    return RepositoryList(ordered(repositories), RepositoryAccess.ALL, None, START)


def test_walking_every_page_with_end_cursors_sees_each_repository_once() -> None:
    found = listing([repo(n) for n in range(95)])
    seen: list[str] = []
    after = None
    while True:
        page = page_of(found, 30, after)
        seen += [r.id for _, r in page.edges]
        assert page.total_count == 95
        if not page.has_next_page:
            break
        after = page.end_cursor
    assert seen == [repo(n).id for n in range(95)]


def test_a_cursor_stays_valid_when_repositories_are_added_before_it() -> None:
    first = page_of(listing([repo(n) for n in range(10)]), 3)
    # A repository pushed since sorts first, yet the next page continues after repo-002.
    changed = listing([repo(n) for n in range(10)] + [repo(100, pushed=START + timedelta(hours=1))])
    second = page_of(changed, 3, first.end_cursor)
    assert [r.name for _, r in second.edges] == ["repo-003", "repo-004", "repo-005"]
    assert second.has_previous_page


def test_a_cursor_of_a_repository_that_left_the_list_continues_where_it_was() -> None:
    page = page_of(listing([repo(n) for n in range(10)]), 3)
    without_it = listing([repo(n) for n in range(10) if n != 2])
    after = page_of(without_it, 2, page.end_cursor)
    assert [r.name for _, r in after.edges] == ["repo-003", "repo-004"]


def test_repositories_never_pushed_come_last_and_page_like_the_others() -> None:
    empty = Repository("octocat/empty", "empty", "octocat/empty", "octocat", True, "w", "c", pushed_at=None)
    found = listing([empty, repo(1)])
    assert [r.name for _, r in page_of(found, 1).edges] == ["repo-001"]
    assert [r.name for _, r in page_of(found, 1, cursor_of(repo(1))).edges] == ["empty"]
    assert page_of(found, 1, cursor_of(empty)).edges == []


@pytest.mark.parametrize("cursor", ["not-a-cursor", "", "b2N0b2NhdA", "cjE6eHg6b2N0b2NhdA"])
def test_a_cursor_that_is_not_ours_is_bad_user_input(cursor: str) -> None:
    with pytest.raises(BadUserInputError):
        page_of(listing([repo(1)]), 5, cursor)


@pytest.mark.parametrize("first", [0, -1, 101])
def test_first_outside_one_to_a_hundred_is_bad_user_input(first: int) -> None:
    with pytest.raises(BadUserInputError):
        page_of(listing([repo(1)]), first)
