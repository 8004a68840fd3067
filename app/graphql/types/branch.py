"""``Branch`` and the Relay ``BranchConnection`` of ``Repository.branches``: arguments, cursors, pages.

A branch cursor is its name (opaque), so it stays valid when branches come and go between two pages:
the next page starts after where that name is, or would be, in the picker's order (the default
branch, then names starting with the search, then the rest; see ``app.services.branches``).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

import strawberry

from app.domain import models
from app.domain.errors import BadUserInputError
from app.graphql.context import Info
from app.graphql.loaders import BranchesKey
from app.graphql.selection import selects
from app.graphql.types.connection import check_first
from app.graphql.types.page_info import PageInfo
from app.services.branches import BranchList, branch_sort_key

MAX_BRANCH_SEARCH_LENGTH = 255  # GitHub and GitLab refuse longer branch names
_CURSOR_PREFIX = "b1:"
_NOT_OURS = "`after` is not a cursor of this branch list; start again from the first page."


@strawberry.type(name="Branch", description="A branch of a repository and the commit it points at.")
class BranchType:
    name: str = strawberry.field(description='The branch name, e.g. "main" or "release/2.4".')
    commit_sha: str = strawberry.field(description="The commit the branch points at (full SHA).")
    protected: bool = strawberry.field(description="The host protects this branch (push rules apply).")


@strawberry.type(description="A branch and its cursor.")
class BranchEdge:
    cursor: str = strawberry.field(description="Pass as `after` to continue after this branch.")
    node: BranchType = strawberry.field(description="The branch.")


@strawberry.type(
    description="A page of a repository's branches: the default branch first, then names starting "
    "with the search text, then the other matches, each group by name."
)
class BranchConnection:
    edges: list[BranchEdge] = strawberry.field(description="The branches of this page.")
    page_info: PageInfo = strawberry.field(description="Where this page sits in the whole list.")
    total: strawberry.Private[int | None]

    @strawberry.field(description="How many branches match, on all pages.")
    def total_count(self) -> int:
        if self.total is None:  # only left out when the query did not select it
            raise RuntimeError("totalCount was not computed for this page")
        return self.total


def normalise_branch_search(search: str | None) -> str | None:
    """The text to look for (None: every branch); BAD_USER_INPUT when no branch name can be that long."""
    if search is None or not search.strip():
        return None
    search = search.strip()  # branch names hold no spaces at either end
    if len(search) > MAX_BRANCH_SEARCH_LENGTH:
        raise BadUserInputError(f"Search for at most {MAX_BRANCH_SEARCH_LENGTH} characters.")
    return search


def branch_cursor(name: str) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{name}".encode()).decode().rstrip("=")


def decode_branch_cursor(cursor: str) -> str:
    """The branch name inside a cursor of ours; BAD_USER_INPUT for anything else."""
    if not cursor or len(cursor) > 1024:
        raise BadUserInputError(_NOT_OURS)
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadUserInputError(_NOT_OURS) from None
    if not raw.startswith(_CURSOR_PREFIX) or len(raw) == len(_CURSOR_PREFIX):
        raise BadUserInputError(_NOT_OURS)
    return raw[len(_CURSOR_PREFIX) :]


@dataclass(frozen=True)
class BranchPageRequest:
    """``first`` and ``after`` checked before any upstream work."""

    first: int
    after: str | None  # a branch name

    @classmethod
    def parse(cls, first: int, after: str | None) -> BranchPageRequest:
        return cls(check_first(first), decode_branch_cursor(after) if after is not None else None)

    def slice(self, found: BranchList, search: str | None, default_branch: str | None) -> BranchConnection:
        branches = found.branches
        start = 0 if self.after is None else _position_after(branches, self.after, search, default_branch)
        chosen = branches[start : start + self.first]
        return BranchConnection(
            edges=[
                BranchEdge(
                    cursor=branch_cursor(b.name),
                    node=BranchType(name=b.name, commit_sha=b.commit_sha, protected=b.protected),
                )
                for b in chosen
            ],
            page_info=PageInfo(
                has_next_page=start + self.first < len(branches) or not found.complete,
                has_previous_page=start > 0,
                start_cursor=branch_cursor(chosen[0].name) if chosen else None,
                end_cursor=branch_cursor(chosen[-1].name) if chosen else None,
            ),
            total=len(branches) if found.complete else None,
        )


def _position_after(
    branches: Sequence[models.Branch], name: str, search: str | None, default_branch: str | None
) -> int:
    for index, branch in enumerate(branches):
        if branch.name == name:
            return index + 1
    # The branch is gone (deleted, renamed): continue from where it was.
    key = branch_sort_key(name, search, default_branch)
    return next(
        (i for i, b in enumerate(branches) if branch_sort_key(b.name, search, default_branch) > key),
        len(branches),
    )


SearchArgument = Annotated[
    str | None,
    strawberry.argument(
        description="Only branches whose names contain this text, exactly as typed (case-sensitive; "
        "no character has a special meaning). Null or empty: every branch."
    ),
]
FirstArgument = Annotated[int | None, strawberry.argument(description="How many branches (1..100).")]
AfterArgument = Annotated[
    str | None,
    strawberry.argument(
        description="The `endCursor` of the previous page; BAD_USER_INPUT when it is not a cursor of this list."
    ),
]


async def resolve_branches(
    info: Info,
    integration: models.Integration,
    repository: models.Repository,
    search: str | None,
    first: int,
    after: str | None,
) -> BranchConnection:
    """``Repository.branches``: arguments checked first, then one read per (repository, search)."""
    search = normalise_branch_search(search)
    page = BranchPageRequest.parse(first, after)
    # The first page of a search may come from the branches starting with it, unless a total is asked.
    first_page = page.first if page.after is None and not selects(info, "totalCount") else None
    loaders = await info.context.loaders_for_caller()
    found = await loaders.branches.load(
        BranchesKey(integration.id, repository.id, search, first_page, integration, repository)
    )
    return page.slice(found, search, repository.default_branch)
