"""Where a GitHub's API lives, given where its web pages are (``GITHUB_URL`` → ``GITHUB_API_URL``).

- github.com: ``https://api.github.com``;
- GitHub Enterprise Cloud with data residency (``https://SUB.ghe.com``): ``https://api.SUB.ghe.com``;
- GitHub Enterprise Server (``https://HOST``): ``https://HOST/api/v3``.

Sources: GitHub's REST API docs ("GitHub Enterprise Server: the API is at https://HOST/api/v3") and
the data residency docs ("the API is at api.SUBDOMAIN.ghe.com"); ``/work/shared/design.md``,
configuration table.
"""

from __future__ import annotations

from urllib.parse import urlsplit

DOTCOM = "github.com"
DOTCOM_API = "https://api.github.com"
_DATA_RESIDENCY = ".ghe.com"


def api_url_for(web_url: str) -> str:
    """The API address of the GitHub at ``web_url`` (an http(s) URL without a trailing slash)."""
    parts = urlsplit(web_url)
    hostname = (parts.hostname or "").lower()
    if hostname == DOTCOM:
        return DOTCOM_API
    if hostname.endswith(_DATA_RESIDENCY):
        return f"{parts.scheme}://api.{parts.netloc.lower()}"
    return f"{web_url.rstrip('/')}/api/v3"


def is_dotcom(url: str) -> bool:
    """Whether ``url`` is github.com's web or API address."""
    return (urlsplit(url).hostname or "").lower() in (DOTCOM, f"api.{DOTCOM}")
