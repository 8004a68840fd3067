"""Reading the environment one variable at a time: each value parsed and checked, each error naming the
variable and what is wrong with it (never a secret's value)."""

from __future__ import annotations

import base64
import binascii
import importlib.util
import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from app.domain.errors import ConfigurationError
from app.net.allowlist import parse_entry as parse_allowlist_entry
from app.settings.secret_files import read_secret_file
from app.settings.values import EncryptionKey, GitHubAppCredentials, OAuthClient, Secret

TRACE_EXPORTERS = ("otlp", "console")
# What `OTEL_TRACES_EXPORTER` needs installed: the `otel` extra.
TRACING_MODULES = (
    "opentelemetry.sdk",
    "opentelemetry.exporter.otlp.proto.http",
    "opentelemetry.instrumentation.asgi",
    "opentelemetry.instrumentation.httpx",
    "opentelemetry.instrumentation.pymongo",
)
_KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class EnvironmentReader:
    """Reads one variable at a time and explains what is wrong with it."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def optional(self, name: str) -> str | None:
        value = self._environ.get(name, "").strip()
        return value or None

    def secret_text(self, name: str) -> str | None:
        """``name``, or the content of the file ``name_FILE`` names (``read_secret_file``)."""
        value = self.optional(name)
        path = self.optional(f"{name}_FILE")
        if path is None:
            return value
        if value is not None:
            raise ConfigurationError(f"{name} and {name}_FILE: set one of them, not both")
        return read_secret_file(name, path)

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
            if not sep or not _KEY_ID.match(kid):
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
