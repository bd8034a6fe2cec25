"""Running the labeling app: bind a port, print the URL, open a browser when there is one, serve until
Ctrl+Q in the page (or Ctrl+C here)."""

from __future__ import annotations

import ipaddress
import os
import secrets
import socket
import sys
import threading
import webbrowser
from collections.abc import Callable
from pathlib import Path
from typing import Any

from platepilot.errors import PlatepilotError, missing_extra
from platepilot.labeling.session import LabelSession
from platepilot.signals import stop_on_signals


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on (host, port); port 0 picks a free one. PlatepilotError when taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise PlatepilotError(f"cannot listen on {host}:{port}: {exc.strerror}; pick another --port") from None
    sock.listen(64)
    sock.set_inheritable(True)
    return sock


def new_token(host: str) -> str | None:
    """The token a server on `host` requires: None on loopback, else a fresh random one."""
    return None if is_loopback(host) else secrets.token_urlsafe(18)


def listen_url(host: str, sock: socket.socket, token: str | None) -> str:
    """The URL to print for a server listening on `sock` (bound to `host`), carrying `token` if any."""
    shown = socket.gethostname() if host in ("0.0.0.0", "::") else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{sock.getsockname()[1]}/" + (f"?token={token}" if token else "")


def can_open_browser() -> bool:
    # Without a display, webbrowser may pick a text browser that takes over this terminal.
    return sys.platform in ("darwin", "win32") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def serve(
    session: LabelSession,
    host: str = "127.0.0.1",
    port: int = 0,
    open_browser: bool = True,
    say: Callable[[str], None] = print,
) -> None:
    """Serve `session` until the page sends Ctrl+Q or the process gets Ctrl+C / SIGTERM."""
    try:
        import uvicorn

        from platepilot.labeling.app import create_app
    except ImportError as exc:
        raise missing_extra(exc.name or "fastapi", "web") from None
    token = new_token(host)
    sock = bind(host, port)
    url = listen_url(host, sock, token)
    server = uvicorn.Server(
        uvicorn.Config(create_app(session, token), log_level="warning", lifespan="off", access_log=False)
    )

    def stop() -> None:
        server.should_exit = True

    session.on_quit = stop
    with stop_on_signals(stop):  # uvicorn takes the signals while it runs, then raises them again here
        _run(server, sock, session, url, token, open_browser, say)


def _run(
    server: Any, sock: socket.socket, session: LabelSession, url: str, token: str | None, open_browser: bool,
    say: Callable[[str], None],
) -> None:  # fmt: skip
    progress = session.progress()
    what = "review" if session.review else "label"
    say(f"{what}: {progress['total'] - progress['done']} of {progress['total']} crops to go; "
        f"labels go to {session.labels_file}")  # fmt: skip
    say(f"open {url}  (Ctrl+Q in the page saves and stops; Ctrl+C here stops)")
    if token:
        say("the server is reachable from other machines: only people with this URL (its token) can use it")
    if open_browser and can_open_browser():
        threading.Timer(0.3, webbrowser.open, args=(url,)).start()
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    say(f"stopped; {progress_line(session)}")


def progress_line(session: LabelSession) -> str:
    p = session.progress()
    return f"{p['saved']} saved this run, {p['done']}/{p['total']} done, labels in {Path(p['labels_file'])}"
