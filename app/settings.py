"""Settings from the environment: typed, validated once at start-up, secrets hidden from ``repr``.

``Settings.from_env()`` reads the variables of the design's configuration table and fails fast
with a ``ConfigurationError`` whose one line names the variable and what is wrong with it. Each secret
``X`` (``SECRET_VARIABLES``) may instead come from a file named by ``X_FILE`` (Kubernetes mounts
Secrets as files): its content with one trailing newline dropped.
``load_settings()`` adds the development conveniences: with ``APP_ENV=development`` a missing
encryption key or JWT secret is generated once into ``DATA_DIR`` (so data and dev tokens survive a
restart); ``APP_ENV=production`` refuses both generated secrets and the embedded database.

Why not pydantic-settings (issue 14, measured with 2.16.3 on a full port of this module): every rule
here beyond "is an int" (keys, origins, URLs, the allowlist, pairs, production's requirements, derived
defaults, X_FILE) stayed hand-written as validators; its own messages drop the value and half the range
("PORT: Input should be less than or equal to 65535" for "must be between 1 and 65535, not 70000");
it reads ``os.environ`` only (tests and the manifest check pass a mapping); and importing it added
0.4-0.65 s to every start of a process, for 58 fewer lines.
"""

from __future__ import annotations

import base64
import binascii
import importlib.util
import json
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from app.domain.errors import ConfigurationError
from app.hosts.github.addresses import api_url_for as github_api_url_for
from app.hosts.github.addresses import is_dotcom
from app.net.allowlist import parse_entry as parse_allowlist_entry

DEV_SECRETS_FILE = "development-secrets.json"
# The variables that hold secrets: each may also be read from the file that ``<name>_FILE`` names.
SECRET_VARIABLES = (
    "MONGODB_URI",
    "ENCRYPTION_KEYS",
    "AUTH_JWT_SECRET",
    "GITHUB_CLIENT_SECRET",
    "GITLAB_CLIENT_SECRET",
    "GITHUB_APP_PRIVATE_KEY",
)
# A secret file larger than this is not a secret file (a PEM private key is under 4 KiB).
MAX_SECRET_FILE_BYTES = 64 * 1024
# Every variable ``Settings.from_env`` reads, and nothing else (deployment manifests may set only
# these). tests/unit/test_kubernetes_manifests.py checks it against ``from_env`` and the README table.
KNOWN_VARIABLES: frozenset[str] = frozenset(
    {
        "APP_ENV",
        "HOST",
        "PORT",
        "MONGODB_URI",
        "MONGODB_DATABASE",
        "DATA_DIR",
        "ENCRYPTION_KEYS",
        "AUTH_JWT_SECRET",
        "AUTH_JWKS_URL",
        "AUTH_ISSUER",
        "AUTH_AUDIENCE",
        "PUBLIC_URL",
        "FRONTEND_ORIGINS",
        "GITHUB_URL",
        "GITHUB_API_URL",
        "GITHUB_CLIENT_ID",
        "GITHUB_CLIENT_SECRET",
        "GITHUB_APP_SLUG",
        "GITHUB_APP_ID",
        "GITHUB_APP_PRIVATE_KEY",
        "DELIVERY_CATCH_UP_SECONDS",
        "GITLAB_URL",
        "GITLAB_CLIENT_ID",
        "GITLAB_CLIENT_SECRET",
        "REPOSITORY_CACHE_SECONDS",
        "GIT_HOST_ALLOWLIST",
        "GRAPHIQL",
        "LOG_LEVEL",
        "HTTP_TIMEOUT_SECONDS",
        "PROMETHEUS_MULTIPROC_DIR",
        "METRICS_PORT",
        "MAX_INTEGRATIONS_PER_USER",
        "MAX_UPSTREAM_WORK_PER_REQUEST",
        "MAX_CONCURRENT_UPSTREAM_PER_USER",
        *(f"{name}_FILE" for name in SECRET_VARIABLES),
        # Traces (app.tracing): what start-up checks; the SDK reads the other OTEL_* variables itself.
        "OTEL_SDK_DISABLED",
        "OTEL_TRACES_EXPORTER",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    }
)
TRACE_EXPORTERS = ("otlp", "console")
# What `OTEL_TRACES_EXPORTER` needs installed: the `otel` extra.
TRACING_MODULES = (
    "opentelemetry.sdk",
    "opentelemetry.exporter.otlp.proto.http",
    "opentelemetry.instrumentation.asgi",
    "opentelemetry.instrumentation.httpx",
    "opentelemetry.instrumentation.pymongo",
)
_KID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


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


@dataclass(frozen=True)
class Settings:
    app_env: Literal["development", "production"] = "development"
    host: str = "127.0.0.1"
    port: int = 8000
    mongodb_uri: Secret | None = None
    mongodb_database: str = "git_integrations"
    data_dir: Path = Path(".data")
    encryption_keys: tuple[EncryptionKey, ...] = ()
    auth_jwt_secret: Secret | None = None
    auth_jwks_url: str | None = None
    auth_issuer: str | None = None
    auth_audience: str | None = None
    public_url: str = "http://127.0.0.1:8000"
    frontend_origins: tuple[str, ...] = ()
    github_url: str = "https://github.com"
    github_api_url: str = "https://api.github.com"
    github_oauth: OAuthClient | None = None
    github_app_slug: str | None = None
    github_app: GitHubAppCredentials | None = None
    gitlab_url: str = "https://gitlab.com"
    gitlab_oauth: OAuthClient | None = None
    repository_cache_seconds: int = 60
    delivery_catch_up_seconds: float = 30.0
    git_host_allowlist: tuple[str, ...] = ()
    graphiql: bool = True
    log_level: str = "INFO"
    http_timeout_seconds: float = 10.0
    # One user's integrations; a request's upstream work (app.graphql.cost); one user's requests in flight.
    max_integrations_per_user: int = 50
    max_upstream_work_per_request: int = 60
    max_concurrent_upstream_per_user: int = 40
    # Read by prometheus-client itself at import (app.metrics); here so that `serve` can prepare it.
    prometheus_multiproc_dir: Path | None = None
    # Where spans go (app.tracing): empty, no tracing.
    traces_exporters: tuple[str, ...] = ()
    # /metrics on a listener of its own (app.metrics_listener); production serves it only there.
    metrics_port: int | None = None
    generated_secrets: tuple[str, ...] = field(default=(), compare=False)

    @property
    def production(self) -> bool:
        return self.app_env == "production"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Parse and validate the environment; raise ``ConfigurationError`` naming the variable."""
        env = _Env(os.environ if environ is None else environ)
        app_env = env.choice("APP_ENV", ("development", "production"), "development")
        production = app_env == "production"
        github_url = env.url("GITHUB_URL", "https://github.com", strip_slash=True) or ""
        settings = cls(
            app_env=app_env,  # type: ignore[arg-type]
            host=env.text("HOST", "127.0.0.1"),
            port=env.integer("PORT", 8000, minimum=1, maximum=65535),
            mongodb_uri=env.mongodb_uri("MONGODB_URI"),
            mongodb_database=env.database_name("MONGODB_DATABASE", "git_integrations"),
            data_dir=Path(env.text("DATA_DIR", ".data")),
            encryption_keys=env.encryption_keys("ENCRYPTION_KEYS"),
            auth_jwt_secret=env.secret("AUTH_JWT_SECRET", min_length=32),
            auth_jwks_url=env.url("AUTH_JWKS_URL", None),
            auth_issuer=env.optional("AUTH_ISSUER"),
            auth_audience=env.optional("AUTH_AUDIENCE"),
            public_url=env.url("PUBLIC_URL", "http://127.0.0.1:8000", strip_slash=True) or "",
            frontend_origins=env.origins("FRONTEND_ORIGINS"),
            github_url=github_url,
            # Unset: derived from GITHUB_URL, so that a GitHub Enterprise needs one variable.
            github_api_url=env.url("GITHUB_API_URL", None, strip_slash=True)
            or github_api_url_for(github_url),
            github_oauth=env.oauth_client("GITHUB_CLIENT_ID", "GITHUB_CLIENT_SECRET"),
            github_app_slug=env.slug("GITHUB_APP_SLUG"),
            github_app=env.github_app("GITHUB_APP_ID", "GITHUB_APP_PRIVATE_KEY"),
            gitlab_url=env.url("GITLAB_URL", "https://gitlab.com", strip_slash=True) or "",
            gitlab_oauth=env.oauth_client("GITLAB_CLIENT_ID", "GITLAB_CLIENT_SECRET"),
            repository_cache_seconds=env.integer("REPOSITORY_CACHE_SECONDS", 60, minimum=0, maximum=86_400),
            delivery_catch_up_seconds=env.number(
                "DELIVERY_CATCH_UP_SECONDS", 30.0, minimum=0.1, maximum=3600.0
            ),
            git_host_allowlist=env.allowlist("GIT_HOST_ALLOWLIST"),
            graphiql=env.boolean("GRAPHIQL", not production),
            log_level=env.choice("LOG_LEVEL", ("DEBUG", "INFO", "WARNING", "ERROR"), "INFO", upper=True),
            http_timeout_seconds=env.number("HTTP_TIMEOUT_SECONDS", 10.0, minimum=0.1, maximum=300.0),
            prometheus_multiproc_dir=env.directory("PROMETHEUS_MULTIPROC_DIR"),
            metrics_port=env.integer_or_none("METRICS_PORT", minimum=1, maximum=65535),
            max_integrations_per_user=env.integer("MAX_INTEGRATIONS_PER_USER", 50, minimum=1, maximum=10_000),
            max_upstream_work_per_request=env.integer(
                "MAX_UPSTREAM_WORK_PER_REQUEST", 60, minimum=1, maximum=100_000
            ),
            max_concurrent_upstream_per_user=env.integer(
                "MAX_CONCURRENT_UPSTREAM_PER_USER", 40, minimum=1, maximum=1_000
            ),
            traces_exporters=env.traces_exporters(),
        )
        if settings.auth_jwt_secret and settings.auth_jwks_url:
            raise ConfigurationError("AUTH_JWT_SECRET and AUTH_JWKS_URL: set one of them, not both")
        if settings.metrics_port is not None and settings.metrics_port == settings.port:
            raise ConfigurationError(f"METRICS_PORT: must differ from PORT ({settings.port})")
        if settings.auth_jwks_url and not (settings.auth_issuer and settings.auth_audience):
            raise ConfigurationError("AUTH_ISSUER and AUTH_AUDIENCE must be set together with AUTH_JWKS_URL")
        if not is_dotcom(settings.github_url) and is_dotcom(settings.github_api_url):
            # Tokens of a GitHub Enterprise would go to github.com's API (and be refused, or worse).
            raise ConfigurationError(
                f"GITHUB_API_URL: {settings.github_api_url} is github.com's API but GITHUB_URL is "
                f"{settings.github_url}; unset GITHUB_API_URL to use {github_api_url_for(settings.github_url)}"
            )
        if settings.github_app_slug and not settings.github_oauth:
            raise ConfigurationError(
                "GITHUB_APP_SLUG needs GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET (the app's)"
            )
        if production:
            missing = [
                name
                for name, value in (
                    ("MONGODB_URI", settings.mongodb_uri),
                    ("ENCRYPTION_KEYS", settings.encryption_keys),
                    ("AUTH_JWT_SECRET or AUTH_JWKS_URL", settings.auth_jwt_secret or settings.auth_jwks_url),
                )
                if not value
            ]
            if missing:
                raise ConfigurationError(
                    f"{', '.join(missing)}: required with APP_ENV=production "
                    "(no generated secrets and no embedded database in production)"
                )
        return settings


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """``Settings.from_env`` plus, in development only, generated secrets kept in ``DATA_DIR``."""
    settings = Settings.from_env(environ)
    if settings.production:
        return settings
    return with_development_secrets(settings)


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


class _Env:
    """Reads one variable at a time and explains what is wrong with it."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def optional(self, name: str) -> str | None:
        value = self._environ.get(name, "").strip()
        return value or None

    def secret_text(self, name: str) -> str | None:
        """``name``, or the content of the file ``name_FILE`` names (one trailing newline dropped).

        Errors name the variable and the file, never what the file holds.
        """
        value = self.optional(name)
        path = self.optional(f"{name}_FILE")
        if path is None:
            return value
        if value is not None:
            raise ConfigurationError(f"{name} and {name}_FILE: set one of them, not both")
        try:
            with open(path, "rb") as handle:
                data = handle.read(MAX_SECRET_FILE_BYTES + 1)
        except OSError as exc:
            raise ConfigurationError(
                f"{name}_FILE: {path!r} cannot be read ({exc.strerror or type(exc).__name__})"
            ) from None
        if len(data) > MAX_SECRET_FILE_BYTES:
            raise ConfigurationError(f"{name}_FILE: {path!r} is larger than {MAX_SECRET_FILE_BYTES} bytes")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:  # its message quotes a byte of the file
            raise ConfigurationError(f"{name}_FILE: {path!r} is not UTF-8 text") from None
        text = text.removesuffix("\n").removesuffix("\r")
        if not text.strip():
            raise ConfigurationError(f"{name}_FILE: {path!r} is empty")
        return text

    def text(self, name: str, default: str) -> str:
        return self.optional(name) or default

    def choice(self, name: str, options: tuple[str, ...], default: str, *, upper: bool = False) -> str:
        value = self.optional(name)
        if value is None:
            return default
        value = value.upper() if upper else value.lower()
        if value not in options:
            raise ConfigurationError(f"{name}: must be one of {', '.join(options)}, not {value!r}")
        return value

    def integer(self, name: str, default: int, *, minimum: int, maximum: int) -> int:
        value = self.optional(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise ConfigurationError(f"{name}: must be a whole number, not {value!r}") from None
        if not minimum <= number <= maximum:
            raise ConfigurationError(f"{name}: must be between {minimum} and {maximum}, not {number}")
        return number

    def integer_or_none(self, name: str, *, minimum: int, maximum: int) -> int | None:
        return (
            None if self.optional(name) is None else self.integer(name, 0, minimum=minimum, maximum=maximum)
        )

    def number(self, name: str, default: float, *, minimum: float, maximum: float) -> float:
        value = self.optional(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            raise ConfigurationError(f"{name}: must be a number, not {value!r}") from None
        if not minimum <= number <= maximum:
            raise ConfigurationError(f"{name}: must be between {minimum} and {maximum}, not {number}")
        return number

    def directory(self, name: str) -> Path | None:
        value = self.optional(name)
        if value is None:
            return None
        path = Path(value)
        if path.exists() and not path.is_dir():
            raise ConfigurationError(f"{name}: {value!r} exists and is not a directory")
        return path

    def boolean(self, name: str, default: bool) -> bool:
        value = self.optional(name)
        if value is None:
            return default
        lowered = value.lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        raise ConfigurationError(f"{name}: must be true or false, not {value!r}")

    def secret(self, name: str, *, min_length: int) -> Secret | None:
        value = self.secret_text(name)
        if value is None:
            return None
        if len(value) < min_length:
            raise ConfigurationError(f"{name}: must be at least {min_length} characters long")
        return Secret(value)

    def url(self, name: str, default: str | None, *, strip_slash: bool = False) -> str | None:
        value = self.optional(name)
        if value is None:
            return default
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ConfigurationError(
                f"{name}: must be an http(s) URL such as https://example.com, not {value!r}"
            )
        if parts.username or parts.password or parts.query or parts.fragment:
            raise ConfigurationError(f"{name}: must not contain credentials, a query or a fragment")
        return value.rstrip("/") if strip_slash else value

    def mongodb_uri(self, name: str) -> Secret | None:
        value = self.secret_text(name)
        if value is None:
            return None
        if not value.startswith(("mongodb://", "mongodb+srv://")):
            # Do not echo the value: it usually holds a password.
            raise ConfigurationError(f"{name}: must start with mongodb:// or mongodb+srv://")
        return Secret(value)

    def database_name(self, name: str, default: str) -> str:
        value = self.text(name, default)
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,63}", value):
            raise ConfigurationError(f"{name}: must be 1-63 letters, digits, '_' or '-', not {value!r}")
        return value

    def encryption_keys(self, name: str) -> tuple[EncryptionKey, ...]:
        value = self.secret_text(name)
        if value is None:
            return ()
        keys: list[EncryptionKey] = []
        for position, item in enumerate(value.split(","), start=1):
            kid, sep, encoded = item.strip().partition(":")
            if not sep or not _KID.match(kid):
                raise ConfigurationError(
                    f"{name}: entry {position} must look like 'kid:base64-of-32-bytes' "
                    "(kid: letters, digits, '_', '-', '.')"
                )
            try:
                raw = base64.b64decode(encoded.strip(), validate=True)
            except (binascii.Error, ValueError):
                raise ConfigurationError(f"{name}: key {kid!r} is not valid base64") from None
            if len(raw) != 32:
                raise ConfigurationError(f"{name}: key {kid!r} must be 32 bytes (AES-256), not {len(raw)}")
            if any(k.kid == kid for k in keys):
                raise ConfigurationError(f"{name}: key id {kid!r} appears twice")
            keys.append(EncryptionKey(kid, Secret(encoded.strip())))
        return tuple(keys)

    def origins(self, name: str) -> tuple[str, ...]:
        value = self.optional(name)
        if value is None:
            return ()
        origins: list[str] = []
        for item in (part.strip() for part in value.split(",")):
            if not item:
                continue
            parts = urlsplit(item)
            if parts.scheme not in {"http", "https"} or not parts.hostname or parts.path not in {"", "/"}:
                raise ConfigurationError(f"{name}: {item!r} is not an origin like https://app.example.com")
            if parts.query or parts.fragment or parts.username:
                raise ConfigurationError(f"{name}: {item!r} is not an origin like https://app.example.com")
            origins.append(f"{parts.scheme}://{parts.netloc.lower()}")
        return tuple(origins)

    def oauth_client(self, id_name: str, secret_name: str) -> OAuthClient | None:
        client_id = self.optional(id_name)
        client_secret = self.secret_text(secret_name)
        if client_id is None and client_secret is None:
            return None
        if client_id is None or client_secret is None:
            raise ConfigurationError(f"{id_name} and {secret_name}: set both or neither")
        return OAuthClient(client_id, Secret(client_secret))

    def github_app(self, id_name: str, key_name: str) -> GitHubAppCredentials | None:
        app_id = self.optional(id_name)
        pem = self.secret_text(key_name)
        if app_id is None and pem is None:
            return None
        if app_id is None or pem is None:
            raise ConfigurationError(f"{id_name} and {key_name}: set both or neither")
        if not app_id.isdigit():
            raise ConfigurationError(f"{id_name}: must be the app's numeric id, not {app_id!r}")
        # A PEM put in one line of an env file keeps its line breaks as "\n".
        pem = pem.replace("\\n", "\n")
        try:
            key = serialization.load_pem_private_key(pem.encode(), password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            # Never echo the value: it is a private key.
            raise ConfigurationError(
                f"{key_name}: must be the app's private key in PEM format, as GitHub downloads it"
            ) from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ConfigurationError(f"{key_name}: must be an RSA private key (GitHub Apps sign with RS256)")
        return GitHubAppCredentials(app_id, Secret(pem))

    def slug(self, name: str) -> str | None:
        value = self.optional(name)
        if value is not None and not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,99}", value):
            raise ConfigurationError(f"{name}: must be the app's URL slug (lowercase letters, digits, '-')")
        return value

    def traces_exporters(self) -> tuple[str, ...]:
        """``OTEL_TRACES_EXPORTER`` as the OpenTelemetry SDK reads it, except that unset means none."""
        disabled = self.boolean("OTEL_SDK_DISABLED", False)
        value = (self.optional("OTEL_TRACES_EXPORTER") or "none").lower()
        names = [name for name in (part.strip() for part in value.split(",")) if name and name != "none"]
        for name in names:
            if name not in TRACE_EXPORTERS:
                raise ConfigurationError(
                    f"OTEL_TRACES_EXPORTER: must be otlp, console or none (comma-separated), not {name!r}"
                )
        for variable in ("OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"):
            protocol = self.optional(variable)
            if protocol is not None and protocol != "http/protobuf":
                raise ConfigurationError(f"{variable}: only http/protobuf is installed, not {protocol!r}")
        if disabled or not names:
            return ()
        if not all(_installed(module) for module in TRACING_MODULES):
            raise ConfigurationError(
                "OTEL_TRACES_EXPORTER: tracing needs the otel extra, which is not installed "
                "(git-integrations[otel]; the README's section Traces says how to build an image with it)"
            )
        return tuple(dict.fromkeys(names))

    def allowlist(self, name: str) -> tuple[str, ...]:
        """The entries as written (lower case); each is checked by the guard's own parser."""
        value = self.optional(name)
        if value is None:
            return ()
        entries = tuple(item for item in (part.strip().lower() for part in value.split(",")) if item)
        for item in entries:
            parse_allowlist_entry(item)  # raises ConfigurationError naming the variable
        return entries


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False
