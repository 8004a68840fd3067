"""What the query asks of the field being resolved: lets a resolver skip work nobody will read
(an exact ``totalCount`` is the one thing that can cost a listing its first-page shortcut)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField

from app.graphql.context import Info


def selects(info: Info, name: str) -> bool:
    """Whether the field being resolved selects the sub-field ``name``, through fragments too."""
    return any(_selects(field.selections, name) for field in info.selected_fields)


def _selects(selections: Iterable[Any], name: str) -> bool:
    for selection in selections:
        if isinstance(selection, SelectedField) and selection.name == name:
            return True
        if isinstance(selection, FragmentSpread | InlineFragment) and _selects(selection.selections, name):
            return True
    return False
