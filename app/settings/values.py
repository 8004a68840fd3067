"""The values settings hold besides text and numbers: ``Secret`` (hidden from ``repr``) and the pairs it
sits in (an encryption key and its id, an OAuth client, a GitHub App's credentials)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass


class Secret:
    """A value that must not show up in ``repr``, ``str``, logs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and secrets.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class EncryptionKey:
    kid: str
    key: Secret


@dataclass(frozen=True)
class OAuthClient:
    client_id: str
    client_secret: Secret


@dataclass(frozen=True)
class GitHubAppCredentials:
    """The GitHub App this service mints clone tokens with: its id and its private key (PEM)."""

    app_id: str
    private_key: Secret
