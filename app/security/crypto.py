"""AES-256-GCM encryption of the secrets this service keeps.

Threat model: someone who reads the database (a backup, a leaked dump, a curious operator with
only database access) must not learn any token; someone who can also *write* it must not be able
to make the service use a token for another record, another user or another server — by copying
ciphertexts between documents, or by changing where a record points. The keys live outside the
database (``ENCRYPTION_KEYS``). Not in scope: an attacker who holds the keys or runs code in the
service.

- Every ciphertext is ``enc:v2:<kid>:<base64url(nonce ‖ ciphertext ‖ tag)>`` with a fresh 96-bit
  random nonce, so it names the key that made it and keys can be rotated: the first key of the
  ring encrypts, every key decrypts, ``rotate-keys`` re-encrypts under the first.
- The associated data (``SecretBinding``) binds a ciphertext to its record id and field, and to the
  record's owner, provider, host and API URL as stored when the integration was connected. Moved to
  another record or field, or its record given another owner or pointed at another server, it no
  longer decrypts. Moving a host to a new address is the operator's ``move-host`` command, which
  re-encrypts under the new binding.
- ``enc:v1:`` ciphertexts (written before the binding covered owner, host and API URL: record id and
  field only) are not used for anything but their migration: ``rotate-keys`` re-encrypts them as
  v2 (``decrypt_legacy``). Reading one anywhere else raises, so an old ciphertext put back from a
  backup cannot bring back the weaker binding.
- Anything that does not decrypt (unknown key, tampered bytes, wrong record or destination) raises
  ``CipherError`` and never returns garbage.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from app.domain.errors import CipherError
from app.settings.values import EncryptionKey

PREFIX = "enc:v2:"
LEGACY_PREFIX = "enc:v1:"
_NONCE_BYTES = 12


@dataclass(frozen=True)
class SecretBinding:
    """Where a secret belongs: its record and field, and the record's owner and destination."""

    record_id: str
    field: str
    owner: str
    provider: str  # "GITHUB" | "GITLAB"
    host: str  # the host key, "gitlab.example.com:8443/gitlab"
    api_url: str  # the API URL stored with the integration when it was connected

    def for_field(self, field: str) -> SecretBinding:
        return replace(self, field=field)

    def associated_data(self) -> bytes:
        # JSON of a fixed list: unambiguous whatever characters the values hold.
        values = [self.record_id, self.field, self.owner, self.provider, self.host, self.api_url]
        return b"git-integrations|v2|" + json.dumps(values, separators=(",", ":")).encode()


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

    def encrypt(self, plaintext: str, binding: SecretBinding) -> str:
        """``plaintext`` sealed under the first key, bound to ``binding``."""
        key = self._keys[0]
        nonce = os.urandom(_NONCE_BYTES)
        sealed = key.aead.encrypt(nonce, plaintext.encode(), binding.associated_data())
        return f"{PREFIX}{key.kid}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def decrypt(self, ciphertext: str, binding: SecretBinding) -> str:
        """The secret, when ``ciphertext`` was sealed for exactly ``binding``; ``CipherError`` otherwise."""
        if ciphertext.startswith(LEGACY_PREFIX):
            raise CipherError(
                f"{binding.field} of record {binding.record_id} was written before ciphertexts were bound to "
                "their owner and host: run 'python -m app rotate-keys' to migrate it",
                reason="legacy",
            )
        where = f"{binding.field} of record {binding.record_id}"
        return self._open(PREFIX, ciphertext, binding.associated_data(), where)

    def decrypt_legacy(self, ciphertext: str, *, record_id: str, field: str) -> str:
        """An ``enc:v1:`` ciphertext (bound to record id and field only): for ``rotate-keys`` alone."""
        associated = f"git-integrations|v1|{record_id}|{field}".encode()
        return self._open(LEGACY_PREFIX, ciphertext, associated, f"{field} of record {record_id}")

    def is_legacy(self, ciphertext: str) -> bool:
        return ciphertext.startswith(LEGACY_PREFIX)

    def key_id_of(self, ciphertext: str) -> str:
        prefix = LEGACY_PREFIX if self.is_legacy(ciphertext) else PREFIX
        return self._split(prefix, ciphertext)[0]

    def needs_rotation(self, ciphertext: str) -> bool:
        """Written the old way, or under a key that is not the first."""
        return self.is_legacy(ciphertext) or self.key_id_of(ciphertext) != self.primary_kid

    def _open(self, prefix: str, ciphertext: str, associated: bytes, where: str) -> str:
        kid, payload = self._split(prefix, ciphertext)
        key = self._by_kid.get(kid)
        if key is None:
            raise CipherError(
                f"{where} was encrypted with key {kid!r}, which is not configured", reason="unknown_key"
            )
        try:
            raw = base64.urlsafe_b64decode(payload)
        except (binascii.Error, ValueError):
            raise CipherError(f"{where} is not valid base64", reason="malformed") from None
        if len(raw) < _NONCE_BYTES + 16:
            raise CipherError(f"{where} is too short to be a ciphertext", reason="malformed")
        try:
            plain = key.aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], associated)
        except InvalidTag:
            raise CipherError(
                f"{where} does not decrypt: tampered with, moved from another record, or its record "
                "now names another owner, host or API URL",
                reason="mismatch",
            ) from None
        return plain.decode()

    @staticmethod
    def _split(prefix: str, ciphertext: str) -> tuple[str, str]:
        if not ciphertext.startswith(prefix):
            raise CipherError(
                f"not a ciphertext of this service (missing {prefix!r} prefix)", reason="malformed"
            )
        kid, sep, payload = ciphertext[len(prefix) :].partition(":")
        if not sep or not kid or not payload:
            raise CipherError("malformed ciphertext", reason="malformed")
        return kid, payload
