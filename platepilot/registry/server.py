"""A real `mlflow server` on this machine: SQLite backend, proxied artifacts in a local folder.

The guide's `http://localhost:5000` points here. The server runs lean (`--workers 1`, no job runner:
3 processes, ~0.7 GB) and is stopped by SIGTERM to its PID, which stops its children too.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from platepilot.errors import PlatepilotError, bind_error
from platepilot.registry.common import import_mlflow, server_answers

START_TIMEOUT_S = 90.0
LEAN_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}


@dataclass(frozen=True)
class ServerInfo:
    """A started server: PID, URL, and its data folder (`mlflow.db`, `artifacts/`, `server.log`)."""

    pid: int
    url: str
    data_dir: Path

    @property
    def log_path(self) -> Path:
        return self.data_dir / "server.log"


def server_command(data_dir: Path, port: int, host: str = "127.0.0.1") -> list[str]:
    """The `mlflow server` command line: the same one docs/registry.md shows for running it by hand."""
    data_dir = data_dir.resolve()
    return [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", f"sqlite:///{data_dir / 'mlflow.db'}",
        "--artifacts-destination", str(data_dir / "artifacts"),
        "--serve-artifacts",
        "--host", host, "--port", str(port), "--workers", "1",
    ]  # fmt: skip


def start_server(
    data_dir: Path, port: int = 5000, host: str = "127.0.0.1", timeout: float = START_TIMEOUT_S
) -> ServerInfo:
    """Start `mlflow server` in the background and wait until `/health` answers; returns its PID."""
    import_mlflow()
    if importlib.util.find_spec("flask") is None:
        raise PlatepilotError("the MLflow server needs the full mlflow package, not mlflow-skinny: pip install mlflow")
    _check_port(host, port)
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "artifacts").mkdir(exist_ok=True)
    url = f"http://{host}:{port}"
    with (data_dir / "server.log").open("ab") as log:
        process = subprocess.Popen(
            server_command(data_dir, port, host),
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, **LEAN_ENV}, cwd=data_dir, start_new_session=True,
        )  # fmt: skip
    info = ServerInfo(process.pid, url, data_dir)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise PlatepilotError(f"mlflow server exited with code {process.returncode}: {_log_tail(info)}")
        if server_answers(url, timeout=1.0):
            return info
        time.sleep(0.5)
    stop_server(info.pid)
    raise PlatepilotError(f"mlflow server did not answer on {url} within {timeout:.0f} s: {_log_tail(info)}")


def stop_server(pid: int, timeout: float = 20.0) -> None:
    """SIGTERM the server (its gunicorn/uvicorn children follow), SIGKILL if it has not gone in time."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    _alive(pid)


def run_foreground(data_dir: Path, port: int, host: str, announce: object = print) -> None:
    """`platepilot mlflow up`: start the server, print where it is, wait for Ctrl+C (or SIGTERM), stop it."""
    info = start_server(data_dir, port, host)
    say = announce if callable(announce) else print
    say(f"MLflow server at {info.url} (pid {info.pid}), data in {info.data_dir}; Ctrl+C stops it")
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        while _alive(info.pid):
            time.sleep(1.0)
        say(f"MLflow server exited; see {info.log_path}")
    except KeyboardInterrupt:
        say("stopping the MLflow server")
    finally:
        stop_server(info.pid)
        signal.signal(signal.SIGTERM, previous)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (for tests)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _check_port(host: str, port: int) -> None:
    """PlatepilotError (`bind_error`) unless the server can listen on (host, port)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise bind_error(host, port, exc) from None


def _alive(pid: int) -> bool:
    """True while `pid` runs; reaps it when it is our exited child, so it does not linger as a zombie."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass  # not our child: fall back to a signal-0 probe
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _log_tail(info: ServerInfo, lines: int = 3) -> str:
    try:
        tail = info.log_path.read_text(errors="replace").strip().splitlines()[-lines:]
    except OSError:
        return f"see {info.log_path}"
    return " | ".join(line.strip() for line in tail) + f" (full log {info.log_path})"
