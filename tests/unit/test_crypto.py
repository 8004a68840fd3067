from __future__ import annotations

import base64
import dataclasses
import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from app.domain.errors import CipherError
from app.security.crypto import SecretBinding, TokenCipher
from app.settings.values import EncryptionKey, Secret

KEY_A = EncryptionKey("a", Secret(base64.b64encode(b"A" * 32).decode()))
KEY_B = EncryptionKey("b", Secret(base64.b64encode(b"B" * 32).decode()))
TOKEN = "ghp_" + "x" * 36
BOUND = SecretBinding(
    record_id="r1",
    field="accessToken",
    owner="alice",
    provider="GITLAB",
    host="gitlab.example.com",
    api_url="https://gitlab.example.com/api/v4",
)


def legacy_ciphertext(plaintext: str, record_id: str, field: str, key: bytes = b"A" * 32) -> str:
    """``enc:v1:`` as the service wrote it before issue 11: bound to record id and field only."""
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(
        nonce, plaintext.encode(), f"git-integrations|v1|{record_id}|{field}".encode()
    )
    return f"enc:v1:a:{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def test_round_trip() -> None:
    cipher = TokenCipher([KEY_A])
    sealed = cipher.encrypt(TOKEN, BOUND)
    assert TOKEN not in sealed
    assert sealed.startswith("enc:v2:a:")
    assert cipher.decrypt(sealed, BOUND) == TOKEN


def test_each_encryption_uses_a_fresh_nonce() -> None:
    cipher = TokenCipher([KEY_A])
    assert cipher.encrypt(TOKEN, BOUND) != cipher.encrypt(TOKEN, BOUND)


@pytest.mark.parametrize(
    "change",
    [
        {"record_id": "r2"},
        {"field": "refreshToken"},
        {"owner": "mallory"},
        {"provider": "GITHUB"},
        {"host": "gitlab.attacker.example"},
        {"api_url": "https://gitlab.attacker.example/api/v4"},
        {"api_url": "https://gitlab.example.com/api/v4/"},
    ],
)
def test_a_ciphertext_does_not_decrypt_for_another_record_field_owner_or_destination(
    change: dict[str, str],
) -> None:
    cipher = TokenCipher([KEY_A])
    sealed = cipher.encrypt(TOKEN, BOUND)

    with pytest.raises(CipherError, match="moved") as caught:
        cipher.decrypt(sealed, dataclasses.replace(BOUND, **change))
    assert caught.value.reason == "mismatch"
    assert TOKEN not in str(caught.value)


def test_values_cannot_be_shifted_between_the_bound_fields() -> None:
    cipher = TokenCipher([KEY_A])
    sealed = cipher.encrypt(TOKEN, dataclasses.replace(BOUND, owner="a|b", provider="c"))

    with pytest.raises(CipherError):
        cipher.decrypt(sealed, dataclasses.replace(BOUND, owner="a", provider="b|c"))


def test_tampered_ciphertext_is_refused_not_garbage() -> None:
    cipher = TokenCipher([KEY_A])
    sealed = cipher.encrypt(TOKEN, BOUND)
    prefix, payload = sealed.rsplit(":", 1)
    raw = bytearray(base64.urlsafe_b64decode(payload))
    raw[15] ^= 0x01
    tampered = f"{prefix}:{base64.urlsafe_b64encode(bytes(raw)).decode()}"
    with pytest.raises(CipherError, match="tampered"):
        cipher.decrypt(tampered, BOUND)


def test_unknown_key_id_gives_a_clear_error() -> None:
    sealed = TokenCipher([KEY_B]).encrypt(TOKEN, BOUND)
    with pytest.raises(CipherError, match="key 'b', which is not configured") as caught:
        TokenCipher([KEY_A]).decrypt(sealed, BOUND)
    assert caught.value.reason == "unknown_key"


@pytest.mark.parametrize("value", ["", "plaintext-token", "enc:v2:a:", "enc:v2:a:!!!", "enc:v2:a:QUJD"])
def test_malformed_ciphertexts_are_refused(value: str) -> None:
    with pytest.raises(CipherError):
        TokenCipher([KEY_A]).decrypt(value, BOUND)


def test_first_key_encrypts_and_every_key_decrypts() -> None:
    old = TokenCipher([KEY_B]).encrypt(TOKEN, BOUND)
    ring = TokenCipher([KEY_A, KEY_B])
    assert ring.decrypt(old, BOUND) == TOKEN
    assert ring.needs_rotation(old)
    assert not ring.needs_rotation(ring.encrypt(TOKEN, BOUND))


def test_a_ciphertext_written_the_old_way_is_only_read_for_its_migration() -> None:
    cipher = TokenCipher([KEY_A])
    legacy = legacy_ciphertext(TOKEN, "r1", "accessToken")

    with pytest.raises(CipherError, match="rotate-keys") as caught:
        cipher.decrypt(legacy, BOUND)
    assert caught.value.reason == "legacy"
    assert cipher.needs_rotation(legacy)
    assert cipher.decrypt_legacy(legacy, record_id="r1", field="accessToken") == TOKEN
    with pytest.raises(CipherError):
        cipher.decrypt_legacy(legacy, record_id="r2", field="accessToken")
