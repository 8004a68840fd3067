"""`python -m app ...` as an operator runs it."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from app.domain.models import AuthMethod, Credentials
from app.security.crypto import TokenCipher
from app.settings.values import EncryptionKey, Secret
from app.storage.integrations import IntegrationRepository
from app.storage.mongo import Database
from tests.storage.test_integrations_repository import GITHUB, NOW, verified

ROOT = Path(__file__).resolve().parents[2]
OLD = base64.b64encode(b"O" * 32).decode()
NEW = base64.b64encode(b"N" * 32).decode()


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("MONGODB_", "AUTH_", "ENCRYPTION_", "APP_"))
    }
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=ROOT,
        env=clean | env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"PORT": "eighty"}, "PORT"),
        ({"APP_ENV": "production"}, "MONGODB_URI"),
        ({"ENCRYPTION_KEYS": "x"}, "ENCRYPTION_KEYS"),
    ],
)
def test_bad_configuration_stops_serve_with_one_line_naming_the_variable(
    tmp_path: Path, env: dict[str, str], variable: str
) -> None:
    result = run_cli("serve", env={"DATA_DIR": str(tmp_path)} | env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and variable in lines[0] and lines[0].startswith("configuration error:")


def test_export_schema_prints_the_sdl(tmp_path: Path) -> None:
    result = run_cli("export-schema", env={"DATA_DIR": str(tmp_path)})
    assert result.returncode == 0
    assert result.stdout == (ROOT / "schema.graphql").read_text()


def test_dev_token_is_refused_in_production() -> None:
    result = run_cli(
        "dev-token", "--user", "alice",
        env={"APP_ENV": "production", "MONGODB_URI": "mongodb://db", "ENCRYPTION_KEYS": f"k:{NEW}",
             "AUTH_JWT_SECRET": "s" * 40},
    )  # fmt: skip
    assert result.returncode == 2
    assert "development" in result.stderr


async def test_rotate_keys_re_encrypts_stored_tokens_and_reports_how_many(mongo_uri: str) -> None:
    name = f"test_{uuid.uuid4().hex[:12]}"
    database = Database(mongo_uri, name)
    await database.ensure_indexes()
    old_repo = IntegrationRepository(database, TokenCipher([EncryptionKey("old", Secret(OLD))]))
    saved = await old_repo.save_verified(
        "alice", GITHUB, AuthMethod.OAUTH, verified(), Credentials("tok", refresh_token="ref"), NOW
    )
    result = run_cli(
        "rotate-keys",
        env={"MONGODB_URI": mongo_uri, "MONGODB_DATABASE": name, "ENCRYPTION_KEYS": f"new:{NEW},old:{OLD}"},
    )
    assert result.returncode == 0, result.stderr
    assert "re-encrypted 2 secret(s) under key 'new'" in result.stdout
    new_only = IntegrationRepository(database, TokenCipher([EncryptionKey("new", Secret(NEW))]))
    found = await new_only.get_with_credentials("alice", saved.integration.id)
    assert found is not None and found[1].access_token == "tok" and found[1].refresh_token == "ref"
    await database.client.drop_database(name)
    await database.close()
