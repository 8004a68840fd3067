"""Run one fake host as its own process, on 127.0.0.1 only.

    python -m tests.fakes github --port 0 --repos 500 --delay 0.05
    python -m tests.fakes gitlab --port 8081 --prefix /gitlab --seed-file world.json

Prints the base URL (one line, flushed) once the server accepts connections; for GitHub the API is at
that URL plus ``--api-prefix``. Without ``--seed-file`` the default scenario of ``tests.fakes.scenarios``
is loaded (well-known tokens ``GITHUB_CLASSIC_TOKEN``, ``GITLAB_PERSONAL_TOKEN``…); with
``--with-default`` both. Steer the running process through ``/_fake/...`` (see ``tests.fakes._host``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from pathlib import Path

from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import ASGIApp

from tests.fakes.github import FakeGitHub
from tests.fakes.gitlab import FakeGitLab
from tests.fakes.scenarios import default_github, default_gitlab
from tests.fakes.server import serve_forever


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes", description=__doc__.splitlines()[0])
    parser.add_argument("host", choices=["github", "gitlab"])
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds added to every request")
    parser.add_argument("--seed-file", type=Path, help="JSON seed document instead of the default scenario")
    parser.add_argument("--with-default", action="store_true", help="load the default scenario as well")
    parser.add_argument("--repos", type=int, default=100, help="repositories in the default scenario")
    parser.add_argument("--api-prefix", default="", help="GitHub: e.g. /api/v3 for GitHub Enterprise Server")
    parser.add_argument("--app-slug", help="GitHub: act as this GitHub App (ghu_ tokens, installations)")
    parser.add_argument("--client-id", help="OAuth client id")
    parser.add_argument("--client-secret", help="OAuth client secret")
    parser.add_argument(
        "--callback-url", action="append", default=[], help="registered OAuth callback (repeatable)"
    )
    parser.add_argument(
        "--prefix", default="", help="GitLab: serve the instance under this path, e.g. /gitlab"
    )
    parser.add_argument("--rate-limit", type=int, help="requests left before the host answers rate limited")
    parser.add_argument("--log-level", default="warning")
    return parser.parse_args(argv)


def build(args: argparse.Namespace) -> tuple[FakeGitHub | FakeGitLab, ASGIApp, str]:
    """The fake, the app to serve and the path its base URL ends with."""
    oauth = {k: v for k, v in {"client_id": args.client_id, "client_secret": args.client_secret}.items() if v}
    fake: FakeGitHub | FakeGitLab
    if args.host == "github":
        fake = FakeGitHub(api_prefix=args.api_prefix, app_slug=args.app_slug, **oauth)
        fake.callback_urls = list(args.callback_url)
        if args.rate_limit is not None:
            fake.rate_limit_remaining = args.rate_limit
        if not args.seed_file or args.with_default:
            default_github(fake, repositories=args.repos)
    else:
        fake = FakeGitLab(redirect_uris=list(args.callback_url), **oauth)
        fake.rate_limit_remaining = args.rate_limit
        if not args.seed_file or args.with_default:
            default_gitlab(fake, repositories=args.repos)
    if args.seed_file:
        fake.seed(json.loads(args.seed_file.read_text()))
    fake.delay = args.delay
    prefix = args.prefix.rstrip("/") if args.host == "gitlab" else ""
    app: ASGIApp = Starlette(routes=[Mount(prefix, app=fake.app)]) if prefix else fake.app
    return fake, app, prefix


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    _, app, prefix = build(args)

    def ready(base_url: str) -> None:
        print(base_url + prefix, flush=True)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_forever(app, port=args.port, on_ready=ready, log_level=args.log_level))
    sys.exit(0)


if __name__ == "__main__":
    main()
