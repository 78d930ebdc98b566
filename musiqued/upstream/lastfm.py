"""The async Last.fm client: aiohttp, ``format=json``, orjson, one governor for every call.

Structure::

    LastfmClient.recent_tracks / playcount / album_info
        └── _call(method, params, priority)     RetryPolicy.run: backoff with jitter, 29 → penalize
              └── _attempt(...)                 one HTTP request inside ``governor.slot()``
                    └── classify(status, body)  → parsed dict, or one of our errors
    parse_recent_tracks(data)                   every wire quirk → RecentTracksPage

Web auth (``auth.getToken`` / ``auth.getSession``) is not here: it goes through pylast in a
thread (``upstream/lastfm_auth.py``), behind the same governor and ``RetryPolicy.run``, with
the same errors (``lastfm_error``). The hot path stays on this client: pylast reads XML
slowly and blocks, which an import of thousands of pages cannot afford.

Page size: ``page_size`` above 200 is tried first; if Last.fm refuses it (error 6 naming the
limit) or serves fewer per page than asked, the client settles on what was served (200 at
worst) for the rest of its life. ``page.per_page`` and ``page.total_pages`` always describe
the page actually served, so a caller plans its pages from the first answer.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from musiqued.clock import SYSTEM_CLOCK, Clock
from musiqued.config import LastfmConfig
from musiqued.errors import (
    FatalUpstreamError,
    RateLimitedError,
    TransientUpstreamError,
    UpstreamError,
)
from musiqued.models import NowPlaying, RecentTracksPage, Scrobble, web_url
from musiqued.upstream.http_errors import network_failures
from musiqued.upstream.ratelimit import Governor, Priority

if TYPE_CHECKING:
    import aiohttp

DOCUMENTED_MAX_LIMIT = 200
TRANSIENT_CODES = frozenset({8, 11, 16})
RATE_LIMIT_CODE = 29
_READ_MORE = re.compile(r'\s*<a href="[^"]*">Read more on Last\.fm</a>\.?\s*$')
_YEAR = re.compile(r"^(19|20)\d\d$")
_NO_ALBUM: dict[str, str] = {}
_IMAGE_ORDER = ("mega", "extralarge", "large", "medium", "small", "")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Retry:
    """A retry about to happen: what failed, which attempt comes next, after how long."""

    error: UpstreamError
    attempt: int
    pause: float

    def describe(self) -> str:
        """In words, for a person watching (``upstream_trouble``)."""
        return (
            f"retrying: {self.error.message} (attempt {self.attempt}, next in {self.pause:.0f} s)"
        )


RetryListener = Callable[[Retry], None]


def _nothing(_: Retry) -> None:
    return None


@dataclass(frozen=True)
class RetryPolicy:
    """How the daemon insists with Last.fm: each call here; each page of a job's window also
    after the call's attempts (``page_pauses``, ``services/window.py``)."""

    attempts: int = 6  # transient failures tolerated per call, the first try included
    rate_limited_attempts: int = 12  # 29 answers tolerated per call
    base_delay: float = 0.5
    max_delay: float = 30.0
    budget_seconds: float | None = None  # no retry starts past this (someone is waiting)
    page_pauses: tuple[float, ...] = (0.5, 2.0, 5.0, 15.0)
    """Pauses before asking again for a job's page that failed past the call's attempts, or
    came back short or with unusable entries (Last.fm does serve such pages now and then;
    asked again, it serves them whole)."""
    clock: Clock = SYSTEM_CLOCK
    """What the pauses between attempts wait on."""

    def delay(self, attempt: int) -> float:
        """Full jitter: a random pause up to base·2^attempt (capped)."""
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))

    async def run(
        self,
        attempt: Callable[[], Awaitable[T]],
        governor: Governor,
        *,
        on_retry: RetryListener = _nothing,
    ) -> T:
        """``attempt()`` until it succeeds: transient errors retried after a pause, 29 (rate
        limit) slows the governor down first; the last error is raised once the attempts or
        the budget are spent. Fatal errors are raised at once."""
        started = self.clock.monotonic()
        transient = limited = 0
        while True:
            try:
                return await attempt()
            except RateLimitedError as exc:
                limited += 1
                governor.penalize()
                pause = self.delay(min(limited, 3))
                if limited >= self.rate_limited_attempts or self._spent(started, pause):
                    raise
                error: UpstreamError = exc
            except TransientUpstreamError as exc:
                transient += 1
                pause = self.delay(transient - 1)
                if transient >= self.attempts or self._spent(started, pause):
                    raise
                error = exc
            on_retry(Retry(error, transient + limited + 1, pause))
            await self.clock.sleep(pause)

    def _spent(self, started: float, pause: float) -> bool:
        if self.budget_seconds is None:
            return False
        return self.clock.monotonic() + pause - started > self.budget_seconds


@dataclass(frozen=True, slots=True)
class AlbumInfo:
    url: str
    image_url: str | None
    wiki_summary: str | None
    release_year: int | None


def sign(params: dict[str, str], secret: str) -> str:
    """Last.fm's ``api_sig``: md5 of the sorted key+value pairs (no format/callback) + secret."""
    text = "".join(key + params[key] for key in sorted(params) if key not in ("format", "callback"))
    return hashlib.md5((text + secret).encode("utf-8")).hexdigest()


def fatal_message(code: int, message: str, username: str) -> str:
    """What a human should read for a Last.fm error that retrying will not fix."""
    if code == 6 and "user" in message.lower():
        return f"Last.fm user '{username}' not found"
    known = {
        10: "the Last.fm API key is invalid",
        26: "the Last.fm API key is suspended: contact Last.fm or use another key",
        17: "this profile hides its recent tracks: run `musiquectl lastfm login`",
        9: "the Last.fm session key is invalid or revoked: run `musiquectl lastfm login` again",
        13: "Last.fm refused the request signature: check lastfm.api_secret",
        4: "the Last.fm token is invalid: run `musiquectl lastfm login` again",
        14: "the Last.fm token was not authorised: open the URL, allow access, then retry",
        15: "the Last.fm token has expired: run `musiquectl lastfm login` again",
    }
    return known.get(code, f"Last.fm error {code}: {message}")


def lastfm_error(code: int, message: str, *, status: int | None, username: str) -> UpstreamError:
    """The error for a Last.fm error code: rate limited, transient, or fatal with its words."""
    if code == RATE_LIMIT_CODE or status == 429:
        return RateLimitedError(
            f"Last.fm rate limit ({message or 'error 29'})", status=status, upstream_code=code
        )
    if code in TRANSIENT_CODES or (status is not None and status >= 500):
        return TransientUpstreamError(
            f"Last.fm error {code}: {message}", status=status, upstream_code=code
        )
    return FatalUpstreamError(
        fatal_message(code, message, username), status=status, upstream_code=code
    )


def classify(status: int, body: bytes, username: str) -> dict[str, Any]:
    """The parsed body of a good answer; else the matching error is raised."""
    data: Any = None
    try:
        data = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        data = _lenient(body)
    if isinstance(data, dict) and "error" in data:
        raw_code = data["error"]
        if isinstance(raw_code, bool) or not isinstance(raw_code, int | str):
            raw_code = ""
        code = int(raw_code) if str(raw_code).isdecimal() else 0
        message = str(data.get("message") or "")[:500]
        if not code:
            raise TransientUpstreamError(
                f"Last.fm sent an error without a code ({_quoted(data['error'])}: {message!r})",
                kind="malformed",
                status=status,
            )
        raise lastfm_error(code, message, status=status, username=username)
    if status == 429:
        raise RateLimitedError("Last.fm rate limit (HTTP 429)", status=status)
    if 300 <= status < 400:
        raise TransientUpstreamError(
            f"Last.fm answered HTTP {status}, a redirect (not followed: check lastfm.api_url)",
            kind="redirect",
            status=status,
        )
    if status >= 500:
        raise TransientUpstreamError(f"Last.fm answered HTTP {status}", status=status)
    if not isinstance(data, dict):
        raise TransientUpstreamError(
            f"Last.fm sent a malformed body (HTTP {status}, {len(body)} bytes)",
            kind="malformed",
            status=status,
        )
    if status >= 400:
        raise FatalUpstreamError(f"Last.fm answered HTTP {status}", status=status)
    return data


def _lenient(body: bytes) -> Any:
    """``body`` read by the standard parser, or None if that fails too.

    orjson refuses a whole body for one JSON escape of a lone surrogate (``"\\ud800"``),
    which Last.fm serves for an entry now and then; the standard parser accepts it, so only
    the entries holding such text are refused (``parse_recent_tracks``), not the page.
    """
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _holds_surrogate(*texts: str) -> bool:
    """True if a text holds a lone surrogate: not valid Unicode text, which SQLite, the
    terminal and the page could not take unchanged. Only the lenient parser lets one
    through, and only the texts kept from an entry matter."""
    joined = "".join(texts)
    return not joined.isascii() and _LONE_SURROGATE.search(joined) is not None


FUTURE_SLACK_S = 86400
"""A scrobble dated more than this after now is refused (a clock gone wrong, a bad answer)."""


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _quoted(value: Any) -> str:
    """A value as a reason quotes it: short, its type visible."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


@dataclass(frozen=True, slots=True)
class _Refused:
    reason: str
    unstorable: bool = False
    """A scrobble as Last.fm holds it (blank name, timestamp out of range), not a broken
    entry."""


def _entry(entry: Any, index: int, now: float) -> Scrobble | NowPlaying | _Refused:
    """One ``track`` entry: a scrobble, the now-playing track, or why it cannot be used."""
    where = f"entry {index + 1}"
    if not isinstance(entry, dict):
        return _Refused(f"{where} is not an object ({_quoted(entry)})")
    artist = entry.get("artist")
    if not isinstance(artist, dict):
        return _Refused(f"{where}: artist is not an object ({_quoted(artist)})")
    # Extended answers name the artist in "name", the others in "#text".
    raw_artist = artist.get("name") if "name" in artist else artist.get("#text")
    artist_name = _text(raw_artist)
    title = _text(entry.get("name"))
    album = entry.get("album") or _NO_ALBUM
    if not isinstance(album, dict):
        album = _NO_ALBUM
    album_title = _text(album.get("#text")) or ""
    mbids = (
        _text(artist.get("mbid")) or "",
        _text(album.get("mbid")) or "",
        _text(entry.get("mbid")) or "",
    )
    urls = (web_url(entry.get("url")) or "", web_url(artist.get("url")) or "")
    if _holds_surrogate(artist_name or "", title or "", album_title, *mbids, *urls):
        # Last.fm holds the scrobble so: fetching it again never gives valid text.
        return _Refused(
            f"{where}: text holding a lone surrogate ({_quoted(entry.get('name'))})",
            unstorable=True,
        )
    date = entry.get("date")
    if date is None:
        playing = entry.get("@attr")
        if index == 0 and isinstance(playing, dict) and playing.get("nowplaying") == "true":
            return NowPlaying(artist_name or "", title or "", album_title, now)
        return _Refused(f"{where}: no date ({_quoted(artist_name)} – {_quoted(title)})")
    if not artist_name or not artist_name.strip():
        return _Refused(
            f"{where}: no artist name ({_quoted(raw_artist)})", unstorable=artist_name is not None
        )
    if not title or not title.strip():
        return _Refused(
            f"{where}: no title ({_quoted(entry.get('name'))}, artist {artist_name!r})",
            unstorable=title is not None,
        )
    uts = date.get("uts") if isinstance(date, dict) else None
    if not isinstance(uts, str) or not uts.removeprefix("-").isdecimal():
        return _Refused(f"{where}: date without Unix seconds ({_quoted(date)})")
    timestamp = int(uts)
    if not 0 < timestamp <= now + FUTURE_SLACK_S:
        return _Refused(
            f"{where}: timestamp {uts} out of range ({artist_name!r} – {title!r})",
            unstorable=True,
        )
    return Scrobble(
        timestamp, artist_name, title, album_title, *mbids, *urls, entry.get("loved") == "1"
    )


def _count(attr: dict[str, Any], key: str, default: int) -> int:
    value = attr.get(key)
    if value is None or value == "":
        return default
    if isinstance(value, str) and value.isdecimal():
        return int(value)
    raise TransientUpstreamError(
        f"Last.fm sent a page whose @attr.{key} is not a number ({_quoted(value)})",
        kind="malformed",
    )


def parse_recent_tracks(data: dict[str, Any]) -> RecentTracksPage:
    """``user.getRecentTracks`` JSON → page; raises TransientUpstreamError if it is not one.

    Entries that cannot be used (no date below the top, wrong types, an empty name, a
    timestamp out of range) are left out with the reason in ``page.rejected``: never
    dropped silently, never stored.
    """
    body = data.get("recenttracks")
    if not isinstance(body, dict):
        raise TransientUpstreamError("Last.fm sent no recenttracks object", kind="malformed")
    attr = body.get("@attr") or {}
    if not isinstance(attr, dict):
        raise TransientUpstreamError(
            f"Last.fm sent a page whose @attr is not an object ({_quoted(attr)})", kind="malformed"
        )
    entries = body.get("track")
    if entries is None or entries == "":  # an empty page, as some answers spell it
        entries = []
    elif isinstance(entries, dict):  # exactly one entry comes as a bare object
        entries = [entries]
    elif not isinstance(entries, list):
        raise TransientUpstreamError(
            f"Last.fm sent a page whose track is not a list ({_quoted(entries)})",
            kind="malformed",
        )
    scrobbles: list[Scrobble] = []
    rejected: list[str] = []
    unstorable = 0
    now_playing: NowPlaying | None = None
    now = time.time()
    for index, entry in enumerate(entries):
        parsed = _entry(entry, index, now)
        if isinstance(parsed, Scrobble):
            scrobbles.append(parsed)
        elif isinstance(parsed, NowPlaying):
            now_playing = parsed
        else:
            rejected.append(parsed.reason)
            unstorable += parsed.unstorable
    return RecentTracksPage(
        scrobbles=scrobbles,
        now_playing=now_playing,
        page=_count(attr, "page", 1),
        per_page=_count(attr, "perPage", 0),
        total_pages=_count(attr, "totalPages", 0),
        total=_count(attr, "total", 0),
        rejected=rejected,
        unstorable=unstorable,
    )


def parse_album_info(data: dict[str, Any]) -> AlbumInfo:
    """``album.getInfo`` JSON → AlbumInfo; FatalUpstreamError (this album fails, retrying
    would read the same answer) if it cannot be read."""
    try:
        album = data.get("album") or {}
        images = {str(i.get("size", "")): web_url(i.get("#text")) for i in album.get("image") or []}
        image_url = next((images[s] for s in _IMAGE_ORDER if images.get(s)), None)
        wiki = album.get("wiki") or {}
        summary = _READ_MORE.sub("", str(wiki.get("summary") or "")).strip() or None
        tags = (album.get("tags") or {}) if isinstance(album.get("tags"), dict) else {}
        tag_list = tags.get("tag") or []
        if isinstance(tag_list, dict):
            tag_list = [tag_list]
        years = [int(t["name"]) for t in tag_list if _YEAR.match(str(t.get("name", "")))]
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise FatalUpstreamError(
            f"Last.fm sent an album.getInfo that cannot be read ({type(exc).__name__}: {exc})",
            kind="malformed",
        ) from None
    return AlbumInfo(
        url=web_url(album.get("url")) or "",
        image_url=image_url,
        wiki_summary=summary,
        release_year=min(years) if years else None,
    )


class LastfmClient:
    def __init__(
        self,
        config: LastfmConfig,
        governor: Governor,
        session_key: str = "",
        *,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.config = config
        self.governor = governor
        self.retry = retry or RetryPolicy()
        self._session_key = session_key or config.session_key.get_secret_value()
        self._session: aiohttp.ClientSession | None = None
        self._opened = False
        self._page_size = config.page_size
        self.requests = 0
        self.retries = 0

    def reconfigure(self, config: LastfmConfig, session_key: str = "") -> None:
        """New settings (daemon reload) on the same HTTP session: in-flight calls carry on."""
        if config.page_size != self.config.page_size:
            self._page_size = config.page_size
        self.config = config
        self._session_key = session_key or config.session_key.get_secret_value()

    @property
    def page_size(self) -> int:
        """The page size in use (``page_size``, or what Last.fm accepted instead)."""
        return self._page_size

    @property
    def signed(self) -> bool:
        return bool(self._session_key and self.config.api_secret.get_secret_value())

    async def open(self) -> None:
        """Ready to call; the HTTP session comes with the first request."""
        self._opened = True

    async def close(self) -> None:
        self._opened = False
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    def _http(self) -> aiohttp.ClientSession:
        if not self._opened:
            raise RuntimeError("LastfmClient.open() was not called")
        if self._session is None:
            # aiohttp comes with the first request: a daemon that has not called Last.fm
            # yet does not hold it in memory.
            import aiohttp

            self._session = aiohttp.ClientSession(
                # The governor bounds concurrency; the connector must not queue behind it.
                connector=aiohttp.TCPConnector(limit=0),
                headers={"User-Agent": "musiqued (+https://github.com/musique)"},
                raise_for_status=False,
            )
        return self._session

    # -- the API -------------------------------------------------------------------------

    async def recent_tracks(
        self,
        *,
        page: int = 1,
        limit: int | None = None,
        from_ts: int | None = None,
        to_ts: int | None = None,
        extended: bool = True,
        priority: Priority = Priority.IMPORT,
        on_retry: RetryListener = _nothing,
    ) -> RecentTracksPage:
        """One page of ``user.getRecentTracks``; ``on_retry`` hears of each retry first."""
        wanted = limit if limit is not None else self._page_size
        params = {
            "user": self.config.username,
            "page": str(page),
            "limit": str(wanted),
            "extended": "1" if extended else "0",
        }
        if from_ts is not None:
            params["from"] = str(from_ts)
        if to_ts is not None:
            params["to"] = str(to_ts)
        try:
            answer = await self._call(
                "user.getRecentTracks", params, priority, signed=self.signed, on_retry=on_retry
            )
        except FatalUpstreamError as exc:
            if (
                exc.upstream_code != 6
                or wanted <= DOCUMENTED_MAX_LIMIT
                or "limit" not in str(exc.message)
            ):
                raise
            # Last.fm refused a page size above its documented maximum: settle on 200.
            self._page_size = DOCUMENTED_MAX_LIMIT
            return await self.recent_tracks(
                page=page,
                limit=None,
                from_ts=from_ts,
                to_ts=to_ts,
                extended=extended,
                priority=priority,
                on_retry=on_retry,
            )
        result = parse_recent_tracks(answer)
        if 0 < result.per_page < wanted and wanted == self._page_size:
            self._page_size = max(result.per_page, 1)
        return result

    async def playcount(self, priority: Priority = Priority.IMPORT) -> int:
        data = await self._call(
            "user.getInfo", {"user": self.config.username}, priority, signed=self.signed
        )
        try:
            return int(data["user"]["playcount"])
        except (KeyError, TypeError, ValueError):
            raise TransientUpstreamError(
                "Last.fm sent a user.getInfo without playcount", kind="malformed"
            ) from None

    async def album_info(
        self, artist: str, album: str, priority: Priority = Priority.ENRICH
    ) -> AlbumInfo | None:
        try:
            data = await self._call(
                "album.getInfo", {"artist": artist, "album": album, "autocorrect": "1"}, priority
            )
        except FatalUpstreamError as exc:
            if exc.upstream_code == 6:  # "Album not found"
                return None
            raise
        if not isinstance(data.get("album"), dict):
            return None
        return parse_album_info(data)

    # -- one call, with retries ----------------------------------------------------------

    async def _call(
        self,
        method: str,
        params: dict[str, str],
        priority: Priority,
        *,
        signed: bool = False,
        on_retry: RetryListener = _nothing,
    ) -> dict[str, Any]:
        """``method`` until it succeeds or fails for good (``RetryPolicy``): the parsed body
        of a good answer, else the error the answer means (``classify``)."""
        query = {"method": method, **params, "api_key": self.config.api_key.get_secret_value()}
        if signed:
            if self._session_key:
                query["sk"] = self._session_key
            query["api_sig"] = sign(query, self.config.api_secret.get_secret_value())
        query["format"] = "json"

        def retrying(retry: Retry) -> None:
            self.retries += 1
            on_retry(retry)

        return await self.retry.run(
            lambda: self._attempt(query, priority), self.governor, on_retry=retrying
        )

    async def _attempt(self, query: dict[str, str], priority: Priority) -> dict[str, Any]:
        session = self._http()
        import aiohttp  # loaded by _http

        async with self.governor.slot(priority):
            self.requests += 1
            with network_failures(
                "lastfm",
                timeout=f"Last.fm did not answer within {self.config.timeout_seconds:g} s",
                unreachable="cannot reach Last.fm",
            ):
                # Never follow a redirect: the query carries the keys to wherever it points.
                async with session.get(
                    self.config.api_url,
                    params=query,
                    timeout=aiohttp.ClientTimeout(total=self.config.timeout_seconds),
                    allow_redirects=False,
                ) as response:
                    status = response.status
                    body = await response.read()
        return classify(status, body, self.config.username)
