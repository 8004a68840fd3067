"""Deploy keys: a fresh Ed25519 key pair per link, in the formats GitHub and ``ssh`` read.

The private half leaves this module only to be encrypted (``storage.links``) or handed to the builder
(``cloneCredentials``); the public half goes to the host as the deploy key.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


@dataclass(frozen=True)
class KeyPair:
    private_openssh: str  # "-----BEGIN OPENSSH PRIVATE KEY-----\n…", unencrypted
    public_openssh: str  # "ssh-ed25519 AAAA… comment"

    def __repr__(self) -> str:
        return f"KeyPair(public_openssh={self.public_openssh!r}, private_openssh='**********')"


def new_key_pair(comment: str) -> KeyPair:
    """A new Ed25519 key pair; ``comment`` ends the public line (say what the key is for)."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return KeyPair(private_openssh=private, public_openssh=f"{public.decode()} {comment}".strip())
