"""Plain dataclasses that travel between upstream clients, services and storage."""

from __future__ import annotations

import datetime as dt
import functools
import time
from dataclasses import asdict, dataclass, field
from typing import Any


def iso_utc(timestamp: float) -> str:
    """ISO 8601 in UTC with a ``Z``, second precision."""
    # time.gmtime, not a datetime: every listen of a list answer is dated, and a datetime
    # is one more object to build for the same text.
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(timestamp)))


def utc_day(timestamp: int) -> str:
    # Cached per day: a page's 200 listens span a day or two, so one strftime serves them all.
    return _utc_day(timestamp // 86400)


@functools.lru_cache(maxsize=1024)
def _utc_day(day: int) -> str:
    return (_EPOCH + dt.timedelta(days=day)).strftime("%Y-%m-%d")


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def web_url(value: object) -> str | None:
    """``value`` if it is an ``http(s)://`` URL, else None: an upstream's image or page
    link is stored only then (never ``javascript:`` or ``data:``)."""
    # The exact-case test first: it holds for nearly every link, without a lowered copy.
    if isinstance(value, str) and (
        value.startswith(_WEB_SCHEMES) or value[:8].lower().startswith(_WEB_SCHEMES)
    ):
        return value
    return None


_WEB_SCHEMES = ("https://", "http://")


# Not frozen: an import builds 200 a page on the event loop, and a frozen dataclass sets
# each field through object.__setattr__, several times slower. Nothing changes one after
# it is made.
@dataclass(slots=True)
class Scrobble:
    """One listen as Last.fm reports it, quirks already normalised."""

    timestamp: int
    artist: str
    title: str
    album: str = ""
    artist_mbid: str = ""
    album_mbid: str = ""
    track_mbid: str = ""
    track_url: str = ""
    artist_url: str = ""
    loved: bool = False
    origin: str = "lastfm"
    """Where the listen came from: ``lastfm``, or the format of the file it was read from."""
    spotify_uri: str = ""

    @property
    def identity(self) -> tuple[int, str, str]:
        """Last.fm's own rule: the same second, artist and title is the same scrobble."""
        return (self.timestamp, self.artist.casefold(), self.title.casefold())


@dataclass(frozen=True, slots=True)
class Listen:
    """A stored listen as the history holds it (empty strings where nothing is known)."""

    timestamp: int
    artist: str
    title: str
    album: str
    artist_mbid: str
    album_mbid: str
    track_mbid: str
    source: str
    loved: bool
    origin: str = "lastfm"
    """Where it came from: ``lastfm``, or the format of the file it was imported from."""


@dataclass(frozen=True, slots=True)
class NowPlaying:
    artist: str
    title: str
    album: str
    since: float

    def same_track(self, other: NowPlaying) -> bool:
        return (self.artist, self.title, self.album) == (other.artist, other.title, other.album)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class RecentTracksPage:
    """One page of ``user.getRecentTracks``: scrobbles newest first, and the paging totals."""

    scrobbles: list[Scrobble]
    now_playing: NowPlaying | None
    page: int
    per_page: int
    total_pages: int
    total: int
    rejected: list[str] = field(default_factory=list)
    """Why each entry that was neither a usable scrobble nor now playing was left out."""
    unstorable: int = 0
    """How many of ``rejected`` are scrobbles as Last.fm holds them that cannot be stored (a
    blank artist or title, a timestamp out of range): the same however often it is asked.
    The others (no date, wrong types, not an object) make a broken answer, which may come
    whole when asked again."""
