"""Relay's ``PageInfo``, shared by every connection."""

from __future__ import annotations

import strawberry


@strawberry.type(description="Where this page sits in the whole list (Relay).")
class PageInfo:
    has_next_page: bool = strawberry.field(description="More items follow: pass `endCursor` as `after`.")
    has_previous_page: bool = strawberry.field(description="Items come before this page.")
    start_cursor: str | None = strawberry.field(description="The cursor of the first item; null when empty.")
    end_cursor: str | None = strawberry.field(description="The cursor of the last item; null when empty.")
