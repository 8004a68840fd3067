"""Which kind of GitHub a ``GITHUB_URL``/``GITHUB_API_URL`` pair is (app.hosts.github.addresses): GitHub
Enterprise Server has its API on the web host at ``/api/v3``; github.com and SUB.ghe.com on an origin of
its own (/work/shared/provider-facts.md, "GitHub Enterprise Server").
"""

from __future__ import annotations

import pytest

from app.hosts.github.addresses import api_url_for, is_enterprise_server


@pytest.mark.parametrize(
    ("web", "api"),
    [
        ("https://ghe.example.com", "https://ghe.example.com/api/v3"),
        ("https://ghe.example.com/", "https://ghe.example.com/api/v3/"),
        ("https://GHE.example.com", "https://ghe.example.com:443/api/v3"),
        ("http://127.0.0.1:9000", "http://127.0.0.1:9000/api/v3"),
        ("http://[::1]:9000", "http://[::1]:9000/api/v3"),
        ("https://example.com/ghes", "https://example.com/ghes/api/v3"),  # api_url_for's derivation
    ],
)
def test_the_api_on_the_web_host_at_api_v3_is_github_enterprise_server(web: str, api: str) -> None:
    assert is_enterprise_server(web, api)


@pytest.mark.parametrize(
    ("web", "api"),
    [
        ("https://github.com", "https://api.github.com"),
        ("https://octo.ghe.com", "https://api.octo.ghe.com"),
        # github.com and ghe.com are github.com-like by name, whatever API URL they are given.
        ("https://octo.ghe.com", "https://octo.ghe.com/api/v3"),
        ("https://github.com", "https://github.com/api/v3"),
        # A github.com-like double on loopback: API on another port, or at the root of the web origin.
        ("http://127.0.0.1:9000", "http://127.0.0.1:9001"),
        ("http://127.0.0.1:9000", "http://127.0.0.1:9000"),
        # /api/v3 on another origin is not GHES's shape.
        ("http://127.0.0.1:9000", "http://127.0.0.1:9001/api/v3"),
        ("https://ghe.example.com", "http://ghe.example.com/api/v3"),
        ("https://ghe.example.com", "https://ghe.example.com/api/v4"),
        ("http://ghe.example:x", "http://ghe.example:x/api/v3"),  # no port: nothing to compare
    ],
)
def test_anything_else_is_github_com_like(web: str, api: str) -> None:
    assert not is_enterprise_server(web, api)


@pytest.mark.parametrize("web", ["https://github.com", "https://octo.ghe.com", "https://ghe.example.com"])
def test_the_derived_api_url_keeps_each_kind_what_it_was(web: str) -> None:
    assert is_enterprise_server(web, api_url_for(web)) == (web == "https://ghe.example.com")
