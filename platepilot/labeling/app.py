"""The labeling web app: one HTML page, a small JSON API over `LabelSession`, and the crop images.

Safety: only files under `--crops-dir` are served (`safe_crop_file` refuses `..`, absolute paths and
symlinks leading out). With a `token` (any `--host` other than loopback) every request needs it, as
`?token=` once (then a cookie named for that token, so two servers on one host keep theirs), or the
`X-Platepilot-Token` header. Without one, requests must name a loopback Host, which stops other web
sites from reaching the server through DNS rebinding; writes must be JSON, which browsers do not send
across sites without permission. Pages may not be framed (clickjacking: a hidden frame under a decoy
button removed a watchlist entry), and a browser request another site makes (`Sec-Fetch-Site:
cross-site`, or a foreign `Origin`) is refused, but for opening a page: an `<img>` on another site
could otherwise reserve every crop (`/api/next`).
"""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from platepilot.errors import PlatepilotError
from platepilot.labeling.crops import safe_crop_file
from platepilot.labeling.server import is_loopback
from platepilot.labeling.session import LabelConflict, LabelSession

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


def token_cookie(token: str) -> str:
    """The cookie that carries `token`: named for it, so the dashboard's and a labeling server's on one
    host (cookies ignore ports) do not overwrite each other."""
    return f"{TOKEN_COOKIE}_{hashlib.sha256(token.encode()).hexdigest()[:8]}"


def _cross_site(request: Request) -> bool:
    """A browser request another web site made (not opening one of our pages). The browser's own
    `Sec-Fetch-Site` decides; `Origin` against the Host (or a proxy's `X-Forwarded-Host`) only where a
    browser sends no such header: a reverse proxy rewrites Host, never the browser's verdict."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site == "cross-site" and not (
            request.method == "GET" and request.headers.get("sec-fetch-mode") == "navigate"
        )
    origin = request.headers.get("origin")
    hosts = {request.headers.get("host"), request.headers.get("x-forwarded-host")}
    return origin is not None and origin.split("://", 1)[-1] not in hosts


class SaveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client: str = Field(default="", max_length=64)
    rel: str = Field(min_length=1, max_length=4096)
    text: str = Field(min_length=1, max_length=32)
    shown: str | None = Field(default=None, max_length=32)  # the label the page showed ('' none); None: unchecked


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
            if not is_loopback(host):
                return JSONResponse({"error": "this server answers on loopback (127.0.0.1) only"}, status_code=403)
        else:
            given = (
                request.query_params.get("token")
                or request.headers.get(TOKEN_HEADER)
                or request.cookies.get(token_cookie(self.token))
                or ""
            )
            if not secrets.compare_digest(given.encode(), self.token.encode()):
                return JSONResponse({"error": "missing or wrong token: open the URL printed at start"}, 401)
        if _cross_site(request):
            return JSONResponse({"error": "requests from other web sites are refused"}, status_code=403)
        if request.method == "POST" and request.headers.get("content-type", "") != "application/json":
            return JSONResponse({"error": "send JSON"}, status_code=415)
        response = await call_next(request)
        if self.token is not None and request.query_params.get("token"):
            response.set_cookie(token_cookie(self.token), self.token, httponly=True, samesite="strict")
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Content-Security-Policy"] = "frame-ancestors 'none'"
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
            result = session.save(body.rel, body.text, body.client, body.shown)
        except LabelConflict as exc:
            raise fail(exc, 409) from None
        except PlatepilotError as exc:
            raise fail(exc) from None
        return {"line": result.line, "item": result.item.to_json(), "progress": session.progress()}

    @app.post("/api/quit")
    def quit_server(body: QuitBody) -> dict[str, Any]:
        session.quit()
        return {"stopped": True, "progress": session.progress()}

    return app
