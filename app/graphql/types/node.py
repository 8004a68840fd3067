"""Relay ``Node`` and opaque global ids: base64 of ``"<Type>:<id>"``."""

from __future__ import annotations

import base64
import binascii

import strawberry


@strawberry.interface(description="An object with a global id, fetchable with `node(id)`.")
class Node:
    id: strawberry.ID = strawberry.field(
        description="The object's global id: opaque (do not parse it), stable, and good for node(id)."
    )


def to_global_id(type_name: str, local_id: str) -> strawberry.ID:
    return strawberry.ID(base64.urlsafe_b64encode(f"{type_name}:{local_id}".encode()).decode().rstrip("="))


def from_global_id(global_id: str) -> tuple[str, str] | None:
    """``(type, local id)``, or None when the id is not one of ours."""
    if not global_id or len(global_id) > 512:
        return None
    padded = global_id + "=" * (-len(global_id) % 4)
    try:
        decoded = base64.urlsafe_b64decode(padded.encode("ascii")).decode()
    except (binascii.Error, UnicodeError, ValueError):
        return None
    type_name, sep, local_id = decoded.partition(":")
    if not sep or not type_name or not local_id:
        return None
    return type_name, local_id


def local_id(global_id: str, type_name: str) -> str | None:
    """The local id inside ``global_id`` when it names a ``type_name``; None for anything else."""
    decoded = from_global_id(global_id)
    return decoded[1] if decoded is not None and decoded[0] == type_name else None
