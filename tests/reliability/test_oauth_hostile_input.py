"""Hostile input to "Connect with GitHub": what tests/api/test_oauth_github.py does not already cover.

Already covered there: a replayed state (``test_a_state_is_used_once``), another user's state
(``test_another_users_state_is_refused_without_using_it_up``), an expired or malformed state, a forged
installation id, and ``returnTo`` pointing elsewhere (``test_a_return_to_outside_the_frontend_origins_is_refused``:
``//evil``, ``https://app.example.com@evil``, ``https://app.example.com.evil``, ``javascript:``, backslashes,
header injection). tests/unit/test_oauth_return_to.py has the ``returnTo`` rules one by one.

Here: an authorization code used twice (by its user, or by someone who intercepted it), more ``returnTo``
spellings that browsers read leniently, a callback whose query tries to choose where the browser goes, and
a host error echoed back with hostile content.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlencode, urlsplit

import pytest

from app.storage.oauth_states import state_digest
from tests.oauth_support import (
    COMPLETE_OAUTH,
    RETURN_TO,
    FakeHosts,
    Service,
    fake_hosts,
    handed_on,
    login_settings,
    open_service,
    query_of,
)
from tests.reliability.support import documents, module_settings

START = """mutation($input: ConnectGitOAuthInput!) { connectGitOAuth(input: $input) {
  __typename ... on GitOAuthAuthorization { state } } }"""


@pytest.fixture(scope="module")
def hosts() -> Iterator[FakeHosts]:
    with fake_hosts() as found:
        yield found


@pytest.fixture(scope="module")
async def service(
    mongo_uri: str, tmp_path_factory: pytest.TempPathFactory, hosts: FakeHosts
) -> AsyncIterator[Service]:
    """One service for the module: each test looks only at what it added itself."""
    settings = module_settings(mongo_uri, tmp_path_factory.mktemp("oauth"))
    async with open_service(login_settings(settings, hosts)) as opened:
        yield opened
        await opened.db.client.drop_database(settings.mongodb_database)


async def complete(service: Service, user: str, state: str, code: str) -> dict[str, object]:
    data = await service.execute(COMPLETE_OAUTH, {"input": {"state": state, "code": code}}, user=user)
    result: dict[str, object] = data["completeGitOAuth"]
    return result


# --- a code used twice --------------------------------------------------------------------------


async def test_a_code_used_again_with_a_new_state_is_refused_and_changes_nothing(service: Service) -> None:
    first = await service.start("GITHUB")
    location = await service.visit_host(first["authorizationUrl"])
    code = query_of(location)["code"]
    assert (await complete(service, "alice", first["state"], code))["__typename"] == "Integration"
    stored = await documents(service.db, "integrations")

    second = await service.start("GITHUB")
    again = await complete(service, "alice", second["state"], code)

    assert again["__typename"] == "OAuthExchangeError"
    assert again["reason"] == "bad_verification_code"
    assert code not in str(again)
    assert await documents(service.db, "integrations") == stored, "the first login stays exactly as it was"


async def test_an_intercepted_code_is_useless_with_the_thiefs_own_state(service: Service) -> None:
    alices = await service.start("GITHUB", user="alice")
    code = query_of(await service.visit_host(alices["authorizationUrl"]))["code"]
    mallorys = await service.start("GITHUB", user="mallory")

    through_the_callback = await service.http.get(
        "/oauth/callback?" + urlencode({"state": mallorys["state"], "code": code})
    )
    stolen = await complete(service, "mallory", mallorys["state"], code)  # another PKCE verifier

    assert stolen["__typename"] == "OAuthExchangeError"
    assert through_the_callback.status_code == 302, "handed on to Mallory's returnTo, nothing more"
    assert await service.integrations(user="mallory") == []
    [alices_state] = await documents(service.db, "oauth_states", {"state": state_digest(alices["state"])})
    assert alices_state["usedAt"] is None, "the thief's attempts do not use up alice's sign-in"


# --- where the browser is sent ------------------------------------------------------------------


@pytest.mark.parametrize(
    "return_to",
    [
        "https://app.example.com%2F@evil.example/",
        "https://app.example.com%40evil.example/",
        "https://app.example.com%00.evil.example/",
        "https://app.example.com:443@evil.example/",
        "https://app.example.com./",
        "https://xn--pp-8cd.example.com/",  # a look-alike origin: "app" with a Cyrillic a, as IDNA
        "https://\u0430pp.example.com/",  # the same, as typed
        "https://evil.example/?next=https://app.example.com/",
        "https://evil.example/#https://app.example.com/",
        "https:app.example.com/",
        "https:/app.example.com/",
        "///evil.example/",
        "\\\\evil.example\\",
        "JaVaScRiPt:alert(1)//https://app.example.com/",
        "vbscript:msgbox(1)",
        "https://app.example.com\x00/",
        "https://app.example.com\u2028/",
        "https://evil.example\\@app.example.com/",
        "https://app.example.com:0/",
        "https://app.example.com:65536/",
    ],
)
async def test_more_lenient_spellings_of_another_origin_are_refused(service: Service, return_to: str) -> None:
    before = await documents(service.db, "oauth_states")

    body = await service.graphql.execute(START, {"input": {"provider": "GITHUB", "returnTo": return_to}})

    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert await documents(service.db, "oauth_states") == before, "no sign-in was started"


@pytest.mark.parametrize(
    "return_to", ["https://app.example.com//evil.example/x", "https://app.example.com/%2F%2Fevil.example"]
)
async def test_an_accepted_return_to_keeps_the_browser_on_the_frontend_origin(
    service: Service, return_to: str
) -> None:
    _, response = await service.arrive("GITHUB", return_to)

    location = urlsplit(response.headers["location"])
    assert (location.scheme, location.netloc) == ("https", "app.example.com")
    assert handed_on(response)


async def test_the_callback_query_cannot_choose_where_the_browser_goes(service: Service) -> None:
    authorization = await service.start("GITHUB")
    location = await service.visit_host(authorization["authorizationUrl"])
    hostile = {
        "returnTo": "https://evil.example/",
        "return_to": "https://evil.example/",
        "redirect_uri": "https://evil.example/",
        "next": "https://evil.example/",
    }

    response = await service.callback(f"{location}&{urlencode(hostile)}")

    assert response.status_code == 302
    assert response.headers["location"].startswith(RETURN_TO.split("?")[0] + "?")
    assert "evil" not in response.headers["location"]


async def test_parameters_in_return_to_cannot_stand_in_for_what_the_host_sent(service: Service) -> None:
    return_to = "https://app.example.com/cb?code=planted&state=planted&installationId=1&error=X"
    authorization = await service.start("GITHUB", return_to)
    location = await service.visit_host(authorization["authorizationUrl"])

    response = await service.callback(location)

    assert query_of(response.headers["location"]) == {
        "state": authorization["state"],
        "code": query_of(location)["code"],
    }


@pytest.mark.parametrize("with_return_to", [True, False])
async def test_a_hostile_error_from_the_host_is_not_echoed(service: Service, with_return_to: bool) -> None:
    authorization = await service.start("GITHUB", RETURN_TO if with_return_to else None)
    hostile = {
        "state": authorization["state"],
        "error": "<script>alert(1)</script>",
        "error_description": "ghp_" + "x" * 36 + " <img src=x onerror=alert(1)>",
        "error_uri": "https://evil.example/",
    }

    response = await service.http.get("/oauth/callback?" + urlencode(hostile))

    shown = response.headers.get("location", "") + response.text
    for fragment in ("<script>", "onerror", "ghp_", "evil.example"):
        assert fragment not in shown
    if with_return_to:
        assert query_of(response.headers["location"])["error"] == "OAUTH_EXCHANGE_FAILED"
    else:
        assert response.status_code == 400
        assert response.headers["content-security-policy"] == "default-src 'none'"
