"""`platepilot dashboard`: open the events database and the watchlists, bind, print the URL, serve until
Ctrl+C (or SIGTERM)."""

from __future__ import annotations

import threading
import webbrowser
from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError

from platepilot.config import Settings
from platepilot.errors import missing_extra
from platepilot.labeling.server import bind, can_open_browser, listen_url, new_token
from platepilot.store.events import open_engine
from platepilot.store.search import ensure_search_index
from platepilot.watch.lists import LiveWatchlists

GRACEFUL_SHUTDOWN_SECONDS = 2  # open live feeds never end by themselves


def serve(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 8080,
    open_browser: bool = True,
    say: Callable[[str], None] = print,
) -> None:
    """Serve the dashboard of `settings` (events database, watchlists file, crops, stats file)."""
    try:
        import uvicorn

        from platepilot.dashboard.app import Dashboard, create_app
    except ImportError as exc:
        raise missing_extra(exc.name or "fastapi", "web") from None
    lists = LiveWatchlists(settings.watch, [c.id for c in settings.cameras])  # a bad file: one line, exit 1
    engine = open_engine(settings.output.events_db_url)
    try:
        ensure_search_index(engine)
    except SQLAlchemyError as exc:  # a read-only database can still be shown
        say(f"warning: no plate search index ({str(exc).splitlines()[0]}); plate searches scan the table")
    token = new_token(host)
    sock = bind(host, port)
    url = listen_url(host, sock, token)
    app = create_app(Dashboard(settings, engine, lists), token)
    config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False,
                            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS)  # fmt: skip
    server = uvicorn.Server(config)
    say(f"dashboard of {engine.url!r}, watchlists in {lists.path} ({lists.matcher().size} entries)")
    say(f"open {url}  (Ctrl+C stops)")
    if token:
        say("the server is reachable from other machines: only people with this URL (its token) can use it")
    if open_browser and can_open_browser():
        threading.Timer(0.3, webbrowser.open, args=(url,)).start()
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        engine.dispose()
    say("stopped")
