"""``make demo``'s processes, started once for the tests of this package: ``python -m demo --free-ports``
(what the Makefile runs, on free loopback ports), until it prints that it is ready."""

from __future__ import annotations

import contextlib
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.harness import ROOT, stop_process

READY = "Demo ready: "
START_SECONDS = 90


@dataclass(frozen=True)
class RunningDemo:
    page: str  # the demo page's base URL
    config: dict[str, Any]  # what the page's /config.json says (service URL, JWTs, returnTo)
    printed: str  # the cheat sheet as the terminal showed it

    @property
    def service(self) -> str:
        return str(self.config["serviceUrl"])

    def jwt(self, user: str) -> str:
        return str(self.config["jwts"][user])


def _read_until_ready(process: subprocess.Popen[str]) -> str:
    """The lines the demo printed, up to its ready line (read by a thread: readline blocks)."""
    assert process.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    stdout = process.stdout
    threading.Thread(
        target=lambda: [lines.put(line) for line in iter(stdout.readline, "")] and None, daemon=True
    ).start()
    printed, deadline = [], time.monotonic() + START_SECONDS
    with contextlib.suppress(queue.Empty):
        while (left := deadline - time.monotonic()) > 0:
            line = lines.get(timeout=left)
            printed.append(line)
            if line.startswith(READY):
                return "".join(printed)
    stop_process(process, timeout=15)
    raise AssertionError("the demo did not start:\n" + "".join(printed))


@pytest.fixture(scope="package")
def running_demo() -> Iterator[RunningDemo]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APP_", "GITHUB_", "GITLAB_", "AUTH_"))}
    process = subprocess.Popen(
        [sys.executable, "-m", "demo", "--free-ports"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        printed = _read_until_ready(process)
        page = printed.strip().splitlines()[-1].removeprefix(READY).rstrip("/")
        config = httpx.get(f"{page}/config.json").json()
        yield RunningDemo(page, config, printed)
    finally:
        assert stop_process(process, timeout=30) == 0, "the demo did not stop cleanly on SIGTERM"
