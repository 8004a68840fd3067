from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from app.domain.errors import ConfigurationError
from app.settings import load_settings
from app.settings.model import SECRET_VARIABLES, Settings
from app.settings.values import Secret

KEY = "a:" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="  # 32 bytes of "A"


def test_defaults_follow_the_design_table() -> None:
    settings = Settings.from_env({})
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.mongodb_uri is None
    assert settings.mongodb_database == "git_integrations"
    assert settings.public_url == "http://127.0.0.1:8000"
    assert settings.github_url == "https://github.com"
    assert settings.github_api_url == "https://api.github.com"
    assert settings.gitlab_url == "https://gitlab.com"
    assert settings.repository_cache_seconds == 60
    assert settings.app_env == "development"
    assert settings.graphiql is True
    assert settings.max_integrations_per_user == 50
    assert settings.max_upstream_work_per_request == 60
    assert settings.max_concurrent_upstream_per_user == 40


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"PORT": "eighty"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"APP_ENV": "staging"}, "APP_ENV"),
        ({"ENCRYPTION_KEYS": "nokid"}, "ENCRYPTION_KEYS"),
        ({"ENCRYPTION_KEYS": "a:not-base64!"}, "ENCRYPTION_KEYS"),
        ({"ENCRYPTION_KEYS": "a:QUJD"}, "ENCRYPTION_KEYS"),
        ({"ENCRYPTION_KEYS": f"{KEY},{KEY}"}, "ENCRYPTION_KEYS"),
        ({"MONGODB_URI": "postgres://x"}, "MONGODB_URI"),
        ({"GITHUB_API_URL": "ftp://api.github.com"}, "GITHUB_API_URL"),
        ({"FRONTEND_ORIGINS": "https://app.example.com/path"}, "FRONTEND_ORIGINS"),
        ({"GIT_HOST_ALLOWLIST": "not a host"}, "GIT_HOST_ALLOWLIST"),
        ({"REPOSITORY_CACHE_SECONDS": "-1"}, "REPOSITORY_CACHE_SECONDS"),
        ({"MAX_INTEGRATIONS_PER_USER": "0"}, "MAX_INTEGRATIONS_PER_USER"),
        ({"MAX_UPSTREAM_WORK_PER_REQUEST": "many"}, "MAX_UPSTREAM_WORK_PER_REQUEST"),
        ({"MAX_CONCURRENT_UPSTREAM_PER_USER": "0"}, "MAX_CONCURRENT_UPSTREAM_PER_USER"),
        ({"GITHUB_CLIENT_ID": "abc"}, "GITHUB_CLIENT_SECRET"),
        ({"AUTH_JWT_SECRET": "short"}, "AUTH_JWT_SECRET"),
        ({"AUTH_JWKS_URL": "https://idp.example.com/jwks"}, "AUTH_ISSUER"),
    ],
)
def test_bad_values_stop_the_start_with_one_line_naming_the_variable(
    environ: dict[str, str], variable: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env(environ)
    message = str(caught.value)
    assert variable in message
    assert "\n" not in message


def test_mongodb_uri_is_never_echoed_in_the_error() -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({"MONGODB_URI": "postgres://user:hunter2@db"})
    assert "hunter2" not in str(caught.value)


def test_secrets_are_hidden_from_repr() -> None:
    settings = Settings.from_env(
        {
            "ENCRYPTION_KEYS": KEY,
            "AUTH_JWT_SECRET": "s3cret-" * 6,
            "MONGODB_URI": "mongodb://user:hunter2@db/",
            "GITHUB_CLIENT_ID": "id",
            "GITHUB_CLIENT_SECRET": "github-client-secret",
        }
    )
    shown = repr(settings)
    for secret in ("QUFBQUFB", "s3cret-", "hunter2", "github-client-secret"):
        assert secret not in shown
    assert isinstance(settings.auth_jwt_secret, Secret)


def test_production_refuses_generated_secrets_and_the_embedded_database() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings({"APP_ENV": "production"})
    message = str(caught.value)
    assert "MONGODB_URI" in message and "ENCRYPTION_KEYS" in message and "AUTH_JWT_SECRET" in message


def test_production_with_everything_set_starts_without_graphiql_by_default() -> None:
    settings = load_settings(
        {
            "APP_ENV": "production",
            "MONGODB_URI": "mongodb://db:27017/?replicaSet=rs0",
            "ENCRYPTION_KEYS": KEY,
            "AUTH_JWKS_URL": "https://idp.example.com/.well-known/jwks.json",
            "AUTH_ISSUER": "https://idp.example.com/",
            "AUTH_AUDIENCE": "git-integrations",
        }
    )
    assert settings.production and not settings.graphiql and not settings.generated_secrets


def test_development_secrets_are_generated_once_and_kept(tmp_path: Path) -> None:
    first = load_settings({"DATA_DIR": str(tmp_path)})
    second = load_settings({"DATA_DIR": str(tmp_path)})
    assert first.generated_secrets == ("ENCRYPTION_KEYS", "AUTH_JWT_SECRET")
    assert first.encryption_keys == second.encryption_keys
    assert first.auth_jwt_secret == second.auth_jwt_secret
    stored = tmp_path / "development-secrets.json"
    assert stored.stat().st_mode & 0o077 == 0
    assert set(json.loads(stored.read_text())) == {"encryption_key", "jwt_secret"}


def test_lists_are_parsed() -> None:
    settings = Settings.from_env(
        {
            "FRONTEND_ORIGINS": "https://app.example.com, http://localhost:3000",
            "GIT_HOST_ALLOWLIST": "gitlab.internal, 10.0.0.0/8,127.0.0.1",
            "ENCRYPTION_KEYS": f"{KEY},old:" + "QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI=",
        }
    )
    assert settings.frontend_origins == ("https://app.example.com", "http://localhost:3000")
    assert settings.git_host_allowlist == ("gitlab.internal", "10.0.0.0/8", "127.0.0.1")
    assert [k.kid for k in settings.encryption_keys] == ["a", "old"]


def test_the_metrics_directory_may_be_missing_but_not_a_file(tmp_path: Path) -> None:
    assert Settings.from_env({}).prometheus_multiproc_dir is None
    missing = tmp_path / "metrics"
    assert Settings.from_env({"PROMETHEUS_MULTIPROC_DIR": str(missing)}).prometheus_multiproc_dir == missing
    a_file = tmp_path / "file"
    a_file.write_text("")
    with pytest.raises(ConfigurationError, match=r"^PROMETHEUS_MULTIPROC_DIR: "):
        Settings.from_env({"PROMETHEUS_MULTIPROC_DIR": str(a_file)})


# --- secrets from files (X_FILE) ------------------------------------------------------------------

APP_KEY = (
    rsa.generate_private_key(public_exponent=65537, key_size=2048)
    .private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    .decode()
    .strip()
)
SECRETS = {
    "MONGODB_URI": "mongodb://user:hunter2@db:27017/?replicaSet=rs0",
    "ENCRYPTION_KEYS": KEY,
    "AUTH_JWT_SECRET": "jwt-secret-" * 4,
    "GITHUB_CLIENT_SECRET": "github-client-secret",
    "GITLAB_CLIENT_SECRET": "gitlab-client-secret",
    "GITHUB_APP_PRIVATE_KEY": APP_KEY,
}
CLIENT_IDS = {"GITHUB_CLIENT_ID": "github-id", "GITLAB_CLIENT_ID": "gitlab-id", "GITHUB_APP_ID": "4242"}


def test_every_secret_variable_has_an_example_here() -> None:
    assert set(SECRETS) == set(SECRET_VARIABLES)


@pytest.mark.parametrize("variable", SECRET_VARIABLES)
def test_each_secret_may_come_from_a_file_with_its_trailing_newline_dropped(
    tmp_path: Path, variable: str
) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(
        SECRETS[variable] + "\n"
    )  # as `echo value > file` or a Kubernetes Secret writes it
    from_file = {**CLIENT_IDS, **SECRETS, f"{variable}_FILE": str(secret_file)}
    del from_file[variable]

    assert Settings.from_env(from_file) == Settings.from_env({**CLIENT_IDS, **SECRETS})


def test_only_one_trailing_newline_is_dropped(tmp_path: Path) -> None:
    secret_file = tmp_path / "jwt"
    secret_file.write_text("x" * 32 + "\n\n")
    settings = Settings.from_env({"AUTH_JWT_SECRET_FILE": str(secret_file)})
    assert settings.auth_jwt_secret == Secret("x" * 32 + "\n")


def test_setting_a_secret_and_its_file_is_a_one_line_error(tmp_path: Path) -> None:
    secret_file = tmp_path / "jwt"
    secret_file.write_text("x" * 40)
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({"AUTH_JWT_SECRET": "y" * 40, "AUTH_JWT_SECRET_FILE": str(secret_file)})
    assert str(caught.value) == "AUTH_JWT_SECRET and AUTH_JWT_SECRET_FILE: set one of them, not both"


def unreadable(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Files ENCRYPTION_KEYS_FILE cannot be read from, and what the error says about each."""
    missing = tmp_path / "missing"
    directory = tmp_path / "a-directory"
    directory.mkdir()
    binary = tmp_path / "binary"
    binary.write_bytes(b"k1:\xff\xfe" + KEY.encode())
    huge = tmp_path / "huge"
    huge.write_bytes(KEY.encode() * 3000)
    empty = tmp_path / "empty"
    empty.write_text("\n")
    return {
        "missing": (missing, "cannot be read (No such file or directory)"),
        "directory": (directory, "cannot be read (Is a directory)"),
        "binary": (binary, "is not UTF-8 text"),
        "huge": (huge, "is larger than"),
        "empty": (empty, "is empty"),
    }


@pytest.mark.parametrize("case", ["missing", "directory", "binary", "huge", "empty"])
def test_an_unusable_secret_file_is_a_one_line_error_naming_the_variable_not_the_content(
    tmp_path: Path, case: str
) -> None:
    path, words = unreadable(tmp_path)[case]
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({"ENCRYPTION_KEYS_FILE": str(path)})
    message = str(caught.value)
    assert message.startswith(f"ENCRYPTION_KEYS_FILE: {str(path)!r} ")
    assert words in message
    assert "\n" not in message
    assert "QUFB" not in message and "xff" not in message


def test_a_bad_secret_read_from_a_file_is_reported_like_one_from_the_environment(tmp_path: Path) -> None:
    secret_file = tmp_path / "uri"
    secret_file.write_text("postgres://user:hunter2@db\n")
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({"MONGODB_URI_FILE": str(secret_file)})
    assert str(caught.value) == "MONGODB_URI: must start with mongodb:// or mongodb+srv://"


def test_secrets_read_from_files_are_hidden_from_repr(tmp_path: Path) -> None:
    environ: dict[str, str] = dict(CLIENT_IDS)
    for variable, value in SECRETS.items():
        (tmp_path / variable).write_text(value)
        environ[f"{variable}_FILE"] = str(tmp_path / variable)
    shown = repr(Settings.from_env(environ))
    for value in (
        "hunter2",
        "QUFBQUFB",
        "jwt-secret-",
        "github-client-secret",
        "gitlab-client-secret",
        "PRIVATE KEY",
    ):
        assert value not in shown


# --- traces (OTEL_*) ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "exporters"),
    [
        ({}, ()),
        ({"OTEL_TRACES_EXPORTER": "none"}, ()),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, ("otlp",)),
        ({"OTEL_TRACES_EXPORTER": "OTLP, console,otlp"}, ("otlp", "console")),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}, ()),
        ({"OTEL_TRACES_EXPORTER": "console", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, ("console",)),
    ],
)
def test_traces_are_off_unless_an_exporter_is_named(
    environ: dict[str, str], exporters: tuple[str, ...]
) -> None:
    assert Settings.from_env(environ).traces_exporters == exporters


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"OTEL_TRACES_EXPORTER": "jaeger"}, "OTEL_TRACES_EXPORTER"),
        ({"OTEL_SDK_DISABLED": "perhaps"}, "OTEL_SDK_DISABLED"),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ),
        ({"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"}, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"),
    ],
)
def test_bad_trace_settings_are_one_line_errors(environ: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigurationError, match=rf"^{variable}: [^\n]+$"):
        Settings.from_env(environ)


def test_an_exporter_without_the_otel_extra_stops_the_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("app.settings.reader._installed", lambda module: module != "opentelemetry.sdk")
    with pytest.raises(ConfigurationError, match=r"^OTEL_TRACES_EXPORTER: tracing needs the otel extra"):
        Settings.from_env({"OTEL_TRACES_EXPORTER": "otlp"})
    assert Settings.from_env({"OTEL_TRACES_EXPORTER": "none"}).traces_exporters == ()
