"""Nothing acknowledged is lost: real processes killed with SIGKILL, again and again, and stopped with SIGTERM.

- Connects go through the real API of ``python -m app serve`` to a fake GitHub on loopback, three at a
  time, and the embedded database (or the service) is killed while they are in flight, five times per
  test. After each restart every connect that was answered ``Integration`` must be listed, with the
  token that was connected.
- ``rotate-keys`` and a login token's refresh are killed part way: every stored token still decrypts.
- SIGTERM of ``serve`` (and of ``rotate-keys``) stops its embedded database through the command's own
  shutdown, before the command exits.

The processes and the kill loop are ``tests.processes``; docs/reliability.md ("Durability") has the
figures (``pytest -s`` prints each report).
"""

from __future__ import annotations

import asyncio
import itertools
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from bson import ObjectId

from app.domain.models import GitProvider, HostEndpoint
from app.security.crypto import TokenCipher
from app.settings.values import EncryptionKey, Secret
from app.storage.integration_secrets import binding_for, binding_of
from app.storage.integrations import SECRET_FIELDS
from tests.conftest import KEY_A, KEY_B
from tests.fakes.github import FakeGitHub
from tests.fakes.server import run_in_thread
from tests.harness import free_port
from tests.oauth_support import APP_SLUG, COMPLETE_OAUTH, CONNECT_OAUTH, RETURN_TO, VERIFY, handed_on
from tests.processes import (
    DatabaseProcess,
    GraphQLCaller,
    ServiceProcess,
    acknowledged_writes_survive,
    app_command,
    database_client,
    embedded_database,
    is_gone,
    service_env,
    sigkill,
    unavailable,
)

pytestmark = pytest.mark.uvicorn

ACCOUNTS = 60
DATABASE = "git_integrations"  # the service's default MONGODB_DATABASE
RING = [EncryptionKey("a", Secret(KEY_A)), EncryptionKey("b", Secret(KEY_B))]
CONNECT = """
mutation($token: String!) {
  connectGitToken(input: {provider: GITHUB, token: $token}) { __typename ... on Integration { id } }
}
"""


def classic_token(n: int) -> str:
    return "ghp_" + f"Kill{n % ACCOUNTS:04d}".ljust(36, "0")


@pytest.fixture(scope="module")
def github() -> Iterator[str]:
    """A fake GitHub on loopback with ``ACCOUNTS`` accounts, each with a classic token; its URL."""
    fake = FakeGitHub()
    for n in range(ACCOUNTS):
        fake.add_user(f"user{n}")
        fake.add_classic_token(classic_token(n), f"user{n}", ["repo", "admin:repo_hook"])
    with run_in_thread(fake.app) as url:
        yield url


def github_env(data_dir: Path, url: str, **variables: str) -> dict[str, str]:
    return service_env(data_dir, GITHUB_URL=url, GITHUB_API_URL=url, **variables)


async def connect(caller: GraphQLCaller, n: int) -> str | None:
    """Connect the n-th account's token; its integration id once the API answered ``Integration``."""
    try:
        body = await caller.execute(CONNECT, {"token": classic_token(n)})
    except httpx.TransportError:
        return None  # the service died while answering: not acknowledged
    if unavailable(body):
        return None
    result = body["data"]["connectGitToken"]
    assert result["__typename"] == "Integration", body
    return str(result["id"])


async def listed(caller: GraphQLCaller) -> set[str]:
    body = await caller.execute("{ integrations { id } }")
    assert "errors" not in body, body
    return {integration["id"] for integration in body["data"]["integrations"]}


def stored_tokens(uri: str) -> dict[str, dict[str, str | None]]:
    """Every stored secret, decrypted with the key ring (a ``CipherError`` fails the test), by account login."""
    cipher = TokenCipher(RING)
    found: dict[str, dict[str, str | None]] = {}
    with database_client(uri) as client:
        for doc in client[DATABASE]["integrations"].find({}):
            secrets = doc.get("secrets") or {}
            found[doc["account"]["login"]] = {
                field: cipher.decrypt(secrets[field], binding_of(doc, field)) if secrets.get(field) else None
                for field in SECRET_FIELDS
            }
    return found


def assert_connected_tokens_stored(uri: str) -> None:
    tokens = stored_tokens(uri)
    assert tokens, "nothing stored"
    for login, pair in tokens.items():
        assert pair["accessToken"] == classic_token(int(login.removeprefix("user"))), login


# --- acknowledged connects ------------------------------------------------------------------------


async def test_acknowledged_connects_survive_sigkill_of_the_embedded_database(
    github: str, tmp_path: Path
) -> None:
    with DatabaseProcess(tmp_path / "db") as database:
        env = github_env(tmp_path / "data", github, MONGODB_URI=database.uri)
        with ServiceProcess(env, tmp_path / "serve.log") as service:
            async with httpx.AsyncClient(timeout=30) as http:
                caller = GraphQLCaller(http, service.url)

                def restart() -> None:
                    database.restart()  # same files, same port: the service reconnects by itself
                    service.wait_ready()

                report = await acknowledged_writes_survive(
                    write=lambda n: connect(caller, n),
                    stored=lambda: listed(caller),
                    kill=database.kill,
                    recover=restart,
                )
            assert service.process is not None and service.process.poll() is None, "serve outlived it"
        assert_connected_tokens_stored(database.uri)
    print(report.line("SIGKILL of the embedded database"))
    assert report.kills == 5 and len(report.acknowledged) >= 30
    assert report.lost == [], report
    assert classic_token(0) not in service.log()


async def test_acknowledged_connects_survive_sigkill_of_the_service(github: str, tmp_path: Path) -> None:
    """The service with its own embedded database, as ``make run`` starts it: killed alone (its database
    child then gets the parent-death signal), or together with its database, as a container's OOM kill."""
    env = github_env(tmp_path / "data", github)
    with ServiceProcess(env, tmp_path / "serve.log") as service:
        kills = itertools.cycle([service.kill, service.kill_with_database])
        async with httpx.AsyncClient(timeout=30) as http:
            caller = GraphQLCaller(http, service.url)
            report = await acknowledged_writes_survive(
                write=lambda n: connect(caller, n),
                stored=lambda: listed(caller),
                kill=lambda: next(kills)(),
                recover=service.restart,
            )
        assert_connected_tokens_stored(service.database_uri())
    print(report.line("SIGKILL of the service"))
    assert report.kills == 5 and len(report.acknowledged) >= 30
    assert report.lost == [], report


async def test_sigterm_stops_the_embedded_database_through_the_services_own_shutdown(
    github: str, tmp_path: Path
) -> None:
    env = github_env(tmp_path / "data", github)
    with ServiceProcess(env, tmp_path / "serve.log") as service:
        async with httpx.AsyncClient(timeout=30) as http:
            acknowledged = await connect(GraphQLCaller(http, service.url), 0)
        database_pid = service.database_pid
        assert acknowledged is not None and database_pid is not None
        started = time.monotonic()
        exit_code = service.terminate()
        took = time.monotonic() - started
        # serve waited for its child: by the time serve is gone, so is the database (the parent-death
        # signal would only reach it now, and an orphan would still be closing its files).
        assert is_gone(database_pid), "the embedded database outlived serve"
    assert exit_code == 0, service.log()[-2000:]
    assert took < 15
    assert '"embedded database stopped"' in service.log() and '"exit_code": 0' in service.log()
    with DatabaseProcess(tmp_path / "data" / "db") as reopened:
        assert_connected_tokens_stored(reopened.uri)


# --- work killed part way -------------------------------------------------------------------------

GITHUB = HostEndpoint(GitProvider.GITHUB, "github.com", "https://github.com", "https://api.github.com")

ROTATED_SECRETS = 2 * 600  # 600 integrations, each with an access and a refresh token


def seed_under_old_key(uri: str) -> list[ObjectId]:
    """600 integration documents whose tokens are encrypted under key ``b``, as rotate-keys finds them."""
    old = TokenCipher([RING[1]])
    ids = [ObjectId() for _ in range(ROTATED_SECRETS // 2)]
    documents = [
        {
            "_id": oid,
            "owner": "alice",
            "provider": "GITHUB",
            "host": "github.com",
            "apiUrl": "https://api.github.com",
            "account": {"login": f"user{i}"},
            "secrets": {
                field: old.encrypt(expected_secret(i, field), binding_for(str(oid), "alice", GITHUB, field))
                for field in SECRET_FIELDS
            },
        }
        for i, oid in enumerate(ids)
    ]
    with database_client(uri) as client:
        client[DATABASE]["integrations"].insert_many(documents)
    return ids


def expected_secret(i: int, field: str) -> str:
    return f"{'ghu' if field == 'accessToken' else 'ghr'}_{i:036d}"


def rotated_count(uri: str) -> int:
    """Secrets under the new key ``a``, after checking that every secret decrypts to what was stored."""
    cipher = TokenCipher(RING)
    rotated = 0
    with database_client(uri) as client:
        for doc in client[DATABASE]["integrations"].find({}):
            i = int(doc["account"]["login"].removeprefix("user"))
            for field in SECRET_FIELDS:
                ciphertext = doc["secrets"][field]
                plain = cipher.decrypt(ciphertext, binding_of(doc, field))
                assert plain == expected_secret(i, field)
                rotated += cipher.key_id_of(ciphertext) == "a"
    return rotated


def wait_until_rotated(uri: str, oid: ObjectId, process: Any) -> None:
    """Until the access token of ``oid`` is under key ``a`` (rotate-keys has got that far)."""
    cipher = TokenCipher(RING)
    with database_client(uri) as client:
        collection = client[DATABASE]["integrations"]
        deadline = time.monotonic() + 60
        while process.poll() is None and time.monotonic() < deadline:
            doc = collection.find_one({"_id": oid}, {"secrets.accessToken": 1})
            if cipher.key_id_of(doc["secrets"]["accessToken"]) == "a":
                return
            time.sleep(0.002)
    raise AssertionError("rotate-keys ended or stalled before the kill")


def test_rotate_keys_killed_part_way_leaves_every_token_decryptable(tmp_path: Path) -> None:
    with DatabaseProcess(tmp_path / "db") as database:
        ids = seed_under_old_key(database.uri)
        env = service_env(tmp_path / "data", MONGODB_URI=database.uri, ENCRYPTION_KEYS=f"a:{KEY_A},b:{KEY_B}")
        progress = [0]
        for position in (30, 250, 500):  # die just after this integration's tokens were re-encrypted
            process = app_command("rotate-keys", env=env, log_path=tmp_path / "rotate.log")
            wait_until_rotated(database.uri, ids[position], process)
            sigkill(process)
            progress.append(rotated_count(database.uri))  # every secret decrypts, under a or b
        finished = app_command("rotate-keys", env=env, log_path=tmp_path / "rotate.log")
        assert finished.wait(timeout=120) == 0, (tmp_path / "rotate.log").read_text()[-2000:]
        assert rotated_count(database.uri) == ROTATED_SECRETS
        with database_client(database.uri) as client:
            new_only = TokenCipher([RING[0]])  # the old key can now be removed
            for doc in client[DATABASE]["integrations"].find({}):
                for field in SECRET_FIELDS:
                    new_only.decrypt(doc["secrets"][field], binding_of(doc, field))
    print(f"rotate-keys SIGKILLed 3 times: {progress[1:]} of {ROTATED_SECRETS} secrets re-encrypted")
    assert 0 < progress[1] < progress[2] < progress[3] < ROTATED_SECRETS, "each kill landed part way"


def test_sigterm_of_rotate_keys_stops_its_embedded_database_and_leaves_every_token_decryptable(
    tmp_path: Path,
) -> None:
    with DatabaseProcess(tmp_path / "data" / "db") as database:
        ids = seed_under_old_key(database.uri)
        database.embedded.stop()
    env = service_env(tmp_path / "data", ENCRYPTION_KEYS=f"a:{KEY_A},b:{KEY_B}")
    process = app_command("rotate-keys", env=env, log_path=tmp_path / "rotate.log")
    try:
        database_pid, uri = embedded_database(process.pid)
        wait_until_rotated(uri, ids[100], process)
        process.send_signal(signal.SIGTERM)
        exit_code = process.wait(timeout=30)
        assert is_gone(database_pid), "rotate-keys stopped its database before exiting"
    finally:
        sigkill(process)
    assert exit_code == 1, "it did not finish"
    assert "stopped by SIGTERM after re-encrypting" in (tmp_path / "rotate.log").read_text()
    with DatabaseProcess(tmp_path / "data" / "db") as reopened:
        assert 0 < rotated_count(reopened.uri) < ROTATED_SECRETS  # and every secret decrypts


TOKEN_ENDPOINT = "/login/oauth/access_token"


async def login(http: httpx.AsyncClient, caller: GraphQLCaller) -> str:
    """Connect octocat with "Connect with GitHub" (a GitHub App login whose token is due for renewal)."""
    started = await caller.execute(CONNECT_OAUTH, {"input": {"provider": "GITHUB", "returnTo": RETURN_TO}})
    # The browser: the installation, the service's callback, GitHub's authorization, the callback again.
    url = started["data"]["connectGitOAuth"]["authorizationUrl"]
    while not url.startswith(RETURN_TO.split("?")[0]):
        response = await http.get(url)
        assert response.status_code == 302, response.text
        url = response.headers["location"]
    completed = await caller.execute(COMPLETE_OAUTH, {"input": handed_on(response)})
    integration_id: str = completed["data"]["completeGitOAuth"]["id"]
    return integration_id


async def wait_for(condition: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the refresh did not get there"
        await asyncio.sleep(0.002)


@pytest.mark.parametrize(
    "moment",
    ["while the host answers", "as the host has answered", "after the new pair was stored"],
)
async def test_a_service_killed_in_the_middle_of_a_token_refresh_leaves_every_token_decryptable(
    moment: str, tmp_path: Path
) -> None:
    fake = FakeGitHub(app_slug=APP_SLUG)
    fake.add_user("octocat", "The Octocat")
    fake.code_token_lifetime = 30  # due at once: the service renews tokens a minute before expiry
    port = free_port()
    fake.callback_urls = [f"http://127.0.0.1:{port}/oauth/callback"]
    fake.setup_url = fake.callback_urls[0]
    with run_in_thread(fake.app) as url, DatabaseProcess(tmp_path / "db") as database:
        env = github_env(
            tmp_path / "data", url, MONGODB_URI=database.uri, PUBLIC_URL=f"http://127.0.0.1:{port}",
            FRONTEND_ORIGINS="https://app.example.com", GITHUB_APP_SLUG=APP_SLUG,
            GITHUB_CLIENT_ID=fake.client_id, GITHUB_CLIENT_SECRET=fake.client_secret,
        )  # fmt: skip
        with ServiceProcess(env, tmp_path / "serve.log", port=port) as service:
            async with httpx.AsyncClient(timeout=30) as http:
                caller = GraphQLCaller(http, service.url)
                integration_id = await login(http, caller)
                [old] = stored_tokens(database.uri).values()
                refreshes, users = fake.refresh_count, fake.count(path_prefix="/user")
                token_requests = fake.count(path_prefix=TOKEN_ENDPOINT)
                if moment == "while the host answers":
                    fake.hang_next(1, path_prefix=TOKEN_ENDPOINT)
                if moment == "after the new pair was stored":
                    fake.hang_next(1, path_prefix="/user")  # the verification that follows the refresh
                verifying = asyncio.ensure_future(caller.execute(VERIFY, {"id": integration_id}))
                if moment == "while the host answers":
                    await wait_for(lambda: fake.count(path_prefix=TOKEN_ENDPOINT) > token_requests)
                elif moment == "as the host has answered":
                    await wait_for(lambda: fake.refresh_count > refreshes)
                else:
                    await wait_for(lambda: fake.count(path_prefix="/user") > users)
                service.kill()
                with pytest.raises(httpx.TransportError):
                    await verifying
                service.restart()
                [after] = stored_tokens(database.uri).values()  # every secret decrypts, or this fails
    issued = fake.refresh_tokens[after["refreshToken"] or ""]
    assert issued.access_token == after["accessToken"], "one pair the host issued together, never a mix"
    if moment == "while the host answers":
        assert after == old, "the service never heard of a new pair: the old one stays"
    elif moment == "after the new pair was stored":
        assert fake.refresh_count == refreshes + 1
        assert after != old and not issued.used, "the stored pair is the live one"
    else:
        assert fake.refresh_count == refreshes + 1
        assert after == old or not issued.used
