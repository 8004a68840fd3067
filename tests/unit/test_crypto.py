from __future__ import annotations

import base64

import pytest

from app.domain.errors import CipherError
from app.security.crypto import TokenCipher
from app.settings import EncryptionKey, Secret

KEY_A = EncryptionKey("a", Secret(base64.b64encode(b"A" * 32).decode()))
KEY_B = EncryptionKey("b", Secret(base64.b64encode(b"B" * 32).decode()))
TOKEN = "ghp_" + "x" * 36


def test_round_trip() -> None:
    cipher = TokenCipher([KEY_A])
    sealed = cipher.encrypt(TOKEN, record_id="r1", field="accessToken")
    assert TOKEN not in sealed
    assert sealed.startswith("enc:v1:a:")
    assert cipher.decrypt(sealed, record_id="r1", field="accessToken") == TOKEN


def test_each_encryption_uses_a_fresh_nonce() -> None:
    cipher = TokenCipher([KEY_A])
    assert cipher.encrypt(TOKEN, record_id="r", field="f") != cipher.encrypt(TOKEN, record_id="r", field="f")


def test_ciphertext_moved_to_another_record_or_field_does_not_decrypt() -> None:
    cipher = TokenCipher([KEY_A])
    sealed = cipher.encrypt(TOKEN, record_id="r1", field="accessToken")
    with pytest.raises(CipherError, match="moved"):
        cipher.decrypt(sealed, record_id="r2", field="accessToken")
    with pytest.raises(CipherError):
        cipher.decrypt(sealed, record_id="r1", field="refreshToken")


def test_tampered_ciphertext_is_refused_not_garbage() -> None:
    cipher = TokenCipher([KEY_A])
    sealed = cipher.encrypt(TOKEN, record_id="r1", field="accessToken")
    prefix, payload = sealed.rsplit(":", 1)
    raw = bytearray(base64.urlsafe_b64decode(payload))
    raw[15] ^= 0x01
    tampered = f"{prefix}:{base64.urlsafe_b64encode(bytes(raw)).decode()}"
    with pytest.raises(CipherError, match="tampered"):
        cipher.decrypt(tampered, record_id="r1", field="accessToken")


def test_unknown_key_id_gives_a_clear_error() -> None:
    sealed = TokenCipher([KEY_B]).encrypt(TOKEN, record_id="r1", field="accessToken")
    with pytest.raises(CipherError, match="key 'b', which is not configured"):
        TokenCipher([KEY_A]).decrypt(sealed, record_id="r1", field="accessToken")


@pytest.mark.parametrize("value", ["", "plaintext-token", "enc:v1:a:", "enc:v1:a:!!!", "enc:v1:a:QUJD"])
def test_malformed_ciphertexts_are_refused(value: str) -> None:
    with pytest.raises(CipherError):
        TokenCipher([KEY_A]).decrypt(value, record_id="r1", field="accessToken")


def test_first_key_encrypts_and_every_key_decrypts() -> None:
    old = TokenCipher([KEY_B]).encrypt(TOKEN, record_id="r1", field="accessToken")
    ring = TokenCipher([KEY_A, KEY_B])
    assert ring.decrypt(old, record_id="r1", field="accessToken") == TOKEN
    assert ring.needs_rotation(old)
    assert not ring.needs_rotation(ring.encrypt(TOKEN, record_id="r1", field="accessToken"))
