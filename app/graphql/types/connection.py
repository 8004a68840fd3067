"""Relay pages of a repository list: the arguments (checked once, before any upstream work) and cursors.

A cursor is opaque and stable: the repository's sort key (push time) and its id, not its position,
so a cursor stays valid when the list changes between two pages — also across a refresh.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from app.domain.errors import BadUserInputError
from app.domain.models import Repository, sort_key
from app.services.catalog import RepositoryList

MAX_FIRST = 100
MAX_SEARCH_LENGTH = 100
_CURSOR_PREFIX = "r1:"
_NOT_OURS = "`after` is not a cursor of this list; start again from the first page."


def normalise_search(search: str | None) -> str | None:
    """The search text to use, or None for "everything"; BAD_USER_INPUT when it is absurdly long."""
    if search is None or not search.strip():
        return None
    search = search.strip()
    if len(search) > MAX_SEARCH_LENGTH:
        raise BadUserInputError(f"Search for at most {MAX_SEARCH_LENGTH} characters.")
    return search


def check_first(first: int) -> int:
    """``first`` when it is 1..100, else BAD_USER_INPUT."""
    if not 1 <= first <= MAX_FIRST:
        raise BadUserInputError(f"`first` must be between 1 and {MAX_FIRST}.")
    return first


@dataclass(frozen=True)
class _Cursor:
    pushed_at: datetime | None
    repository_id: str


@dataclass(frozen=True)
class PageRequest:
    """``first`` and ``after``, checked: ``PageRequest.parse`` raises BAD_USER_INPUT for anything else."""

    first: int
    after: _Cursor | None

    @classmethod
    def parse(cls, first: int, after: str | None) -> PageRequest:
        cursor = None
        if after is not None:
            cursor = _decode_cursor(after)
            if cursor is None:
                raise BadUserInputError(_NOT_OURS)
        return cls(check_first(first), cursor)

    def slice(self, found: RepositoryList) -> RepositoryPage:
        """The ``first`` repositories after the cursor."""
        repositories = found.repositories
        start = 0 if self.after is None else _position_after(repositories, self.after)
        chosen = repositories[start : start + self.first]
        return RepositoryPage(
            edges=[(cursor_of(r), r) for r in chosen],
            has_next_page=start + self.first < len(repositories) or found.more,
            has_previous_page=start > 0,
            total_count=found.total,
        )


@dataclass(frozen=True)
class RepositoryPage:
    """One Relay page of a ``RepositoryList``."""

    edges: list[tuple[str, Repository]]  # (cursor, repository)
    has_next_page: bool
    has_previous_page: bool
    total_count: int | None  # None: not known yet (a first page from the host, no count asked)

    @property
    def start_cursor(self) -> str | None:
        return self.edges[0][0] if self.edges else None

    @property
    def end_cursor(self) -> str | None:
        return self.edges[-1][0] if self.edges else None


def page_of(found: RepositoryList, first: int = 30, after: str | None = None) -> RepositoryPage:
    """The ``first`` repositories after the cursor ``after`` (BAD_USER_INPUT for a cursor not ours)."""
    return PageRequest.parse(first, after).slice(found)


def cursor_of(repo: Repository) -> str:
    """Opaque, and stable: the repository's sort key and id, not its position in a list."""
    pushed = "" if repo.pushed_at is None else str(int(repo.pushed_at.timestamp() * 1000))
    raw = f"{_CURSOR_PREFIX}{pushed}:{repo.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _position_after(repositories: Sequence[Repository], cursor: _Cursor) -> int:
    for index, repo in enumerate(repositories):
        if repo.id == cursor.repository_id:
            return index + 1
    # The repository left the list (deleted, access removed) or moved: continue from where it was.
    pushed = cursor.pushed_at
    key = (-pushed.timestamp() if pushed else float("inf"), cursor.repository_id)
    return next((i for i, r in enumerate(repositories) if sort_key(r) > key), len(repositories))


def _decode_cursor(cursor: str) -> _Cursor | None:
    if not cursor or len(cursor) > 1024:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if not raw.startswith(_CURSOR_PREFIX):
        return None
    pushed_text, sep, repo_id = raw[len(_CURSOR_PREFIX) :].partition(":")
    if not sep or not repo_id or (pushed_text and not pushed_text.isdigit()):
        return None
    pushed = datetime.fromtimestamp(int(pushed_text) / 1000, UTC) if pushed_text else None
    return _Cursor(pushed, repo_id)
