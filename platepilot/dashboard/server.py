"""`platepilot dashboard`: open the events database and the watchlists, bind, print the URL, serve until
Ctrl+C (or SIGTERM)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError

from platepilot.config import Settings
from platepilot.labeling.server import listen, require_web, run_server, uvicorn_server
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
    require_web()
    from platepilot.dashboard.app import Dashboard, create_app

    lists = LiveWatchlists(settings.watch, [c.id for c in settings.cameras])  # a bad file: one line, exit 1
    engine = open_engine(settings.output.events_db_url)
    try:
        ensure_search_index(engine)
    except SQLAlchemyError as exc:  # a read-only database can still be shown
        say(f"warning: no plate search index ({str(exc).splitlines()[0]}); plate searches scan the table")
    listener = listen(host, port)
    app = create_app(Dashboard(settings, engine, lists), listener.token)
    server = uvicorn_server(app, timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS)
    say(f"dashboard of {engine.url!r}, watchlists in {lists.path} ({lists.matcher().size} entries)")
    say(f"open {listener.url}  (Ctrl+C stops)")
    try:
        run_server(server, listener, open_browser, say)
    finally:
        engine.dispose()
    say("stopped")
