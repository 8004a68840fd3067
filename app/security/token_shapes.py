"""What a GitHub or GitLab token looks like: the one definition every safeguard uses.

A token must never reach a response, a log line or an exception message, nor be sent to a host it
was not made for. Several places therefore have to recognise one: the host field (a token pasted
there by mistake), messages hosts send back (shown to users only when nothing in them looks like a
credential), and the log filter of last resort. They all use the prefixes below.

Sources: GitHub "About authentication to GitHub" (token prefixes ``ghp_``, ``github_pat_``, ``gho_``,
``ghu_``, ``ghs_``, ``ghr_``); GitLab "Token overview" (``glpat-``, ``gldt-``, ``glrt-``, ``gloas-``,
``glptt-``, ``glsoat-``, ``glcbt-``, ``glimt-``, ``glagent-``, ``glffct-``, ``glft-``, ``gltst-``,
``glwt-``, ``glrtr-``). An instance can change its ``glpat-`` prefix, so messages are also refused
for anything shaped like a GitLab prefix, and for long hexadecimal strings (legacy 40-hex GitHub
tokens, OAuth secrets).
"""

from __future__ import annotations

import re

GITHUB_PREFIXES = ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_")
GITLAB_PREFIXES = tuple(
    f"{name}-"
    for name in (
        "glpat", "gldt", "glrt", "gloas", "glptt", "glsoat", "glcbt", "glimt", "glagent", "glffct",
        "glft", "gltst", "glwt", "glrtr",
    )
)  # fmt: skip

_GITHUB = "|".join(re.escape(prefix) for prefix in GITHUB_PREFIXES)
_GITLAB = "|".join(re.escape(prefix) for prefix in GITLAB_PREFIXES)
_PREFIX = re.compile(f"{_GITHUB}|{_GITLAB}", re.IGNORECASE)
# In text: a known prefix, anything shaped like a GitLab prefix, or a long hexadecimal string.
_CREDENTIAL = re.compile(f"{_GITHUB}|{_GITLAB}|gl[a-z]{{2,5}}-|\\b[0-9a-fA-F]{{32,}}\\b")
# Whole tokens (a prefix and at least 8 more characters) and bearer-style credentials, for redaction.
_WHOLE_TOKEN = re.compile(
    f"(?:{_GITHUB})[A-Za-z0-9_]{{8,}}|(?:{_GITLAB})[A-Za-z0-9_\\-]{{8,}}"
    r"|(?i:bearer|token|private-token)[\s:=]+[A-Za-z0-9_\-\.=]{8,}"
)

REDACTED = "[redacted]"


def starts_like_token(text: str) -> bool:
    """Whether ``text`` begins with a token prefix (a token typed where a host name belongs)."""
    return _PREFIX.match(text) is not None


def contains_credential(text: str) -> bool:
    """Whether anything in ``text`` looks like a credential: such text is never shown to anyone."""
    return _CREDENTIAL.search(text) is not None


def redact(text: str) -> str:
    """``text`` with every token and bearer credential in it blanked."""
    return _WHOLE_TOKEN.sub(REDACTED, text)
