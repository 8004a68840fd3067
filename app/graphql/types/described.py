"""Descriptions for GraphQL enums whose Python enum lives in ``app.domain`` (which knows no Strawberry)."""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import TypeVar

import strawberry

E = TypeVar("E", bound=Enum)


def described_enum(cls: type[E], *, name: str, description: str, values: Mapping[E, str]) -> type[E]:
    """``cls`` as the GraphQL enum ``name``, each value with its description from ``values`` (all of them:
    a value added to the domain enum without one fails here, at import, not in GraphiQL's docs pane)."""
    missing = [member.name for member in cls if member not in values]
    if missing:
        raise ValueError(f"{name}: no description for {', '.join(missing)}")
    # A field typed with the plain enum may have made Strawberry wrap it already (on first sight, when
    # the annotation was resolved): describe that one definition in place, never make a second one.
    definition = getattr(cls, "__strawberry_definition__", None)
    if definition is None:
        strawberry.enum(cls, name=name)
        definition = cls.__strawberry_definition__  # type: ignore[attr-defined]
    definition.name = name
    definition.description = description
    for value in definition.values:
        value.description = values[cls[value.name]]
    return cls
