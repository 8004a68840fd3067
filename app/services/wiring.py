"""The collaborators the use cases need, built once per process in ``app.main``'s lifespan."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from app.providers.registry import GitHosts
from app.security.auth import Authenticator
from app.settings import Settings
from app.storage.integrations import IntegrationRepository
from app.storage.mongo import Database


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Services:
    settings: Settings
    database: Database
    integrations: IntegrationRepository
    hosts: GitHosts
    authenticator: Authenticator
    clock: Callable[[], datetime] = field(default=utc_now)
