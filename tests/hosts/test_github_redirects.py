"""GitHub redirects a renamed repository's old name (301 GET, 307 others): followed on its own API only."""

from __future__ import annotations

import httpx
import pytest
import respx

from app.hosts.github.repository_scope import RepositoryRequests
from app.net.client import RetryPolicy, Upstream

API = "https://api.github.com"


@pytest.fixture
async def requests() -> RepositoryRequests:
    async with httpx.AsyncClient() as http:
        yield RepositoryRequests(Upstream(http, retry=RetryPolicy(attempts=1)).to("github.com"), API)


async def test_a_write_to_a_renamed_repository_is_sent_again_where_github_moved_it(
    requests: RepositoryRequests,
) -> None:
    moved = f"{API}/repositories/42/statuses/{'a' * 40}"
    with respx.mock(assert_all_mocked=True) as mock:
        mock.post(f"{API}/repos/octocat/old/statuses/{'a' * 40}").respond(307, headers={"Location": moved})
        target = mock.post(moved).respond(201, json={"id": 1})

        response = await requests.send(
            "POST", f"{API}/repos/octocat/old/statuses/{'a' * 40}", json_body={"state": "success"}
        )

    assert response.status_code == 201
    assert target.calls.last.request.content == b'{"state":"success"}'


@pytest.mark.parametrize(
    "location",
    [
        "https://collector.example/repositories/42/hooks",
        "http://api.github.com/repositories/42/hooks",
        "https://api.github.com:8443/repositories/42/hooks",
    ],
)
async def test_a_redirect_off_the_api_is_returned_as_it_came_never_followed(
    requests: RepositoryRequests, location: str
) -> None:
    with respx.mock(assert_all_mocked=True) as mock:  # a request to the location would fail the test
        mock.get(f"{API}/repos/octocat/old/hooks").respond(301, headers={"Location": location})

        response = await requests.get(f"{API}/repos/octocat/old/hooks")

    assert response.status_code == 301


async def test_a_301_to_a_write_is_not_repeated(requests: RepositoryRequests) -> None:
    with respx.mock(assert_all_mocked=True) as mock:
        mock.delete(f"{API}/repos/octocat/old/hooks/1").respond(
            301, headers={"Location": f"{API}/repositories/42/hooks/1"}
        )

        response = await requests.send("DELETE", f"{API}/repos/octocat/old/hooks/1")

    assert response.status_code == 301
