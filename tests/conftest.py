"""Shared fixtures: one embedded SecantusDB for the session, a fresh database per test, the app."""

from __future__ import annotations

import base64
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from app.composition import Seams
from app.security.auth import issue_development_token
from app.settings.model import Settings
from app.settings.values import EncryptionKey, Secret
from app.storage.mongo import EmbeddedMongo
from tests import harness
from tests.harness import ServedApp

JWT_SECRET = "test-secret-" + "x" * 40
KEY_A = base64.b64encode(b"A" * 32).decode()
KEY_B = base64.b64encode(b"B" * 32).decode()


@pytest.fixture(scope="session")
def mongo_uri() -> Iterator[str]:
    """A real MongoDB wire-protocol server (SecantusDB, in memory), started once for the session."""
    if os.environ.get("TEST_MONGODB_URI"):
        yield os.environ["TEST_MONGODB_URI"]
        return
    with EmbeddedMongo(":memory:") as embedded:
        yield embedded.uri


@pytest.fixture
def settings(mongo_uri: str, tmp_path: Any) -> Settings:
    return Settings(
        mongodb_uri=Secret(mongo_uri),
        mongodb_database=f"test_{uuid.uuid4().hex[:12]}",
        data_dir=tmp_path,
        encryption_keys=(EncryptionKey("a", Secret(KEY_A)),),
        auth_jwt_secret=Secret(JWT_SECRET),
        frontend_origins=("https://app.example.com",),
        git_host_allowlist=(),
    )


def token_for(settings: Settings, user: str) -> str:
    return issue_development_token(settings, user)


class GraphQLTestClient:
    """Posts GraphQL documents to the app the way a browser would."""

    def __init__(self, http: httpx.AsyncClient, settings: Settings) -> None:
        self.http = http
        self.settings = settings
        self.responses: list[httpx.Response] = []

    async def execute(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        user: str | None = "alice",
        headers: Any = None,
    ) -> dict[str, Any]:
        request_headers = dict(headers or {})
        if user is not None:
            request_headers["Authorization"] = f"Bearer {token_for(self.settings, user)}"
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=request_headers
        )
        self.responses.append(response)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


@contextlib.asynccontextmanager
async def running_app(
    settings: Settings,
    upstream: httpx.AsyncClient | None = None,
    resolver: Any = None,
    seams: Seams | None = None,
) -> AsyncIterator[ServedApp]:
    """The app, its lifespan running; ``upstream`` and ``resolver`` (or any ``seams``) replace its parts."""
    seams = seams or Seams()
    seams = replace(seams, http=upstream or seams.http, resolver=resolver or seams.resolver)
    async with harness.running_app(settings, seams) as app:
        yield app


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Any]:
    async with httpx.AsyncClient() as upstream, running_app(settings, upstream) as application:
        yield application


@pytest.fixture
async def client(app: Any, settings: Settings) -> AsyncIterator[GraphQLTestClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield GraphQLTestClient(http, settings)


def with_keys(settings: Settings, *keys: tuple[str, str]) -> Settings:
    return replace(settings, encryption_keys=tuple(EncryptionKey(kid, Secret(k)) for kid, k in keys))
