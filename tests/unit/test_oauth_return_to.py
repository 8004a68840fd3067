"""Where the browser may be sent after a login: only back to the frontend, with only the result attached."""

from __future__ import annotations

import pytest

from app.domain.errors import BadUserInputError
from app.oauth_callback import with_result
from app.services.oauth_connect import checked_return_to

ORIGINS = ("https://app.example.com", "http://localhost:3000")


@pytest.mark.parametrize(
    "value",
    [
        "https://app.example.com",
        "https://app.example.com/",
        "https://APP.example.com/settings/git?tab=1#top",
        "http://localhost:3000/callback",
    ],
)
def test_addresses_on_a_frontend_origin_are_accepted(value: str) -> None:
    assert checked_return_to(value, ORIGINS) == value


def test_no_return_to_is_fine() -> None:
    assert checked_return_to(None, ORIGINS) is None
    assert checked_return_to("", ORIGINS) is None


@pytest.mark.parametrize(
    "value",
    [
        "https://localhost:3000/",  # scheme differs from the configured origin
        "http://localhost:3001/",
        "http://localhost:0/",
        "http://localhost:99999/",
        "https://app.example.com\t/",
        "https://app.example.com/" + "x" * 2100,
        "ftp://app.example.com/",
        "https://user@app.example.com/",
    ],
)
def test_anything_else_is_bad_user_input(value: str) -> None:
    with pytest.raises(BadUserInputError) as caught:
        checked_return_to(value, ORIGINS)
    assert "https://app.example.com, http://localhost:3000" in caught.value.message


def test_without_frontend_origins_nothing_is_accepted() -> None:
    with pytest.raises(BadUserInputError) as caught:
        checked_return_to("https://app.example.com/", ())
    assert "FRONTEND_ORIGINS" in caught.value.message


def test_the_result_replaces_any_result_already_in_the_address_and_keeps_the_rest() -> None:
    url = with_result(
        "https://app.example.com/git?tab=2&error=OLD&integration=x&code=planted&state=p&installationId=9#list",
        [("state", "S"), ("code", "C")],
    )

    assert url == "https://app.example.com/git?tab=2&state=S&code=C#list"
