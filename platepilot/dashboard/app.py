"""The dashboard app: one HTML page (plain JS, no build step) over a small JSON API.

It reads the events database the runtime writes (any SQLAlchemy URL), the watchlists file (which it
also edits, atomically; the runtime picks each save up) and the runtime's stats file. The live feed
is server-sent events: the server polls the database for rows after the last one sent, 4 times a
second, and for a while for the ids it skipped, which a busier collector may still commit
(`FeedCursor`). Access follows the labeling page's rule (`LocalGuard`): loopback only, or the printed token.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Engine

from platepilot.config import Settings
from platepilot.dashboard.views import CropDir, event_view
from platepilot.errors import PlatepilotError
from platepilot.labeling.app import LocalGuard, add_page_routes
from platepilot.pipeline.report import events_csv
from platepilot.pipeline.stats_file import read_stats
from platepilot.store.atomic import FileVersion, file_version
from platepilot.store.search import EventQuery, FeedCursor, counts_since, get_event, last_event_id, search_events
from platepilot.watch.lists import LiveWatchlists, save_watchlists, validate_watchlists

STATIC = Path(__file__).parent / "static"
MAX_ROW_ID = 2**63  # larger row ids no database holds
RowId = Annotated[int, PathParam(ge=0, lt=MAX_ROW_ID)]  # an event row id (a larger one was a 500)
FEED_POLL_SECONDS = 0.25
HEARTBEAT_SECONDS = 15.0
STATS_STALE_SECONDS = 30.0
MAX_RESULTS = 5000


@dataclass
class Dashboard:
    """What the app serves: the settings, the events database, the live watchlists, the crops folder."""

    settings: Settings
    engine: Engine
    lists: LiveWatchlists
    crops: CropDir = field(init=False)

    def __post_init__(self) -> None:
        self.crops = CropDir(self.settings.output.crops_dir)


class WatchlistsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lists: dict[str, Any] = Field(description="The whole watchlists document's `lists`.")
    version: str = Field(default="", max_length=100, description="The version the page loaded (conflict check).")


def _version_text(version: FileVersion) -> str:
    return "" if version is None else "-".join(map(str, version))


def resume_from(last_event_id: str, after: int | None) -> int | None:
    """The row a reconnecting feed resumes after: its Last-Event-ID when that is a row id (`²` passed
    `isdigit` and failed `int`, a 20-digit one overflowed the query), else `after`."""
    if last_event_id.isascii() and last_event_id.isdigit() and int(last_event_id) < MAX_ROW_ID:
        return int(last_event_id)
    return after


def create_app(board: Dashboard, token: str | None = None) -> FastAPI:
    """The app serving `board`; `token` None means loopback only, else every request must carry it."""
    app = FastAPI(title="platepilot dashboard", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(LocalGuard, token=token)

    def views(found: list[Any]) -> list[dict[str, Any]]:
        matcher = board.lists.matcher()
        return [event_view(f, matcher, board.crops) for f in found]

    def query(
        plate: str, fuzzy: int, since: float | None, until: float | None, camera: str, limit: int, device: str
    ) -> EventQuery:
        try:
            limit = min(max(limit, 1), MAX_RESULTS)
            return EventQuery(plate or None, fuzzy, since, until, camera or None, limit, device=device or None)
        except ValueError as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from None

    add_page_routes(app, STATIC)

    @app.get("/api/meta")
    def meta() -> dict[str, Any]:
        cameras = [c.id for c in board.settings.cameras]
        return {"cameras": cameras, "match_distance": board.settings.watch.match_distance}

    @app.get("/api/events")
    def events(
        plate: str = "", fuzzy: int = 0, since: float | None = None, until: float | None = None, camera: str = "",
        limit: int = 200, device: str = "",
    ) -> dict[str, Any]:  # fmt: skip
        wanted = query(plate, fuzzy, since, until, camera, limit, device)
        last = last_event_id(board.engine)  # before the search: a row stored in between comes by the feed
        return {"events": views(search_events(board.engine, wanted)), "last_id": last}

    @app.get("/api/events.csv")
    def export(
        plate: str = "", fuzzy: int = 0, since: float | None = None, until: float | None = None, camera: str = "",
        limit: int = MAX_RESULTS, device: str = "",
    ) -> Response:  # fmt: skip
        found = search_events(board.engine, query(plate, fuzzy, since, until, camera, limit, device))
        headers = {"Content-Disposition": 'attachment; filename="platepilot-reads.csv"'}
        text = "\ufeff" + events_csv([f.event for f in found])  # a byte-order mark: Excel reads it as UTF-8
        return Response(text, media_type="text/csv; charset=utf-8", headers=headers)

    @app.get("/api/event/{event_id}")
    def event(event_id: RowId) -> dict[str, Any]:
        found = get_event(board.engine, event_id)
        if found is None:
            raise HTTPException(status_code=404, detail=f"no event {event_id}")
        return {"event": views([found])[0], "per_frame_reads": None}

    @app.get("/crop/{event_id}")
    def crop(event_id: RowId) -> FileResponse:
        found = get_event(board.engine, event_id)
        target = None if found is None else board.crops.file(found.event.crop_path)
        if target is None:
            raise HTTPException(status_code=404, detail="no crop under output.crops_dir for this event")
        return FileResponse(target)

    @app.get("/api/feed")
    async def feed(
        request: Request, after: Annotated[int | None, Query(ge=0, lt=MAX_ROW_ID)] = None
    ) -> StreamingResponse:
        start = resume_from(request.headers.get("last-event-id", ""), after)
        return StreamingResponse(_feed(request, start), media_type="text/event-stream")

    async def _feed(request: Request, after: int | None) -> AsyncIterator[str]:
        start = await asyncio.to_thread(last_event_id, board.engine) if after is None else after
        cursor, sent = FeedCursor(start), start
        yield "retry: 1000\n\n"
        quiet_since = time.monotonic()
        while not await request.is_disconnected():
            found = await asyncio.to_thread(cursor.poll, board.engine, time.monotonic())
            for view in await asyncio.to_thread(views, found):
                sent = max(sent, view["id"])  # a reconnecting browser resumes after it (Last-Event-ID)
                yield f"id: {sent}\ndata: {json.dumps(view)}\n\n"
            if found:
                quiet_since = time.monotonic()
                continue
            if time.monotonic() - quiet_since > HEARTBEAT_SECONDS:
                quiet_since = time.monotonic()
                yield ": still here\n\n"
            await asyncio.sleep(FEED_POLL_SECONDS)

    @app.get("/api/watchlists")
    def watchlists() -> dict[str, Any]:
        lists, loaded, error = board.lists.shown()  # reloaded first if the file changed
        return {
            "lists": lists.model_dump(mode="json")["lists"],
            "version": _version_text(loaded),  # of what is shown: a save over a newer file is refused
            "file": str(board.lists.path),
            "error": error,
        }

    saving = threading.Lock()  # two pages saving at once: the second sees the first's version, not its own

    @app.post("/api/watchlists")
    def save(body: WatchlistsBody) -> dict[str, Any]:
        path = board.lists.path
        with saving:
            _, loaded, error = board.lists.shown()
            current = file_version(path)
            if error is not None and current is not None:  # the page shows the last good lists: saving them
                # would undo the hand edit (a file gone is no edit: saving the lists shown writes it again)
                raise HTTPException(status_code=409, detail=f"{path} does not load; fix it by hand first ({error})")
            if body.version != _version_text(current if current is not None else loaded):
                raise HTTPException(status_code=409, detail=f"{path} changed since this page loaded it: reload")
            try:
                lists = validate_watchlists({"lists": body.lists}, board.lists.cameras, "watchlists")
                save_watchlists(path, lists)
            except PlatepilotError as exc:
                raise HTTPException(status_code=400, detail=str(exc)) from None
        return watchlists()

    @app.get("/api/stats")
    def stats() -> dict[str, Any]:
        stats_file = board.settings.output.stats_file
        data = read_stats(stats_file) if stats_file is not None else None
        now = time.time()
        per_hour = counts_since(board.engine, now - 3600)
        cameras: dict[str, dict[str, Any]] = {c.id: {"camera_id": c.id} for c in board.settings.cameras}
        for camera in (data or {}).get("cameras", []):
            if isinstance(camera, dict) and isinstance(camera.get("camera_id"), str):
                cameras[camera["camera_id"]] = camera
        for camera_id, camera in cameras.items():
            camera["reads_last_hour"] = per_hour.get(camera_id, 0)
        updated = (data or {}).get("updated")
        live = isinstance(updated, int | float) and now - updated < STATS_STALE_SECONDS
        return {"cameras": list(cameras.values()), "updated": updated, "live": live}

    return app
