"""HTTP helpers shared by the fake hosts: routing on raw path segments, request bodies, JSON, ETags, links.

Routing works on the *raw* path so that GitLab's URL-encoded ids (``group%2Fproject``) and branch names
with slashes arrive as one segment, exactly as the real hosts see them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import parse_qsl, quote, unquote, urlencode

from starlette.datastructures import Headers, QueryParams
from starlette.requests import Request
from starlette.responses import Response

JSON_TYPE = "application/json; charset=utf-8"
T = TypeVar("T")


def dumps(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(dumps(data), status_code=status, headers=dict(headers or {}), media_type=JSON_TYPE)


def iso(ts: float, *, millis: bool = False) -> str:
    """``2025-06-01T12:00:00Z`` (GitHub) or ``2025-06-01T12:00:00.000Z`` (GitLab)."""
    moment = datetime.fromtimestamp(ts, UTC)
    if millis:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def to_epoch(value: datetime | float | int | str | None) -> float | None:
    """Accept the ways a test may say "when": epoch seconds, an aware/naive-UTC datetime or ISO text."""
    if value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def s256(verifier: str) -> str:
    """The PKCE S256 challenge of a verifier (RFC 7636: base64url without padding)."""
    digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def wall_clock() -> float:
    return time.time()


# --- ETags ---------------------------------------------------------------------------------------


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    wanted = etag.removeprefix("W/")
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == wanted:
            return True
    return False


def conditional(call: Call, response: Response, *, weak: bool, keep_headers: Iterable[str] = ()) -> Response:
    """Add an ETag to a 200 GET answer and turn it into a bodyless 304 when ``If-None-Match`` matches."""
    if call.request.method not in ("GET", "HEAD") or response.status_code != 200:
        return response
    digest = hashlib.md5(response.body).hexdigest() if weak else hashlib.sha256(response.body).hexdigest()  # noqa: S324
    etag = f'W/"{digest}"' if weak else f'"{digest}"'
    if not etag_matches(call.headers.get("if-none-match"), etag):
        response.headers["ETag"] = etag
        return response
    not_modified = Response(status_code=304, headers={"ETag": etag})
    for name in keep_headers:
        if name in response.headers:
            not_modified.headers[name] = response.headers[name]
    return not_modified


# --- Requests ------------------------------------------------------------------------------------


@dataclass
class Call:
    """One request as a handler sees it: the body is already read, path parameters are decoded."""

    request: Request
    params: dict[str, str]
    body: bytes
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def headers(self) -> Headers:
        return self.request.headers

    @property
    def query(self) -> QueryParams:
        return self.request.query_params

    @property
    def method(self) -> str:
        return self.request.method

    def json(self) -> Any:
        """The JSON body; ``ValueError`` when it is not JSON."""
        return json.loads(self.body.decode() or "null")

    def form(self) -> dict[str, str]:
        """Parameters from the query string and a urlencoded or JSON body (OAuth endpoints take all three)."""
        values: dict[str, str] = dict(self.query.items())
        content_type = self.headers.get("content-type", "")
        text = self.body.decode(errors="replace").strip()
        if "json" in content_type or text.startswith("{"):
            try:
                data = json.loads(text or "{}")
            except ValueError:
                data = {}
            if isinstance(data, dict):
                values.update({k: str(v) for k, v in data.items() if v is not None})
        elif text:
            values.update(dict(parse_qsl(text, keep_blank_values=True)))
        return values

    def root_url(self) -> str:
        """``scheme://host[:port]`` plus the path the app is mounted under."""
        url = self.request.url
        return f"{url.scheme}://{url.netloc}{self.request.scope.get('root_path', '')}".rstrip("/")

    def url_with(self, **params: str | int) -> str:
        """This request's URL (raw path kept) with some query parameters set, others kept in order."""
        url = self.request.url
        raw_path = self.request.scope.get("raw_path")
        path = raw_path.decode("latin-1").split("?")[0] if raw_path else quote(url.path)
        pairs = parse_qsl(url.query, keep_blank_values=True)
        updated: list[tuple[str, str]] = []
        pending = {k: str(v) for k, v in params.items()}
        for key, value in pairs:
            if key in pending:
                updated.append((key, pending.pop(key)))
            elif key not in params:
                updated.append((key, value))
        updated.extend(pending.items())
        return f"{url.scheme}://{url.netloc}{path}?{urlencode(updated)}"


def route_segments(scope: Mapping[str, Any]) -> list[str]:
    """The path below the mount point, split on raw ``/`` and then percent-decoded segment by segment."""
    root_path: str = scope.get("root_path", "")
    raw: bytes | None = scope.get("raw_path")
    if raw is not None:
        text = raw.decode("latin-1").split("?")[0]
        if root_path and text.startswith(root_path):
            text = text[len(root_path) :]
    else:
        text = scope["path"][len(root_path) :] if scope["path"].startswith(root_path) else scope["path"]
    return [unquote(part) for part in text.strip("/").split("/") if part != ""]


Handler = Callable[[Call], Response]


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: tuple[str, ...]
    handler: Handler


class Router:
    """Routes on decoded segments. ``{name}`` takes one segment; one ``{name+}`` takes one or more."""

    def __init__(self) -> None:
        self._routes: list[_Route] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        segments = tuple(part for part in pattern.strip("/").split("/") if part)
        self._routes.append(_Route(method.upper(), segments, handler))

    def resolve(self, method: str, segments: list[str]) -> tuple[Handler, dict[str, str]] | None:
        method = "GET" if method == "HEAD" else method
        for route in self._routes:
            if route.method != method:
                continue
            params = _match(route.pattern, segments)
            if params is not None:
                return route.handler, params
        return None


def _match(pattern: tuple[str, ...], segments: list[str]) -> dict[str, str] | None:
    greedy = next((i for i, part in enumerate(pattern) if part.endswith("+}")), None)
    if greedy is None:
        if len(pattern) != len(segments):
            return None
        return _match_fixed(pattern, segments)
    tail = len(pattern) - greedy - 1
    if len(segments) < len(pattern):
        return None
    head = _match_fixed(pattern[:greedy], segments[:greedy])
    rest = _match_fixed(pattern[greedy + 1 :], segments[len(segments) - tail :]) if tail else {}
    if head is None or rest is None:
        return None
    name = pattern[greedy][1:-2]
    return {**head, **rest, name: "/".join(segments[greedy : len(segments) - tail])}


def _match_fixed(pattern: tuple[str, ...], segments: list[str]) -> dict[str, str] | None:
    params: dict[str, str] = {}
    for part, segment in zip(pattern, segments, strict=True):
        if part.startswith("{") and part.endswith("}"):
            params[part[1:-1]] = segment
        elif part != segment:
            return None
    return params


# --- Pagination ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    number: int
    per_page: int
    total: int

    @property
    def last(self) -> int:
        return max(1, -(-self.total // self.per_page))

    def slice(self, items: list[T]) -> list[T]:
        start = (self.number - 1) * self.per_page
        return items[start : start + self.per_page]


def page_params(call: Call, total: int, *, default_per_page: int) -> Page:
    """``page`` and ``per_page`` as both hosts read them: junk means the default, ``per_page`` is capped at 100."""
    per_page = _positive_int(call.query.get("per_page"), default_per_page)
    number = _positive_int(call.query.get("page"), 1)
    return Page(number=number, per_page=min(per_page, 100), total=total)


def _positive_int(value: str | None, default: int) -> int:
    try:
        number = int(value) if value is not None else default
    except ValueError:
        return default
    return number if number > 0 else default


def link_header(call: Call, rels: list[tuple[str, int]]) -> str:
    return ", ".join(f'<{call.url_with(page=number)}>; rel="{rel}"' for rel, number in rels)
