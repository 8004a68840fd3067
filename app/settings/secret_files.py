"""Secrets read from files (``X_FILE``): Kubernetes mounts Secrets as files, one value a file."""

from __future__ import annotations

from app.domain.errors import ConfigurationError

# A secret file larger than this is not a secret file (a PEM private key is under 4 KiB).
MAX_SECRET_FILE_BYTES = 64 * 1024


def read_secret_file(name: str, path: str) -> str:
    """The content of the file ``path`` that ``name_FILE`` names, with one trailing newline dropped.

    Errors name the variable and the file, never what the file holds.
    """
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
