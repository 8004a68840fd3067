"""The ``Settings`` of a process, ``Settings.from_env`` and the variables it reads.

``from_env`` reads the variables of the design's configuration table (each through
``app.settings.reader``) and checks what only holds across variables; ``APP_ENV=production``
refuses generated secrets and the embedded database.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from app.domain.errors import ConfigurationError
from app.hosts.github.addresses import api_url_for as github_api_url_for
from app.hosts.github.addresses import is_dotcom
from app.settings.reader import EnvironmentReader
from app.settings.values import EncryptionKey, GitHubAppCredentials, OAuthClient, Secret

# The variables that hold secrets: each may also be read from the file that ``<name>_FILE`` names.
SECRET_VARIABLES = (
    "MONGODB_URI",
    "ENCRYPTION_KEYS",
    "AUTH_JWT_SECRET",
    "GITHUB_CLIENT_SECRET",
    "GITLAB_CLIENT_SECRET",
    "GITHUB_APP_PRIVATE_KEY",
)
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
        env = EnvironmentReader(os.environ if environ is None else environ)
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
