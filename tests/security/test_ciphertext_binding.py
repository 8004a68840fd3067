"""Issue 11, item 5: a ciphertext follows its destination, not just its record.

The associated data used to bind a token's ciphertext to its record id and field only. Someone with
write access to the database (not to ``ENCRYPTION_KEYS``) changed an integration's ``apiUrl`` and the
service sent the victim's token to their server at the next listing. Now the binding covers owner,
provider, host and the API URL stored at connect time: a record pointed elsewhere no longer decrypts,
the integration answers NEEDS_RECONNECT and nothing is sent. Ciphertexts written the old way are
migrated by ``rotate-keys``; a host that really moved is moved by the operator (``move-host``).
"""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import pytest
from bson import ObjectId
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from app.domain.errors import NeedsReconnectError, NotFoundError, ServiceUnavailableError
from app.domain.models import AuthMethod, Credentials
from app.security.crypto import TokenCipher
from app.settings.model import Settings
from app.settings.values import EncryptionKey, Secret
from app.storage.integrations import IntegrationRepository
from app.storage.links import LinkStore
from app.storage.mongo import Database
from tests.api.test_cli import run_cli
from tests.fakes import scenarios
from tests.fakes.gitlab import FakeGitLab
from tests.fakes.server import run_in_thread
from tests.oauth_support import Service, open_service
from tests.storage.test_integrations_repository import GITHUB, NOW, verified
from tests.storage.test_link_storage import REPOSITORY

TOKEN = scenarios.GITLAB_PERSONAL_TOKEN
CONNECT = """mutation($input: ConnectGitTokenInput!) { connectGitToken(input: $input) {
  __typename ... on Integration { id } ... on Error { code message } } }"""
LIST = "query($id: ID!) { integration(id: $id) { repositories(first: 5) { totalCount } } }"
VERIFY = """mutation($id: ID!) { verifyGitIntegration(input: {id: $id}) {
  __typename ... on Integration { status } ... on Error { code } } }"""


@dataclass
class GitLabs:
    real: FakeGitLab
    real_url: str
    attacker: FakeGitLab
    attacker_url: str


@pytest.fixture
def gitlabs() -> Iterator[GitLabs]:
    real = scenarios.default_gitlab(FakeGitLab(), repositories=2)
    attacker = scenarios.default_gitlab(FakeGitLab(), repositories=2)  # answers like GitLab, keeps tokens
    with run_in_thread(real.app) as real_url, run_in_thread(attacker.app) as attacker_url:
        yield GitLabs(real, real_url, attacker, attacker_url)


@pytest.fixture
async def service(settings: Settings, gitlabs: GitLabs) -> AsyncIterator[Service]:
    async with open_service(replace(settings, git_host_allowlist=("127.0.0.1",))) as opened:
        yield opened


def tokens_seen(fake: FakeGitLab) -> int:
    return len(fake.requests)


@pytest.mark.parametrize(
    ("changed", "caller"),
    [
        ("apiUrl", "alice"),  # pointed at another server
        ("host, webUrl, apiUrl", "alice"),  # the whole record moved there
        ("owner", "mallory"),  # given to another platform user
    ],
)
async def test_a_record_changed_in_the_database_no_longer_sends_its_token_anywhere(
    service: Service, gitlabs: GitLabs, changed: str, caller: str
) -> None:
    connected = await service.execute(
        CONNECT, {"input": {"provider": "GITLAB", "token": TOKEN, "host": gitlabs.real_url}}
    )
    integration_id = connected["connectGitToken"]["id"]
    attacker = gitlabs.attacker_url
    edits = {
        "apiUrl": {"apiUrl": f"{attacker}/api/v4"},
        "host, webUrl, apiUrl": {
            "host": attacker.removeprefix("http://"),
            "webUrl": attacker,
            "apiUrl": f"{attacker}/api/v4",
        },
        "owner": {"owner": "mallory"},
    }[changed]
    await service.db["integrations"].update_one({}, {"$set": edits})
    real_before = len(gitlabs.real.requests)

    listed = await service.graphql.execute(LIST, {"id": integration_id}, user=caller)
    checked = await service.execute(VERIFY, {"id": integration_id}, user=caller)

    assert gitlabs.attacker.requests == [], "the token went to the attacker's server"
    assert len(gitlabs.real.requests) == real_before, "nothing was sent with it anywhere"
    assert listed["errors"][0]["extensions"]["code"] == "NEEDS_RECONNECT"
    assert "connect it again" in listed["errors"][0]["message"]
    assert checked["verifyGitIntegration"]["status"] == "NEEDS_RECONNECT"
    assert TOKEN not in str(listed) + str(checked)


# --- records written the old way, and hosts that moved ---------------------------------------------

KEY = EncryptionKey("a", Secret(base64.b64encode(b"A" * 32).decode()))


@pytest.fixture
async def database(mongo_uri: str) -> AsyncIterator[Database]:
    db = Database(mongo_uri, f"test_{uuid.uuid4().hex[:12]}")
    await db.ensure_indexes()
    yield db
    await db.client.drop_database(db.db.name)
    await db.close()


def written_the_old_way(plaintext: str, record_id: str, field: str) -> str:
    """``enc:v1:`` as the service wrote it before: AES-GCM bound to record id and field only."""
    nonce = os.urandom(12)
    associated = f"git-integrations|v1|{record_id}|{field}".encode()
    sealed = AESGCM(b"A" * 32).encrypt(nonce, plaintext.encode(), associated)
    return f"enc:v1:a:{base64.urlsafe_b64encode(nonce + sealed).decode()}"


async def old_record(database: Database, account: str, access: str, refresh: str | None) -> str:
    repo = IntegrationRepository(database, TokenCipher([KEY]))
    saved = await repo.save_verified(
        "alice", GITHUB, AuthMethod.OAUTH, verified(account), Credentials(access, refresh), NOW
    )
    record_id = saved.integration.id
    secrets: dict[str, Any] = {
        "accessToken": written_the_old_way(access, record_id, "accessToken"),
        "refreshToken": written_the_old_way(refresh, record_id, "refreshToken") if refresh else None,
    }
    await database.db["integrations"].update_one({"_id": ObjectId(record_id)}, {"$set": {"secrets": secrets}})
    return record_id


async def test_rotate_keys_migrates_records_written_the_old_way(database: Database) -> None:
    first = await old_record(database, "1", "ghu_first", "ghr_first")
    second = await old_record(database, "2", "ghp_second", None)
    repo = IntegrationRepository(database, TokenCipher([KEY]))
    with pytest.raises(ServiceUnavailableError, match="rotate-keys"):
        await repo.get_with_credentials("alice", first)  # never used unmigrated

    assert await repo.rotate_keys() == 3
    assert await repo.rotate_keys() == 0

    found = await repo.get_with_credentials("alice", first)
    assert (
        found is not None and found[1].access_token == "ghu_first" and found[1].refresh_token == "ghr_first"
    )
    found = await repo.get_with_credentials("alice", second)
    assert found is not None and found[1].access_token == "ghp_second"
    raw = await database.db["integrations"].find({}).to_list()
    assert all(doc["secrets"]["accessToken"].startswith("enc:v2:a:") for doc in raw)
    # Migrated, the record is bound to where it points: pointed elsewhere, it no longer decrypts.
    await database.db["integrations"].update_one(
        {"_id": ObjectId(second)}, {"$set": {"apiUrl": "https://evil.example/api/v3"}}
    )
    with pytest.raises(NeedsReconnectError):
        await repo.get_with_credentials("alice", second)


async def test_move_host_re_encrypts_for_the_new_address_and_leaves_other_hosts_alone(
    database: Database, mongo_uri: str
) -> None:
    repo = IntegrationRepository(database, TokenCipher([KEY]))
    old_gitlab = replace(
        GITHUB, provider=GITHUB.provider, host="git.old.example", web_url="https://git.old.example",
        api_url="https://git.old.example/api/v3",
    )  # fmt: skip
    moving = await repo.save_verified(
        "alice", old_gitlab, AuthMethod.ACCESS_TOKEN, verified(), Credentials("ghp_m"), NOW
    )
    staying = await repo.save_verified(
        "alice", GITHUB, AuthMethod.ACCESS_TOKEN, verified("2"), Credentials("ghp_s"), NOW
    )

    result = run_cli(
        "move-host", "--from", "https://git.old.example/", "--to", "https://git.example.com:8443",
        env={"MONGODB_URI": mongo_uri, "MONGODB_DATABASE": database.db.name,
             "ENCRYPTION_KEYS": f"a:{KEY.key.reveal()}"},
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert (
        "moved 1 integration(s) from https://git.old.example to https://git.example.com:8443" in result.stdout
    )
    moved = await repo.get_with_credentials("alice", moving.integration.id)
    assert moved is not None
    assert moved[0].endpoint.host == "git.example.com:8443"
    assert moved[0].endpoint.api_url == "https://git.example.com:8443/api/v3"
    assert moved[1].access_token == "ghp_m"
    kept = await repo.get_with_credentials("alice", staying.integration.id)
    assert kept is not None and kept[0].endpoint == GITHUB and kept[1].access_token == "ghp_s"


async def test_a_link_given_to_another_owner_in_the_database_no_longer_opens(database: Database) -> None:
    """The same binding for a repository link's secrets (webhook secret, deploy key, deploy token)."""
    integrations = IntegrationRepository(database, TokenCipher([KEY]))
    saved = await integrations.save_verified(
        "alice", GITHUB, AuthMethod.ACCESS_TOKEN, verified(), Credentials("ghp_x"), NOW
    )
    links = LinkStore(database, TokenCipher([KEY]))
    reserved = await links.reserve(
        saved.integration, REPOSITORY, "main", holder="h", now=NOW, until=NOW + timedelta(seconds=9)
    )
    await database.db["repository_links"].update_one(
        {"_id": reserved.link.id}, {"$set": {"owner": "mallory"}}
    )

    with pytest.raises(NotFoundError):
        await links.with_secrets("mallory", reserved.link.id)  # the clone credentials' way in
    assert await links.for_delivery(reserved.link.id, deadline_seconds=5) is None
