"""A web page's server (`label_crops.py`, `platepilot dashboard`) run as a real process for browser tests, and the
headless Chromium that drives the page."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from playwright.sync_api import Browser, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip


class PageServer:
    """`cmd` running in `cwd` until it prints `open <url>`; stopped by PID."""

    def __init__(self, cmd: list[str], cwd: Path, what: str = "server") -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.output: list[str] = []
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.output.append(line)
            match = re.search(r"open (http://\S+)", line)
            if match:
                self.url = match.group(1)
                return
        self.stop()
        raise AssertionError(f"{what} did not start:\n" + "".join(self.output))

    def local_url(self) -> str:
        """The printed URL, pointed at 127.0.0.1 (it names this machine when bound to 0.0.0.0)."""
        parts = urlsplit(self.url)
        return parts._replace(netloc=f"127.0.0.1:{parts.port}").geturl()

    def wait(self, timeout: float = 15) -> int:
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # by PID
            self.proc.wait(15)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless, driven by Playwright; closed when the block ends."""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


S = TypeVar("S", bound=PageServer)


@contextmanager
def started(make: Callable[..., S]) -> Iterator[Callable[..., S]]:
    """A `start(*extra)` that starts a server with `make(*extra)`; every one started is stopped when the block ends."""
    servers: list[S] = []

    def start(*extra: str) -> S:
        servers.append(make(*extra))
        return servers[-1]

    try:
        yield start
    finally:
        for server in servers:
            server.stop()
