"""The labeling web app: one HTML page, a small JSON API over `LabelSession`, and the crop images.

Safety: only files under `--crops-dir` are served (`safe_crop_file` refuses `..`, absolute paths and
symlinks leading out). With a `token` (any `--host` other than loopback) every request needs it, as
`?token=` once (then a cookie), or the `X-Platepilot-Token` header. Without one, requests must name a
loopback Host, which stops other web sites from reaching the server through DNS rebinding; writes
must be JSON, which browsers do not send across sites without permission.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from platepilot.errors import PlatepilotError
from platepilot.labeling.crops import safe_crop_file
from platepilot.labeling.session import LabelSession

STATIC = Path(__file__).parent / "static"
_STATIC_FILES = {"app.js": "text/javascript", "style.css": "text/css"}
_SHARED_FILES = {"api.js": "text/javascript"}  # in STATIC, served to every page (the dashboard too)


def add_page_routes(app: FastAPI, folder: Path) -> None:
    """`/` serves `folder`/index.html and `/static/<name>` its app.js and style.css, and the pages' shared
    api.js, nothing else."""

    @app.get("/")
    def index() -> FileResponse:
        return FileResponse(folder / "index.html", media_type="text/html")

    @app.get("/static/{name}")
    def static(name: str) -> FileResponse:
        if name in _SHARED_FILES:
            return FileResponse(STATIC / name, media_type=_SHARED_FILES[name])
        if name not in _STATIC_FILES:
            raise HTTPException(status_code=404)
        return FileResponse(folder / name, media_type=_STATIC_FILES[name])


TOKEN_COOKIE = "platepilot_token"
TOKEN_HEADER = "x-platepilot-token"
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


class SaveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client: str = Field(default="", max_length=64)
    rel: str = Field(min_length=1, max_length=4096)
    text: str = Field(min_length=1, max_length=32)


class QuitBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client: str = Field(default="", max_length=64)


class LocalGuard(BaseHTTPMiddleware):
    """The rule of every platepilot web page (the module docstring says why): a loopback Host without a
    `token`, else the token on every request; JSON-only writes; no caching, no MIME sniffing."""

    def __init__(self, app: Any, token: str | None) -> None:
        super().__init__(app)
        self.token = token

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        if self.token is None:
            host = (request.headers.get("host") or "").rsplit(":", 1)[0]
            if host not in LOOPBACK_NAMES:
                return JSONResponse({"error": "this server answers on 127.0.0.1 only"}, status_code=403)
        else:
            given = (
                request.query_params.get("token")
                or request.headers.get(TOKEN_HEADER)
                or request.cookies.get(TOKEN_COOKIE)
                or ""
            )
            if not secrets.compare_digest(given.encode(), self.token.encode()):
                return JSONResponse({"error": "missing or wrong token: open the URL printed at start"}, 401)
        if request.method == "POST" and request.headers.get("content-type", "") != "application/json":
            return JSONResponse({"error": "send JSON"}, status_code=415)
        response = await call_next(request)
        if self.token is not None and request.query_params.get("token"):
            response.set_cookie(TOKEN_COOKIE, self.token, httponly=True, samesite="strict")
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def create_app(session: LabelSession, token: str | None = None) -> FastAPI:
    """The app serving `session`; `token` None means loopback only, else every request must carry it."""
    app = FastAPI(title="platepilot labeling", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(LocalGuard, token=token)

    def fail(exc: PlatepilotError, status: int = 400) -> HTTPException:
        return HTTPException(status_code=status, detail=str(exc))

    add_page_routes(app, STATIC)

    @app.get("/crops/{rel:path}")
    def crop(rel: str) -> FileResponse:
        target = safe_crop_file(session.crops_dir, rel)
        if target is None:
            raise HTTPException(status_code=404, detail="not a crop under --crops-dir")
        return FileResponse(target)

    @app.get("/api/next")
    def next_item(client: str = "", after: str | None = None) -> dict[str, Any]:
        item = session.next_item(client, after)
        return {"item": None if item is None else item.to_json(), "progress": session.progress()}

    @app.get("/api/item")
    def get_item(rel: str) -> dict[str, Any]:
        try:
            item = session.item(rel)
        except PlatepilotError as exc:
            raise fail(exc, 404) from None
        return {"item": item.to_json(), "progress": session.progress()}

    @app.post("/api/save")
    def save(body: SaveBody) -> dict[str, Any]:
        try:
            result = session.save(body.rel, body.text, body.client)
        except PlatepilotError as exc:
            raise fail(exc) from None
        return {"line": result.line, "item": result.item.to_json(), "progress": session.progress()}

    @app.post("/api/quit")
    def quit_server(body: QuitBody) -> dict[str, Any]:
        session.quit()
        return {"stopped": True, "progress": session.progress()}

    return app
