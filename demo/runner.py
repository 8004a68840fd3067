"""``make demo``: the fake hosts and the demo page in this process, the service as ``python -m app serve``.

    python -m demo                    # the service on 8100, fake GitHub 8101, fake GitLab 8102, page 8103
    python -m demo --free-ports       # any free loopback ports (tests)

Everything listens on 127.0.0.1 only. The service runs with the embedded database in a temporary
directory (thrown away on exit: the fakes' world is in memory and starts afresh too), secrets made for
this run, and the two fakes configured as its GitHub App and GitLab application.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import webbrowser
from pathlib import Path
from typing import Any

import httpx

from app.security.auth import issue_development_token
from app.settings.model import Settings
from app.settings.values import Secret
from demo import sheet, world
from demo.page import build_page
from demo.seeding import Pusher, delivering, seed
from tests.fakes.server import run_in_thread

ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = "127.0.0.1"
DEFAULT_PORTS = {"service": 8100, "github": 8101, "gitlab": 8102, "page": 8103}
USERS = ("alice", "erin", "rita", "lena")
JWT_HOURS = 12
# The service's own variables are never inherited from the shell that runs the demo.
SERVICE_PREFIXES = (
    "APP_",
    "MONGODB_",
    "AUTH_",
    "ENCRYPTION_",
    "GITHUB_",
    "GITLAB_",
    "GIT_",
    "PUBLIC_",
    "FRONTEND_",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--free-ports", action="store_true", help="any free loopback ports instead of 8100-8103"
    )
    parser.add_argument("--open", action="store_true", help="open the demo page in a browser")
    return parser.parse_args(argv)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def service_environment(
    *,
    service_url: str,
    page_url: str,
    github_url: str,
    gitlab_url: str,
    data_dir: str,
    jwt_secret: str,
    key: str,
) -> dict[str, str]:
    """The variables the service runs with in the demo (with ``APP_ENV=production`` every answer of its fakes
    is refused: tested)."""
    return {
        "APP_ENV": "development",
        "HOST": LOOPBACK,
        "PORT": str(httpx.URL(service_url).port),
        "DATA_DIR": data_dir,
        "AUTH_JWT_SECRET": jwt_secret,
        "ENCRYPTION_KEYS": f"demo:{key}",
        "PUBLIC_URL": service_url,
        "FRONTEND_ORIGINS": page_url,
        "GITHUB_URL": github_url,
        "GITHUB_API_URL": github_url,
        "GITHUB_CLIENT_ID": world.GITHUB_CLIENT_ID,
        "GITHUB_CLIENT_SECRET": world.GITHUB_CLIENT_SECRET,
        "GITHUB_APP_SLUG": world.GITHUB_APP_SLUG,
        "GITLAB_URL": gitlab_url,
        "GITLAB_CLIENT_ID": world.GITLAB_CLIENT_ID,
        "GITLAB_CLIENT_SECRET": world.GITLAB_CLIENT_SECRET,
        "GIT_HOST_ALLOWLIST": LOOPBACK,
        "GRAPHIQL": "true",
    }


def development_jwts(jwt_secret: str) -> dict[str, str]:
    """One JWT per demo user, and the deployer's (a platform service acting for lena)."""
    settings = Settings(auth_jwt_secret=Secret(jwt_secret))
    lifetime = JWT_HOURS * 3600
    jwts = {user: issue_development_token(settings, user, lifetime_seconds=lifetime) for user in USERS}
    jwts["deployer"] = issue_development_token(
        settings, "deployer", lifetime_seconds=lifetime, scope="git:deploy", act_for="lena"
    )
    return jwts


def start_service(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``python -m app serve`` with exactly the demo's variables (plus the shell's others), its log in ``log``."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(SERVICE_PREFIXES)}
    with log.open("wb") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "app", "serve"],
            cwd=ROOT,
            env=inherited | env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def stopped_early(log: Path) -> RuntimeError:
    return RuntimeError(f"the service stopped while starting:\n{log.read_text()[-3000:]}")


async def wait_until_ready(
    url: str, process: subprocess.Popen[bytes], log: Path, within_seconds: float = 60
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_seconds
    async with httpx.AsyncClient(timeout=1) as http:
        while loop.time() < deadline:
            if process.poll() is not None:
                raise stopped_early(log)
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(f"{url}/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError("the service did not become ready")


def stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


async def run(args: argparse.Namespace) -> None:
    ports = {name: 0 if args.free_ports else port for name, port in DEFAULT_PORTS.items()}
    service_port = ports["service"] or free_port()
    service_url = f"http://{LOOPBACK}:{service_port}"
    github, gitlab = world.build_github(), world.build_gitlab()
    callback = f"{service_url}/oauth/callback"
    github.callback_urls, github.setup_url, gitlab.redirect_uris = [callback], callback, [callback]
    jwt_secret = secrets.token_urlsafe(48)
    jwts = development_jwts(jwt_secret)
    data_dir = tempfile.mkdtemp(prefix="git-integrations-demo-")
    log = Path(data_dir) / "service.log"
    pusher = Pusher(github, gitlab)
    config: dict[str, Any] = {}
    addresses: list[sheet.Addresses] = []
    page = build_page(config, lambda: sheet.html(addresses[0], jwts), pusher.push_all)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    try:
        with (
            run_in_thread(github.app, port=ports["github"]) as github_url,
            run_in_thread(gitlab.app, port=ports["gitlab"]) as gitlab_url,
            run_in_thread(page, port=ports["page"]) as page_url,
        ):
            addresses.append(sheet.Addresses(service_url, page_url, github_url, gitlab_url, str(log)))
            config.update(
                serviceUrl=service_url,
                graphqlUrl=f"{service_url}/graphql",
                returnTo=f"{page_url}/oauth/return",
                jwts=jwts,
                githubUrl=github_url,
                gitlabUrl=gitlab_url,
            )
            env = service_environment(
                service_url=service_url,
                page_url=page_url,
                github_url=github_url,
                gitlab_url=gitlab_url,
                data_dir=data_dir,
                jwt_secret=jwt_secret,
                key=base64.b64encode(secrets.token_bytes(32)).decode(),
            )
            process = start_service(env, log)
            try:
                await wait_until_ready(service_url, process, log)
                async with httpx.AsyncClient(timeout=15) as deliveries, delivering(pusher, deliveries):
                    seeded = await seed(service_url, config["returnTo"], jwts, github, pusher)
                    config["lenaLink"] = seeded.lena_link
                    print(sheet.text(addresses[0], jwts))
                    print(f"Demo ready: {page_url}/", flush=True)
                    if args.open:
                        webbrowser.open(f"{page_url}/")
                    await stopping.wait()
            finally:
                stop(process)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        asyncio.run(run(args))
    except OSError as exc:
        print(f"demo: {exc} (another demo or make run on the same port? try --free-ports)", file=sys.stderr)
        return 1
    return 0
