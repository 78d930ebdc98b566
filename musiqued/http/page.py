"""The Settings page and the library's pages: static files shipped in the package, no build
step, no CDN.

``GET /`` and ``GET /settings`` (the original's path) serve the Settings page, ``GET
/library`` the library's (Overview, Top, Album, Artist, History, Year in review), or only its
login form while the browser has no session (bearer tokens are for scripts, not pages).
``/static/`` serves the pages' scripts and styles. Everything it shows comes from the JSON API and the WebSocket.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from musiqued.http.guard import Guard

STATIC_DIR = Path(__file__).resolve().parent / "static"


class Page:
    def __init__(self, guard: Guard) -> None:
        self._guard = guard

    def routes(self) -> list[web.AbstractRouteDef]:
        return [
            web.get("/", self.index),
            web.get("/settings", self.index),
            web.get("/library", self.library),
            web.get("/favicon.svg", self.favicon),
            web.static("/static", STATIC_DIR, append_version=False),
        ]

    async def index(self, request: web.Request) -> web.FileResponse:
        name = "index.html" if self._guard.has_session(request) else "login.html"
        # Which of the two "/" is depends on the cookie: never cache it.
        return web.FileResponse(STATIC_DIR / name, headers={"Cache-Control": "no-store"})

    async def library(self, request: web.Request) -> web.FileResponse:
        """The library's pages (one document; the view is in the URL's fragment)."""
        name = "library.html" if self._guard.has_session(request) else "login.html"
        return web.FileResponse(STATIC_DIR / name, headers={"Cache-Control": "no-store"})

    async def favicon(self, _: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC_DIR / "favicon.svg")
