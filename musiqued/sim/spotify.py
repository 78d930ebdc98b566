"""A simulated Spotify Web API: the client-credentials token endpoint and ``search``.

``POST /api/token`` (``grant_type=client_credentials``, HTTP Basic ``client_id:client_secret``)
answers ``{access_token, token_type, expires_in}``; ``GET /v1/search?q=…&type=album|artist``
answers Spotify's paging object (``{"albums": {href, items, limit, next, offset, previous,
total}}``) with full simplified album / artist objects. Any album or artist exists: results
are derived from the query, deterministically. Each search returns several candidates and
the right one is never first (a tribute band, a live album, a compilation by "Various
Artists" come before it), so a client has to pick by names rather than take the first hit.
``missing`` albums and artists only get the decoys.

Admin API (JSON): ``GET /admin/stats``, ``GET /admin/requests`` (recent requests with their
monotonic time and status), ``POST /admin/faults`` (see ``webfaults.admin_faults``),
``POST /admin/missing {albums: [[artist, title]], artists: [name]}``. Images point at the
simulator itself, which serves real PNG bytes at ``/image/<id><size>`` (``sim/images.py``).
"""

from __future__ import annotations

import base64
import hashlib
import random
import re
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import orjson
from aiohttp import web

from musiqued.sim.images import image_response
from musiqued.sim.webfaults import ServiceFaults, admin_faults, fault_response

API_PREFIX = "/v1/"
TOKEN_PATH = "/api/token"  # noqa: S105 (a path, not a password)
_FILTER = re.compile(r'(\w+):"([^"]*)"|(\w+):(\S+)')
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def spotify_id(*parts: str) -> str:
    """A stable 22-character base62 id, like Spotify's."""
    number = int.from_bytes(hashlib.sha256("\x1f".join(parts).encode()).digest()[:17], "big")
    chars = []
    for _ in range(22):
        number, digit = divmod(number, 62)
        chars.append(_ALPHABET[digit])
    return "".join(chars)


IMAGE_HOST = "https://i.scdn.co"


def image_url(item_id: str, size: int, base: str = IMAGE_HOST) -> str:
    return f"{base}/image/{item_id}{size:04d}"


def parse_query(q: str) -> tuple[dict[str, str], str]:
    """Field filters (``album:"X" artist:Y``) and the remaining free text."""
    filters: dict[str, str] = {}
    for match in _FILTER.finditer(q):
        key = (match.group(1) or match.group(3)).lower()
        filters[key] = match.group(2) if match.group(1) else match.group(4)
    return filters, _FILTER.sub(" ", q).strip()


@dataclass(frozen=True, slots=True)
class Credentials:
    client_id: str = "simclient"
    client_secret: str = "simclientsecret"  # noqa: S105 (the simulator's own)


class SpotifySim:
    """The simulated service's state; every method is thread-safe."""

    def __init__(
        self, credentials: Credentials | None = None, token_ttl: int = 3600, base_url: str = ""
    ) -> None:
        self.credentials = credentials or Credentials()
        self.token_ttl = token_ttl
        self.base_url = base_url
        self.faults = ServiceFaults()
        self._lock = threading.Lock()
        self._tokens: dict[str, float] = {}
        self.missing_albums: set[tuple[str, str]] = set()
        self.missing_artists: set[str] = set()
        self.requests: deque[dict[str, Any]] = deque(maxlen=5000)
        self.images: list[Any] | None = None
        """When set, every item's ``images`` (hostile answers: sizes that are not numbers,
        ``javascript:`` URLs)."""

    # -- what tests look at ----------------------------------------------------------------

    @staticmethod
    def album_id(artist: str, title: str) -> str:
        """The id of the right album for (artist, title)."""
        return spotify_id("album", artist.casefold(), title.casefold())

    @staticmethod
    def artist_id(name: str) -> str:
        return spotify_id("artist", name.casefold())

    @classmethod
    def album_image(cls, artist: str, title: str, base: str = IMAGE_HOST) -> str:
        """The largest image of the right album, as a simulator at ``base`` answers it."""
        return image_url(cls.album_id(artist, title), 640, base)

    @classmethod
    def artist_image(cls, name: str, base: str = IMAGE_HOST) -> str:
        return image_url(cls.artist_id(name), 640, base)

    def set_missing(
        self, albums: list[tuple[str, str]] | None = None, artists: list[str] | None = None
    ) -> None:
        with self._lock:
            self.missing_albums = {(a.casefold(), t.casefold()) for a, t in albums or []}
            self.missing_artists = {a.casefold() for a in artists or []}

    def set_images(self, images: list[Any] | None) -> None:
        with self._lock:
            self.images = images

    def record(self, path: str, status: int) -> None:
        with self._lock:
            self.requests.append({"at": time.monotonic(), "path": path, "status": status})

    def request_log(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.requests)

    # -- token -----------------------------------------------------------------------------

    def issue_token(self, authorization: str, grant_type: str) -> tuple[int, dict[str, Any]]:
        expected = base64.b64encode(
            f"{self.credentials.client_id}:{self.credentials.client_secret}".encode()
        ).decode()
        if authorization != f"Basic {expected}":
            return 400, {"error": "invalid_client", "error_description": "Invalid client"}
        if grant_type != "client_credentials":
            return 400, {
                "error": "unsupported_grant_type",
                "error_description": "grant_type parameter is missing",
            }
        token = "BQ" + secrets.token_urlsafe(40)
        with self._lock:
            self._tokens[token] = time.time() + self.token_ttl
        return 200, {"access_token": token, "token_type": "Bearer", "expires_in": self.token_ttl}

    def check_token(self, authorization: str) -> str | None:
        """None if the bearer token is good, else Spotify's message."""
        token = authorization.removeprefix("Bearer ").strip()
        with self._lock:
            expires = self._tokens.get(token)
        if expires is None:
            return "Invalid access token"
        if expires < time.time():
            return "The access token expired"
        return None

    # -- search ----------------------------------------------------------------------------

    def search(
        self, q: str, kind: str, limit: int, offset: int, image_base: str = IMAGE_HOST
    ) -> dict[str, Any]:
        filters, text = parse_query(q)
        if kind == "album":
            items = self._album_candidates(filters.get("artist", ""), filters.get("album", text))
        else:
            items = self._artist_candidates(filters.get("artist", text))
        if image_base != IMAGE_HOST:
            items = [{**item, "images": _rebased(item["images"], image_base)} for item in items]
        page = items[offset : offset + limit]
        with self._lock:
            images = self.images
        if images is not None:
            page = [{**item, "images": images} for item in page]
        base = f"https://api.spotify.com{API_PREFIX}search"

        def href(at: int) -> str:
            return f"{base}?{urlencode({'query': q, 'type': kind, 'offset': at, 'limit': limit})}"

        more = offset + limit < len(items)
        return {
            f"{kind}s": {
                "href": href(offset),
                "items": page,
                "limit": limit,
                "next": href(offset + limit) if more else None,
                "offset": offset,
                "previous": href(max(0, offset - limit)) if offset else None,
                "total": len(items),
            }
        }

    def _album_candidates(self, artist: str, title: str) -> list[dict[str, Any]]:
        if not title:
            return []
        rng = random.Random(spotify_id("order", artist.casefold(), title.casefold()))
        decoys = [
            _album(spotify_id("va", title), title, ["Various Artists"], "compilation", rng),
            _album(
                spotify_id("live", artist, title),
                f"{title} (Live)",
                [artist or "Unknown"],
                "album",
                rng,
            ),
            _album(
                spotify_id("best", artist),
                f"The Best of {artist or title}",
                [artist or "Unknown"],
                "compilation",
                rng,
            ),
        ]
        rng.shuffle(decoys)
        with self._lock:
            missing = (artist.casefold(), title.casefold()) in self.missing_albums
        if missing or not artist:
            return decoys
        # Spotify often spells a title differently from Last.fm: case, a remaster suffix.
        shown = title.upper() if rng.random() < 0.2 else title
        if rng.random() < 0.3:
            shown = f"{shown} (Remastered {rng.randint(2001, 2022)})"
        right = _album(self.album_id(artist, title), shown, [artist], "album", rng)
        decoys.insert(rng.randint(1, len(decoys)), right)  # never first
        return decoys

    def _artist_candidates(self, name: str) -> list[dict[str, Any]]:
        if not name:
            return []
        rng = random.Random(spotify_id("order", name.casefold()))
        decoys = [
            _artist(spotify_id("tribute", name), f"{name} Tribute Band", rng),
            _artist(spotify_id("experience", name), f"The {name} Experience", rng),
        ]
        rng.shuffle(decoys)
        with self._lock:
            missing = name.casefold() in self.missing_artists
        if not missing:
            decoys.insert(rng.randint(1, len(decoys)), _artist(self.artist_id(name), name, rng))
        return decoys


def _rebased(images: list[dict[str, Any]], base: str) -> list[dict[str, Any]]:
    return [{**image, "url": base + image["url"].removeprefix(IMAGE_HOST)} for image in images]


def _images(item_id: str, sizes: tuple[int, ...]) -> list[dict[str, Any]]:
    return [{"url": image_url(item_id, s), "height": s, "width": s} for s in sizes]


def _artist_ref(name: str) -> dict[str, Any]:
    artist_id = SpotifySim.artist_id(name)
    return {
        "external_urls": {"spotify": f"https://open.spotify.com/artist/{artist_id}"},
        "href": f"https://api.spotify.com/v1/artists/{artist_id}",
        "id": artist_id,
        "name": name,
        "type": "artist",
        "uri": f"spotify:artist:{artist_id}",
    }


def _album(
    album_id: str, name: str, artists: list[str], album_type: str, rng: random.Random
) -> dict[str, Any]:
    year = rng.randint(1962, 2024)
    return {
        "album_type": album_type,
        "total_tracks": rng.randint(6, 16),
        "available_markets": ["CH", "DE", "FR", "GB", "US"],
        "external_urls": {"spotify": f"https://open.spotify.com/album/{album_id}"},
        "href": f"https://api.spotify.com/v1/albums/{album_id}",
        "id": album_id,
        "images": _images(album_id, (640, 300, 64)),
        "name": name,
        "release_date": f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        "release_date_precision": "day",
        "type": "album",
        "uri": f"spotify:album:{album_id}",
        "artists": [_artist_ref(a) for a in artists],
    }


def _artist(artist_id: str, name: str, rng: random.Random) -> dict[str, Any]:
    return {
        **_artist_ref(name),
        "id": artist_id,
        "uri": f"spotify:artist:{artist_id}",
        "followers": {"href": None, "total": rng.randint(10, 2_000_000)},
        "genres": rng.sample(["rock", "pop", "jazz", "electronic", "folk", "hip hop"], 2),
        "images": _images(artist_id, (160, 640, 320)),  # not sorted: pick the largest
        "popularity": rng.randint(1, 90),
    }


def _error(status: int, message: str) -> bytes:
    return orjson.dumps({"error": {"status": status, "message": message}})


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(data), content_type="application/json")


def make_app(sim: SpotifySim) -> web.Application:
    async def token(request: web.Request) -> web.StreamResponse:
        fault = sim.faults.draw()
        if fault is not None:
            sim.record(TOKEN_PATH, 429 if fault.kind == "429" else 599)
            return fault_response(request, fault, b'{"error": "server_error"}')
        form = await request.post()
        status, body = sim.issue_token(
            request.headers.get("Authorization", ""), str(form.get("grant_type", ""))
        )
        sim.record(TOKEN_PATH, status)
        return _json(body, status)

    async def search(request: web.Request) -> web.StreamResponse:
        fault = sim.faults.draw()
        if fault is not None:
            sim.record(request.path, 429 if fault.kind == "429" else 599)
            return fault_response(request, fault, _error(_fault_status(fault.kind), "error"))
        problem = sim.check_token(request.headers.get("Authorization", ""))
        if problem is not None:
            sim.record(request.path, 401)
            return web.Response(
                status=401, body=_error(401, problem), content_type="application/json"
            )
        query = request.query
        kind = query.get("type", "")
        if kind not in ("album", "artist") or not query.get("q"):
            sim.record(request.path, 400)
            return web.Response(
                status=400,
                body=_error(400, "Bad search type field or missing q"),
                content_type="application/json",
            )
        try:
            limit = int(query.get("limit", "20"))
            offset = int(query.get("offset", "0"))
        except ValueError:
            limit = -1
            offset = 0
        if not 1 <= limit <= 50 or offset < 0:
            sim.record(request.path, 400)
            return web.Response(
                status=400, body=_error(400, "Invalid limit"), content_type="application/json"
            )
        sim.record(request.path, 200)
        return _json(sim.search(query["q"], kind, limit, offset, str(request.url.origin())))

    async def image(request: web.Request) -> web.Response:
        return image_response(request.match_info["name"])

    async def stats(_: web.Request) -> web.Response:
        log = sim.request_log()
        return _json({"requests": len(log), "faults": dict(sim.faults.stats)})

    async def requests(_: web.Request) -> web.Response:
        return _json(sim.request_log())

    async def faults(request: web.Request) -> web.Response:
        return await admin_faults(request, sim.faults)

    async def missing(request: web.Request) -> web.Response:
        data = await request.json()
        sim.set_missing(
            [(str(a), str(t)) for a, t in data.get("albums", [])],
            [str(a) for a in data.get("artists", [])],
        )
        return _json({"status": "ok"})

    async def images(request: web.Request) -> web.Response:
        data = await request.json()
        sim.set_images(data.get("images") if isinstance(data, dict) else None)
        return _json({"status": "ok"})

    app = web.Application()
    app.router.add_post(TOKEN_PATH, token)
    app.router.add_get(f"{API_PREFIX}search", search)
    app.router.add_get("/image/{name}", image)
    app.router.add_get("/admin/stats", stats)
    app.router.add_get("/admin/requests", requests)
    app.router.add_post("/admin/faults", faults)
    app.router.add_post("/admin/missing", missing)
    app.router.add_post("/admin/images", images)
    return app


def _fault_status(kind: str) -> int:
    return {"http500": 500, "http502": 502, "http503": 503, "429": 429}.get(kind, 500)
