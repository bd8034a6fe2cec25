"""A web page's server (`label_crops.py`, `platepilot dashboard`) run as a real process for browser tests."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit


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
