"""AES-256-GCM encryption of the tokens this service keeps.

Threat model: someone who reads the database (a backup, a leaked dump, a curious operator with
only database access) must not learn any token, and must not be able to make the service use a
token for another record by copying ciphertexts between documents. The keys live outside the
database (``ENCRYPTION_KEYS``). Not in scope: an attacker who holds the keys or runs code in the
service.

- Every ciphertext is ``enc:v1:<kid>:<base64url(nonce ‖ ciphertext ‖ tag)>`` with a fresh 96-bit
  random nonce, so it names the key that made it and keys can be rotated: the first key of the
  ring encrypts, every key decrypts, ``rotate-keys`` re-encrypts under the first.
- The associated data binds a ciphertext to its record id and field (``accessToken``,
  ``refreshToken``): moved to another record or field, it no longer decrypts.
- Anything that does not decrypt (unknown key, tampered bytes, wrong record) raises
  ``CipherError`` and never returns garbage.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from app.domain.errors import CipherError
from app.settings import EncryptionKey

PREFIX = "enc:v1:"
_NONCE_BYTES = 12


@dataclass(frozen=True)
class _Key:
    kid: str
    aead: AESGCM


class TokenCipher:
    """Encrypts with the first key of the ring; decrypts with whichever key a ciphertext names."""

    def __init__(self, keys: Sequence[EncryptionKey]) -> None:
        if not keys:
            raise ValueError("TokenCipher needs at least one key")
        self._keys = [_Key(k.kid, AESGCM(base64.b64decode(k.key.reveal()))) for k in keys]
        self._by_kid = {k.kid: k for k in self._keys}

    @property
    def primary_kid(self) -> str:
        return self._keys[0].kid

    def encrypt(self, plaintext: str, *, record_id: str, field: str) -> str:
        key = self._keys[0]
        nonce = os.urandom(_NONCE_BYTES)
        sealed = key.aead.encrypt(nonce, plaintext.encode(), _associated_data(record_id, field))
        return f"{PREFIX}{key.kid}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def decrypt(self, ciphertext: str, *, record_id: str, field: str) -> str:
        kid, payload = self._split(ciphertext)
        key = self._by_kid.get(kid)
        if key is None:
            raise CipherError(
                f"{field} of record {record_id} was encrypted with key {kid!r}, which is not configured"
            )
        try:
            raw = base64.urlsafe_b64decode(payload)
        except (binascii.Error, ValueError):
            raise CipherError(f"{field} of record {record_id} is not valid base64") from None
        if len(raw) < _NONCE_BYTES + 16:
            raise CipherError(f"{field} of record {record_id} is too short to be a ciphertext")
        try:
            plain = key.aead.decrypt(
                raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _associated_data(record_id, field)
            )
        except InvalidTag:
            raise CipherError(
                f"{field} of record {record_id} does not decrypt: tampered with, or moved from another record"
            ) from None
        return plain.decode()

    def key_id_of(self, ciphertext: str) -> str:
        return self._split(ciphertext)[0]

    def needs_rotation(self, ciphertext: str) -> bool:
        return self.key_id_of(ciphertext) != self.primary_kid

    @staticmethod
    def _split(ciphertext: str) -> tuple[str, str]:
        if not ciphertext.startswith(PREFIX):
            raise CipherError("not a ciphertext of this service (missing 'enc:v1:' prefix)")
        kid, sep, payload = ciphertext[len(PREFIX) :].partition(":")
        if not sep or not kid or not payload:
            raise CipherError("malformed ciphertext")
        return kid, payload


def _associated_data(record_id: str, field: str) -> bytes:
    return f"git-integrations|v1|{record_id}|{field}".encode()
