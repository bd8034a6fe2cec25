"""Running the labeling app: bind a port, print the URL, open a browser when there is one, serve until
Ctrl+Q in the page (or Ctrl+C here). Binding (`listen`), the uvicorn server and serving (`run_server`) are the
dashboard's too."""

from __future__ import annotations

import ipaddress
import os
import secrets
import socket
import sys
import threading
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from platepilot.errors import bind_error, missing_extra
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
        raise bind_error(host, port, exc) from None
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


def require_web() -> None:
    """One line naming the `web` extra when FastAPI or uvicorn is not installed (checked before a port is bound)."""
    try:
        import uvicorn  # noqa: F401, I001  (named first: it is what the web extra is for)
        import fastapi  # noqa: F401
    except ImportError as exc:
        raise missing_extra(exc.name or "fastapi", "web") from None


@dataclass(frozen=True)
class Listener:
    """A bound socket, the token a client must present (None on loopback) and the URL that carries it."""

    sock: socket.socket
    token: str | None
    url: str


def listen(host: str, port: int) -> Listener:
    """Bind (host, port) (port 0 picks a free one) with a fresh token unless `host` is loopback."""
    token = new_token(host)
    sock = bind(host, port)
    return Listener(sock, token, listen_url(host, sock, token))


def uvicorn_server(app: Any, **options: Any) -> Any:
    """A quiet uvicorn server for `app`: no access log, no lifespan; `options` go to uvicorn.Config."""
    import uvicorn

    return uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False, **options))


def run_server(server: Any, listener: Listener, open_browser: bool, say: Callable[[str], None]) -> None:
    """Say that a token guards a server other machines can reach, open a browser where there is a display,
    serve on the listener's socket until the server stops, then close the socket."""
    if listener.token:
        say("the server is reachable from other machines: only people with this URL (its token) can use it")
    if open_browser and can_open_browser():
        threading.Timer(0.3, webbrowser.open, args=(listener.url,)).start()
    try:
        server.run(sockets=[listener.sock])
    finally:
        listener.sock.close()


def serve(
    session: LabelSession,
    host: str = "127.0.0.1",
    port: int = 0,
    open_browser: bool = True,
    say: Callable[[str], None] = print,
) -> None:
    """Serve `session` until the page sends Ctrl+Q or the process gets Ctrl+C / SIGTERM."""
    require_web()
    from platepilot.labeling.app import create_app

    listener = listen(host, port)
    server = uvicorn_server(create_app(session, listener.token))

    def stop() -> None:
        server.should_exit = True

    session.on_quit = stop
    with stop_on_signals(stop):  # uvicorn takes the signals while it runs, then raises them again here
        progress = session.progress()
        what = "review" if session.review else "label"
        say(f"{what}: {progress['total'] - progress['done']} of {progress['total']} crops to go; "
            f"labels go to {session.labels_file}")  # fmt: skip
        say(f"open {listener.url}  (Ctrl+Q in the page saves and stops; Ctrl+C here stops)")
        run_server(server, listener, open_browser, say)
    say(f"stopped; {progress_line(session)}")


def progress_line(session: LabelSession) -> str:
    p = session.progress()
    return f"{p['saved']} saved this run, {p['done']}/{p['total']} done, labels in {Path(p['labels_file'])}"
