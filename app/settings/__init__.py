"""Settings from the environment: typed, validated once at start-up, secrets hidden from ``repr``.

``model``: ``Settings``, ``Settings.from_env()`` (fails fast with a ``ConfigurationError`` whose one line
names the variable and what is wrong with it) and the variables it reads (``KNOWN_VARIABLES``);
``reader``: parsing and checking of one variable at a time; ``secret_files``: each secret ``X``
(``SECRET_VARIABLES``) may instead come from a file named by ``X_FILE``; ``values``: ``Secret`` and the
pairs it sits in; ``development_secrets``: with ``APP_ENV=development`` a missing encryption key or JWT
secret is generated once into ``DATA_DIR``. ``load_settings()`` is what a process starts with.

Why not pydantic-settings (issue 14, measured with 2.16.3 on a full port of this module): every rule
here beyond "is an int" (keys, origins, URLs, the allowlist, pairs, production's requirements, derived
defaults, X_FILE) stayed hand-written as validators; its own messages drop the value and half the range
("PORT: Input should be less than or equal to 65535" for "must be between 1 and 65535, not 70000");
it reads ``os.environ`` only (tests and the manifest check pass a mapping); and importing it added
0.4-0.65 s to every start of a process, for 58 fewer lines.
"""

from __future__ import annotations

from collections.abc import Mapping

from app.settings.development_secrets import with_development_secrets
from app.settings.model import Settings


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """``Settings.from_env`` plus, in development only, generated secrets kept in ``DATA_DIR``."""
    settings = Settings.from_env(environ)
    if settings.production:
        return settings
    return with_development_secrets(settings)
