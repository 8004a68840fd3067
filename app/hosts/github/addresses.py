"""Where a GitHub's API lives, given where its web pages are (``GITHUB_URL`` → ``GITHUB_API_URL``), and
which kind of GitHub a pair of them is.

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


def is_enterprise_server(web_url: str, api_url: str) -> bool:
    """Whether the GitHub at ``web_url`` with its API at ``api_url`` is a GitHub Enterprise Server.

    GitHub Enterprise Server serves its REST API on the web host, always at ``https://HOST/api/v3``
    (GitHub's REST API docs for GHES; ``/work/shared/provider-facts.md``, "GitHub Enterprise Server");
    github.com (``api.github.com``) and GitHub Enterprise Cloud with data residency
    (``api.SUB.ghe.com``) have theirs on an origin of its own, and follow github.com's URL scheme for
    the web pages (``/apps/{slug}/installations/new``, not GHES's ``/github-apps/...``). So the shape of
    the pair decides, not the web hostname alone: a github.com-like host elsewhere (a test double on
    loopback with its API on another port, or on the web origin without ``/api/v3``) is github.com-like.
    github.com and ``*.ghe.com`` are github.com-like whatever API URL is configured. Trailing slashes,
    case and default ports do not count; a ``web_url`` with a path wants ``api_url_for``'s
    ``{web_url}/api/v3``.
    """
    hostname = (urlsplit(web_url).hostname or "").lower()
    if hostname == DOTCOM or hostname.endswith(_DATA_RESIDENCY):
        return False
    web, api = _origin_and_path(web_url), _origin_and_path(api_url)
    return web is not None and api is not None and api == (web[0], f"{web[1]}/api/v3")


def _origin_and_path(url: str) -> tuple[str, str] | None:
    """``url``'s origin (lowercase, without the scheme's default port) and path without trailing
    slashes; None when its port is not a number (settings check scheme and host, not the port)."""
    parts = urlsplit(url.strip())
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:
        return None
    if port == {"http": 80, "https": 443}.get(scheme):
        port = None
    netloc = f"[{host}]" if ":" in host else host  # an IPv6 literal keeps its brackets
    origin = f"{scheme}://{netloc}" + (f":{port}" if port is not None else "")
    return origin, parts.path.rstrip("/")


def is_dotcom(url: str) -> bool:
    """Whether ``url`` is github.com's web or API address."""
    return (urlsplit(url).hostname or "").lower() in (DOTCOM, f"api.{DOTCOM}")
