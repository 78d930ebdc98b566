"""A simulated Last.fm web service (aiohttp) speaking the real JSON API, plus an admin API.

API (``/2.0/``, GET or POST, ``format=json``): ``user.getRecentTracks``, ``user.getInfo``,
``album.getInfo``, ``auth.getToken``, ``auth.getSession``; error bodies as Last.fm sends
them: 10 invalid key, 26 suspended key, 6 user not found / invalid parameters, 13 bad
signature, 9 bad session, 17 private profile (unless a valid session key signs the call),
4/14/15 bad, unapproved or expired token, 29 rate limit. ``/api/auth/?api_key=K&token=T`` is
the page a user opens to approve a token (the simulator approves it). ``album.getInfo``'s
images point at the simulator itself, which serves real PNG bytes at ``/i/u/<size>/<name>``
(``sim/images.py``). Without
``format=json`` the ``auth.*`` methods answer in Last.fm's XML (``sim/lastfm_xml.py``), as
Last.fm does: that is what pylast reads. Served over HTTPS as well when given a certificate
(``sim/server.py``), since pylast speaks only HTTPS.

Admin API (JSON, under ``/admin/``, in ``sim/admin.py``) for tests and demos:

=======  =====================  ==========================================================
GET      /admin/stats           request counts per method and per outcome (``ok``, fault
                                kinds, ``error:N``, ``rate_limited``)
GET      /admin/scrobbles       the whole history, newest first
POST     /admin/scrobbles       ``{n, at?, back_days?}`` or ``{scrobbles: [rows]}``: add
POST     /admin/now_playing     ``{artist, title, album?}``; DELETE clears it
POST     /admin/faults          ``{rate?, kinds?, burst?, slow_seconds?, seed?}``: random
                                faults; ``{force: KIND, count?, page?}``: the next ``count``
                                requests (of that recent-tracks page) fail; ``{clear: true}``
POST     /admin/reset           ``{size, seed?}``: a new generated history
POST     /admin/settings        ``{private?, suspended?, rate_limit?, max_limit?, ...}``
=======  =====================  ==========================================================

All state lives in ``LastfmSim`` behind one lock, so tests may also call its methods directly
from another thread while the server runs (``tests/fixtures/lastfm.py`` does).
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import socket
import struct
import threading
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from musiqued.models import Scrobble
from musiqued.sim import lastfm_xml, render
from musiqued.sim.admin import admin_routes
from musiqued.sim.faults import Faults, RateLimit
from musiqued.sim.history import History, Track, TrackBuilder, total_pages
from musiqued.sim.images import image_response
from musiqued.sim.pagefaults import PAGE_FAULTS, spoil

API_PATH = "/2.0/"
IMAGE_PATH = "/i/u"  # as Last.fm's image host: /i/u/<size>/<name>
_ERRORS = {
    4: (403, "Invalid authentication token supplied"),
    6: (404, "User not found"),
    8: (500, "Operation failed - Most likely the backend service failed. Please try again."),
    9: (403, "Invalid session key - Please re-authenticate"),
    10: (403, "Invalid API key - You must be granted a valid key by last.fm"),
    11: (503, "Service Offline - This service is temporarily offline. Try again later."),
    13: (403, "Invalid method signature supplied"),
    14: (403, "Unauthorized Token - This token has not been authorized"),
    15: (403, "This token has expired"),
    16: (503, "There was a temporary error processing your request. Please try again"),
    17: (403, "Login: User required to be logged in"),
    26: (
        403,
        "Suspended API key - Access for your account has been suspended, please contact Last.fm",
    ),
    29: (429, "Rate Limit Exceeded - Your IP has made too many requests in a short period"),
}


@dataclass(frozen=True)
class Settings:
    api_key: str = "simkey"
    api_secret: str = "simsecret"  # noqa: S105 (the simulator's well-known test secret)
    username: str = "simuser"
    private: bool = False  # recent tracks need a session key (error 17 otherwise)
    suspended: bool = False  # the API key answers 26
    rate_limit: float = 0.0  # requests per second before answering 29; 0: no limit
    max_limit: int = 1000  # largest ``limit`` accepted
    limit_refusal: str = "error"  # above max_limit: "error" (6) or "clamp" (served at max)
    attr_position: str = "mixed"  # "first", "last", or "mixed" (after track on even pages)
    auto_approve: bool = True  # tokens are approved without visiting /api/auth/
    token_lifetime: float = 3600.0  # seconds a web-auth token can be exchanged (error 15 after)
    # Rendered recent-tracks pages kept, in MB, and served again from memory when asked again
    # (same window, page, size and shape, history unchanged); 0: every answer is rendered.
    # For benchmarks: Last.fm's own CPU is not on its client's machine, this simulator's is.
    page_cache_mb: int = 0


def api_signature(params: dict[str, str], secret: str) -> str:
    """Last.fm's ``api_sig``: md5 of the sorted key+value pairs, then the secret."""
    text = "".join(
        f"{key}{params[key]}"
        for key in sorted(params)
        if key not in ("format", "callback", "api_sig")
    )
    return hashlib.md5((text + secret).encode("utf-8")).hexdigest()


def wants_xml(params: dict[str, str]) -> bool:
    """Last.fm answers XML unless ``format=json`` is asked; the simulator does so for auth."""
    return params.get("method", "").lower().startswith("auth.") and params.get("format") != "json"


@dataclass
class _Token:
    issued_at: float
    approved: bool


class ApiError(Exception):
    def __init__(self, code: int, message: str | None = None, status: int | None = None) -> None:
        default_status, default_message = _ERRORS.get(code, (400, "Invalid parameters"))
        super().__init__(message or default_message)
        self.code = code
        self.message = message or default_message
        self.status = status if status is not None else default_status


class PageCache:
    """Rendered pages by key, the least recently used dropped past a size in bytes."""

    def __init__(self) -> None:
        self._bodies: OrderedDict[tuple[Any, ...], bytes] = OrderedDict()
        self._size = 0

    def get(self, key: tuple[Any, ...]) -> bytes | None:
        body = self._bodies.get(key)
        if body is not None:
            self._bodies.move_to_end(key)
        return body

    def put(self, key: tuple[Any, ...], body: bytes, limit: int) -> None:
        self._bodies[key] = body
        self._size += len(body)
        while self._size > limit and self._bodies:
            _, dropped = self._bodies.popitem(last=False)
            self._size -= len(dropped)

    def clear(self) -> None:
        self._bodies.clear()
        self._size = 0


class LastfmSim:
    """The simulated service's state and request handling; every method is thread-safe."""

    def __init__(self, history: History | None = None, settings: Settings | None = None) -> None:
        self.lock = threading.RLock()
        self.history = history if history is not None else History()
        self.settings = settings or Settings()
        self.faults = Faults()
        self.rate_limit = RateLimit(self.settings.rate_limit)
        self.now_playing: Track | None = None
        self.stats: Counter[str] = Counter()
        self._tokens: dict[str, _Token] = {}
        self._sessions: dict[str, str] = {}
        self._builder = TrackBuilder()
        self._add_seq = 0
        self._pages = PageCache()
        self.registered = int(time.time()) - 20 * 365 * 86400

    # -- control (thread-safe) -----------------------------------------------------------

    @classmethod
    def from_file(cls, path: Path, settings: Settings | None = None) -> LastfmSim:
        history, extras = History.load(path)
        settings = settings or Settings()
        if extras.get("username"):
            settings = replace(settings, username=str(extras["username"]))
        sim = cls(history, settings)
        now_playing = extras.get("now_playing_track")
        if isinstance(now_playing, Track):
            sim.now_playing = now_playing
        elif isinstance(extras.get("now_playing"), dict):
            sim.now_playing = sim._builder.track(extras["now_playing"])
        return sim

    def reset(self, size: int, seed: int = 1, end: int | None = None) -> None:
        history = History.generate(seed, size, end)
        with self.lock:
            self.history = history
            self.now_playing = None
            self.stats.clear()
            self._pages.clear()

    def configure(self, **changes: Any) -> Settings:
        known = {f.name for f in fields(Settings)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown settings {unknown}")
        with self.lock:
            self.settings = replace(self.settings, **changes)
            # Pages kept stay good unless a setting that shapes them changed (or none are
            # to be kept any more).
            if set(changes) - {"page_cache_mb"} or not self.settings.page_cache_mb:
                self._pages.clear()
            if "rate_limit" in changes:
                self.rate_limit.set(float(changes["rate_limit"]))
            return self.settings

    def add_scrobbles(
        self, n: int = 1, at: int | None = None, back_days: float = 0
    ) -> list[Scrobble]:
        """``n`` listens of tracks from the catalog, the newest at ``at - back_days``."""
        newest = int(at if at is not None else time.time()) - int(back_days * 86400)
        added: list[Scrobble] = []
        with self.lock:
            catalog = self.history.catalog or [
                self._builder.track({"artist": "Simulated Artist", "title": "Simulated Track"})
            ]
            for i in range(n):
                timestamp = newest - (n - 1 - i) * 30
                for _ in range(len(catalog)):
                    self._add_seq += 1
                    track = catalog[(self._add_seq * 7919) % len(catalog)]
                    if self.history.add(timestamp, track):
                        added.append(track.scrobble(timestamp))
                        break
            self._pages.clear()
        return added

    def add_rows(self, rows: list[dict[str, Any]], *, twins: bool = False) -> list[Scrobble]:
        """Listens given as rows (``timestamp, artist, title, album?, *_mbid?, loved?``);
        ``twins``: kept even beside a listen of the same track in the same second."""
        added = []
        with self.lock:
            for row in rows:
                track = self._builder.track(row)
                if self.history.add(int(row["timestamp"]), track, twin=twins):
                    added.append(track.scrobble(int(row["timestamp"])))
            self._pages.clear()
        return added

    def set_now_playing(self, artist: str, title: str, album: str = "") -> None:
        with self.lock:
            self.now_playing = self._builder.track(
                {"artist": artist, "title": title, "album": album}
            )

    def clear_now_playing(self) -> None:
        with self.lock:
            self.now_playing = None

    def scrobbles(self) -> list[Scrobble]:
        with self.lock:
            return self.history.scrobbles()

    def expected(self) -> set[tuple[int, str, str]]:
        with self.lock:
            return self.history.identities()

    def approve(self, token: str) -> bool:
        with self.lock:
            if token not in self._tokens:
                return False
            self._tokens[token].approved = True
            return True

    def stats_dict(self) -> dict[str, Any]:
        with self.lock:
            return {"counts": dict(self.stats), "scrobbles": len(self.history)}

    # -- the API -------------------------------------------------------------------------

    def handle(
        self,
        params: dict[str, str],
        *,
        count: bool = True,
        page_fault: str | None = None,
        image_base: str = render.IMAGE_BASE,
    ) -> tuple[int, bytes]:
        """Answer one API call: HTTP status and body; ``page_fault`` breaks a recent-tracks
        page's content (``sim/pagefaults.py``); ``album.getInfo``'s images are under
        ``image_base`` (the simulator's own ``/i/u/`` as its server answers)."""
        with self.lock:
            method = params.get("method", "").lower()
            xml = wants_xml(params)
            try:
                body = self._dispatch(method, params, page_fault, image_base)
            except ApiError as exc:
                outcome = f"error:{exc.code}"
                status = exc.status
                body = (lastfm_xml.failed if xml else render.error)(exc.code, exc.message)
            else:
                outcome, status = "ok", 200
            if count:
                self.stats[f"method:{method}"] += 1
                self.stats[outcome] += 1
                if xml:
                    self.stats["xml"] += 1
            return status, body

    def _dispatch(
        self, method: str, params: dict[str, str], page_fault: str | None, image_base: str
    ) -> bytes:
        settings = self.settings
        if params.get("api_key") != settings.api_key:
            raise ApiError(10)
        if settings.suspended:
            raise ApiError(26)
        session_user = self._check_signature(params)
        if method == "auth.gettoken":
            token = secrets.token_hex(16)
            self._tokens[token] = _Token(time.time(), settings.auto_approve)
            return _auth_answer(params, {"token": token})
        if method == "auth.getsession":
            return self._get_session(params)
        if method == "user.getrecenttracks":
            self._check_user(params, session_user, private_applies=True)
            return self._recent_tracks(params, page_fault)
        if method == "user.getinfo":
            self._check_user(params, session_user, private_applies=False)
            return render.user_info(
                settings.username, len(self.history), self.registered, self._counts()
            )
        if method == "album.getinfo":
            album = self.history.find_album(params.get("artist", ""), params.get("album", ""))
            if album is None:
                raise ApiError(6, "Album not found")
            return render.album_info(album, image_base=image_base)
        raise ApiError(3, "Invalid Method - No method with that name in this package", 400)

    def _check_signature(self, params: dict[str, str]) -> str | None:
        """The user a valid session key belongs to, if the call is signed with one."""
        needs_sig = "sk" in params or params.get("method", "").lower() == "auth.getsession"
        if "api_sig" not in params and not needs_sig:
            return None
        if params.get("api_sig") != api_signature(params, self.settings.api_secret):
            raise ApiError(13)
        if "sk" not in params:
            return None
        user = self._sessions.get(params["sk"])
        if user is None:
            raise ApiError(9)
        return user

    def _check_user(
        self, params: dict[str, str], session_user: str | None, *, private_applies: bool
    ) -> None:
        user = params.get("user", "")
        if not user:
            raise ApiError(6, "Invalid parameters - user is required", 400)
        if user.casefold() != self.settings.username.casefold():
            raise ApiError(6)
        if private_applies and self.settings.private and session_user is None:
            raise ApiError(17)

    def _get_session(self, params: dict[str, str]) -> bytes:
        token = self._tokens.get(params.get("token", ""))
        if token is None:
            raise ApiError(4)
        if time.time() - token.issued_at >= self.settings.token_lifetime:
            del self._tokens[params["token"]]
            raise ApiError(15)
        if not token.approved:
            raise ApiError(14)
        del self._tokens[params["token"]]
        key = secrets.token_hex(16)
        self._sessions[key] = self.settings.username
        return _auth_answer(
            params, {"session": {"name": self.settings.username, "key": key, "subscriber": 0}}
        )

    def _recent_tracks(self, params: dict[str, str], page_fault: str | None = None) -> bytes:
        settings = self.settings
        try:
            limit = int(params.get("limit", "50"))
            page = int(params.get("page", "1"))
            from_ts = int(params["from"]) if params.get("from") else None
            to_ts = int(params["to"]) if params.get("to") else None
        except ValueError:
            raise ApiError(
                6, "Invalid parameters - page, limit, from and to are integers", 400
            ) from None
        if limit < 1 or page < 1:
            raise ApiError(6, "Invalid parameters - page and limit start at 1", 400)
        if limit > settings.max_limit:
            if settings.limit_refusal == "error":
                raise ApiError(
                    6, f"Invalid parameters - limit must be between 1 and {settings.max_limit}", 400
                )
            limit = settings.max_limit
        extended = params.get("extended", "0") in ("1", "true")
        start, stop = self.history.window(from_ts, to_ts)
        total = stop - start
        first = min(stop, start + (page - 1) * limit)
        # The now-playing entry and a spoiled page are never kept; anything else that shapes
        # the body is in the key (the history's and the settings' changes clear the cache).
        key = None
        if settings.page_cache_mb and page_fault is None and self.now_playing is None:
            key = (id(self.history), len(self.history), start, stop, limit, page, extended)
            kept = self._pages.get(key)
            if kept is not None:
                self.stats["pages_from_memory"] += 1
                return kept
        entries: list[tuple[int | None, Track]] = []
        if self.now_playing is not None:
            entries.append((None, self.now_playing))
        entries.extend(self.history.slice(first, min(stop, first + limit)))
        attr_last = settings.attr_position == "last" or (
            settings.attr_position == "mixed" and page % 2 == 0
        )
        spoiler: render.Spoiler | None = None
        if page_fault is not None:
            coin = self.faults.coin()

            def spoiler(
                tracks: list[dict[str, Any]], attr: dict[str, Any]
            ) -> tuple[Any, dict[str, Any]]:
                return spoil(page_fault, tracks, attr, coin=coin)

        body = render.recent_tracks(
            entries,
            user=settings.username,
            page=page,
            per_page=limit,
            total=total,
            total_pages=total_pages(total, limit),
            extended=extended,
            attr_last=attr_last,
            spoil=spoiler,
        )
        if key is not None:
            self._pages.put(key, body, settings.page_cache_mb << 20)
        return body

    def _counts(self) -> dict[str, int]:
        catalog = self.history.catalog
        return {
            "artists": len({t.artist.name.casefold() for t in catalog}),
            "albums": len(self.history.albums),
            "tracks": len(catalog),
        }

    # -- faults --------------------------------------------------------------------------

    def draw_fault(self, params: dict[str, str] | None = None) -> str | None:
        """The fault (if any) for a request with ``params``: rate limit, forced, random."""
        with self.lock:
            self.stats["requests"] += 1
        if not self.rate_limit.allow():
            with self.lock:
                self.stats["rate_limited"] += 1
            return "rate_limited"
        params = params or {}
        raw_page = params.get("page", "1")
        page = int(raw_page) if raw_page.isdecimal() else None
        kind = self.faults.draw(params.get("method", "").lower(), page)
        if kind is not None:
            with self.lock:
                self.stats[f"fault:{kind}"] += 1
        return kind


def _auth_answer(params: dict[str, str], data: dict[str, Any]) -> bytes:
    """An ``auth.*`` answer in the format asked: JSON with ``format=json``, else XML."""
    return lastfm_xml.ok(data) if wants_xml(params) else orjson.dumps(data)


# -- HTTP ----------------------------------------------------------------------------------

SIM_KEY: web.AppKey[LastfmSim] = web.AppKey("lastfm_sim", LastfmSim)
_JSON = "application/json"


def _json(body: bytes, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, content_type=_JSON, charset="utf-8")


async def _params(request: web.Request) -> dict[str, str]:
    params = dict(request.query)
    if request.method == "POST":
        form = await request.post()
        params.update({k: str(v) for k, v in form.items()})
    return params


def _reset_connection(request: web.Request) -> None:
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # SO_LINGER 0: close() sends a TCP RST, which the client sees as a reset.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def api(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIM_KEY]
    params = await _params(request)
    fault = sim.draw_fault(params)
    if fault == "slow":
        await asyncio.sleep(sim.faults.plan.slow_seconds)
        fault = None
    if fault in PAGE_FAULTS:
        status, body = sim.handle(params, page_fault=fault)
        return _json(body, status)
    if fault is not None:
        return await _faulty(request, sim, fault, params)
    status, body = sim.handle(params, image_base=f"{request.url.origin()}{IMAGE_PATH}")
    if wants_xml(params):
        return web.Response(
            body=body, status=status, content_type=lastfm_xml.CONTENT_TYPE, charset="utf-8"
        )
    return _json(body, status)


async def _faulty(
    request: web.Request, sim: LastfmSim, fault: str, params: dict[str, str]
) -> web.StreamResponse:
    if fault in ("rate_limited", "error29"):
        return _json(render.error(29, _ERRORS[29][1]), 429)
    if fault == "http500":
        return _json(render.error(8, _ERRORS[8][1]), 500)
    if fault == "http502":
        html = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
        return web.Response(body=html, status=502, content_type="text/html")
    if fault == "http503":
        return web.Response(body=b"", status=503, content_type="text/html")
    if fault in ("error8", "error11", "error16"):
        code = int(fault[5:])
        status = 200 if sim.faults.coin() else _ERRORS[code][0]
        return _json(render.error(code, _ERRORS[code][1]), status)
    if fault == "errorbody":
        return _json(b'{"error":"x"}')
    if fault == "malformed":
        _, body = sim.handle(params, count=False)
        choice = sim.faults.coin(), sim.faults.coin()
        if choice[0]:
            return _json(body[: max(1, len(body) // 2)])
        if choice[1]:
            return web.Response(body=b"<html><body>Error</body></html>", content_type="text/html")
        return _json(b"")
    # reset
    _reset_connection(request)
    return web.Response(status=500)  # never sent: the connection is already gone


async def auth_page(request: web.Request) -> web.Response:
    """The page a user opens to let the application use their account."""
    sim = request.app[SIM_KEY]
    token = request.query.get("token", "")
    if request.query.get("api_key") != sim.settings.api_key or not sim.approve(token):
        return web.Response(text="Invalid API key or token", status=400)
    return web.Response(
        text="<html><body>Application authenticated: you may close this page.</body></html>",
        content_type="text/html",
    )


async def image(request: web.Request) -> web.Response:
    """An image's bytes at the URL ``album.getInfo`` gave (``/i/u/<size>/<name>``)."""
    return image_response(request.match_info["name"])


def make_app(sim: LastfmSim) -> web.Application:
    app = web.Application()
    app[SIM_KEY] = sim
    app.router.add_route("GET", API_PATH, api)
    app.router.add_route("POST", API_PATH, api)
    app.router.add_get("/api/auth/", auth_page)
    app.router.add_get(IMAGE_PATH + "/{size}/{name}", image)
    app.router.add_routes(admin_routes(sim))
    return app
