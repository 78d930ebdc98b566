"""``GET /images/<name>``: covers and artist images from the daemon's own cache.

A name is a hash of the upstream URL (``services/image_cache.local_image_url``): the bytes
behind it never change, so the browser may keep them for a year. An image not in the cache
(never downloaded, refused, or evicted) is a placeholder, which the browser asks for again
next time, so the real one shows once the daemon has it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp import web

from musiqued.services.image_cache import LOCAL_PREFIX, NAME, ImageCache
from musiqued.upstream.images import image_type

PLACEHOLDER = Path(__file__).resolve().parent / "static" / "placeholder.svg"
CACHED = "private, max-age=31536000, immutable"


class ImageRoutes:
    def __init__(self, cache: ImageCache) -> None:
        self._cache = cache

    def routes(self) -> list[web.AbstractRouteDef]:
        return [web.get(LOCAL_PREFIX + "{name}", self.image)]

    async def image(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        path = self._cache.path_of(name) if NAME.match(name) else None
        etag = f'"{name}"'
        if path is not None and request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag, "Cache-Control": CACHED})
        body = await asyncio.to_thread(_read, path) if path is not None else None
        content_type = image_type(body[:16]) if body else None
        if body is None or content_type is None:
            return web.FileResponse(
                PLACEHOLDER,
                headers={"Cache-Control": "no-cache", "Content-Type": "image/svg+xml"},
            )
        return web.Response(
            body=body, content_type=content_type, headers={"ETag": etag, "Cache-Control": CACHED}
        )


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None
