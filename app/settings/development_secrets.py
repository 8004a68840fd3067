"""Development's generated secrets: with ``APP_ENV=development`` a missing encryption key or JWT secret is
generated once into ``DATA_DIR``, so that data and development tokens survive a restart."""

from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import replace
from pathlib import Path

from app.domain.errors import ConfigurationError
from app.settings.model import Settings
from app.settings.values import EncryptionKey, Secret

DEV_SECRETS_FILE = "development-secrets.json"


def with_development_secrets(settings: Settings) -> Settings:
    """Fill a missing encryption key and JWT secret from ``DATA_DIR`` (created on first use)."""
    needs_key = not settings.encryption_keys
    needs_jwt = not settings.auth_jwt_secret and not settings.auth_jwks_url
    if not (needs_key or needs_jwt):
        return settings
    path = settings.data_dir / DEV_SECRETS_FILE
    stored = _read_dev_secrets(path)
    changed = False
    if "encryption_key" not in stored:
        stored["encryption_key"] = base64.b64encode(secrets.token_bytes(32)).decode()
        changed = True
    if "jwt_secret" not in stored:
        stored["jwt_secret"] = secrets.token_urlsafe(48)
        changed = True
    if changed:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(stored, handle)
        tmp.replace(path)
    generated: list[str] = []
    if needs_key:
        settings = replace(
            settings, encryption_keys=(EncryptionKey("dev", Secret(stored["encryption_key"])),)
        )
        generated.append("ENCRYPTION_KEYS")
    if needs_jwt:
        settings = replace(settings, auth_jwt_secret=Secret(stored["jwt_secret"]))
        generated.append("AUTH_JWT_SECRET")
    return replace(settings, generated_secrets=tuple(generated))


def _read_dev_secrets(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigurationError(
            f"DATA_DIR: {path} is unreadable ({exc}); remove it to generate new secrets"
        ) from exc
    if not isinstance(data, dict):
        raise ConfigurationError(f"DATA_DIR: {path} is not a JSON object; remove it to generate new secrets")
    return {str(k): str(v) for k, v in data.items()}
