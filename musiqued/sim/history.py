"""The simulated listening history: a catalog of artists, albums and tracks, and listens.

``History.generate(seed, size)`` builds a realistic history deterministically (the same seed,
size and end time give the same listens): many artists with several albums, popular artists
played far more often than others, albums played through, repeated plays, ~3% listens of
tracks without an album, non-ASCII names, MBIDs often empty, and a few scrobbles of different
tracks in the same second. ``History.load(path)`` reads our own JSON dump or a recorded
``user.getRecentTracks`` body.

Listens are kept newest first in two parallel lists (negated timestamps, for ``bisect``, and
tracks), so a ``from``/``to`` window and a page are two bisects and a slice, even at a
million listens. Tracks, albums and artists are shared objects, so a listen costs one tuple
slot, not a copy of its strings.
"""

from __future__ import annotations

import bisect
import math
import random
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import orjson

from musiqued.models import Scrobble

# Last.fm stopped serving artist pictures; every artist carries this placeholder star.
ARTIST_PLACEHOLDER = "2a96cbd8b46e442fc41c2b86b821562f.png"
ALBUM_NO_ALBUM_SHARE = 0.03
SAME_SECOND_SHARE = 0.002
EARLIEST = 1_041_379_200
"""2003-01-01 UTC: Last.fm started in 2002, so no generated listen is older than this."""


def lastfm_url_part(name: str) -> str:
    """How Last.fm writes a name in its URLs: spaces as ``+``, a few characters kept (a lone
    surrogate as the bytes it would be)."""
    return quote_plus(name, safe="!&'()*,:;=@$~", errors="surrogatepass")


@dataclass(frozen=True, slots=True, eq=False)
class Artist:
    name: str
    mbid: str = ""
    image: str = ARTIST_PLACEHOLDER
    url: str = ""

    @property
    def page_url(self) -> str:
        return self.url or f"https://www.last.fm/music/{lastfm_url_part(self.name)}"


@dataclass(frozen=True, slots=True, eq=False)
class Album:
    artist: Artist
    title: str
    mbid: str = ""
    image: str = ""
    year: int | None = None
    has_wiki: bool = True
    listeners: int = 0

    @property
    def page_url(self) -> str:
        return f"{self.artist.page_url}/{lastfm_url_part(self.title)}"


@dataclass(frozen=True, slots=True, eq=False)
class Track:
    artist: Artist
    title: str
    album: Album | None = None
    album_title: str = ""  # the album name as scrobbled (set when album is None but named)
    album_mbid: str = ""
    mbid: str = ""
    loved: bool = False
    image: str = ""
    url: str = ""

    @property
    def album_name(self) -> str:
        return self.album.title if self.album is not None else self.album_title

    @property
    def album_id(self) -> str:
        return self.album.mbid if self.album is not None else self.album_mbid

    @property
    def page_url(self) -> str:
        return self.url or f"{self.artist.page_url}/_/{lastfm_url_part(self.title)}"

    def scrobble(self, timestamp: int) -> Scrobble:
        return Scrobble(
            timestamp=timestamp,
            artist=self.artist.name,
            title=self.title,
            album=self.album_name,
            artist_mbid=self.artist.mbid,
            album_mbid=self.album_id,
            track_mbid=self.mbid,
            track_url=self.page_url,
            artist_url=self.artist.page_url,
            loved=self.loved,
        )


@dataclass
class History:
    """Listens newest first, and the album catalog ``album.getInfo`` answers from."""

    _neg: list[int] = field(default_factory=list)  # -timestamp, ascending
    _tracks: list[Track] = field(default_factory=list)
    albums: dict[tuple[str, str], Album] = field(default_factory=dict)
    catalog: list[Track] = field(default_factory=list)

    # -- building ------------------------------------------------------------------------

    @classmethod
    def from_listens(cls, listens: Iterable[tuple[int, Track]]) -> History:
        ordered = sorted(listens, key=lambda item: -item[0])
        history = cls([-ts for ts, _ in ordered], [t for _, t in ordered])
        seen: dict[tuple[str, str], Track] = {}
        for track in history._tracks:
            history._remember(track)
            seen.setdefault((track.artist.name.casefold(), track.title.casefold()), track)
        history.catalog = list(seen.values())
        return history

    def _remember(self, track: Track) -> None:
        if track.album is not None:
            key = (track.artist.name.casefold(), track.album.title.casefold())
            self.albums.setdefault(key, track.album)

    @classmethod
    def generate(cls, seed: int, size: int, end: int | None = None) -> History:
        """``size`` listens ending at ``end`` (default: the start of today, UTC).

        Listens are a song length apart within a sitting, hours apart between sittings. A
        history too long to fit after ``EARLIEST`` at that pace has its pauses between
        sittings shortened (its songs too, if need be) so it still starts after it.
        """
        if end is None:
            end = int(time.time()) // 86400 * 86400
        rng = random.Random(seed)
        catalog = _Catalog.build(rng, size)
        newest = end - rng.randint(60, 3600)
        tracks: list[Track] = []
        songs: list[int] = []  # seconds back from the previous listen, within a sitting
        pauses: list[int] = []  # and the pause between sittings before it
        pause = 0
        last: Track | None = None
        # The titles of the listens at the current second: Last.fm drops an identical
        # scrobble at the same second, so none may come twice (not only after itself).
        this_second: set[str] = set()
        while len(tracks) < size:
            for track in reversed(catalog.session(rng)):  # we walk back in time
                if len(tracks) >= size:
                    break
                title = track.title.casefold()
                same_second = (
                    last is not None
                    and rng.random() < SAME_SECOND_SHARE
                    and title not in this_second
                )
                songs.append(0 if same_second else rng.randint(150, 330))
                pauses.append(pause)
                pause = 0
                tracks.append(track)
                last = track
                this_second = this_second | {title} if same_second else {title}
            pause = rng.randint(1800, 40000)  # between sessions
        history = cls(_timeline(newest, songs, pauses), tracks)
        history.catalog = catalog.all_tracks
        for track in catalog.all_tracks:
            history._remember(track)
        return history

    @classmethod
    def load(cls, path: Path) -> tuple[History, dict[str, Any]]:
        """Our JSON dump, or a recorded ``user.getRecentTracks`` body.

        Returns the history and the extras found in the file (``username``, ``now_playing``).
        """
        data = orjson.loads(path.read_bytes())
        if isinstance(data, dict) and "recenttracks" in data:
            from musiqued.sim.recorded import parse_recorded

            return parse_recorded(data)
        rows = data["scrobbles"] if isinstance(data, dict) else data
        extras: dict[str, Any] = {}
        if isinstance(data, dict):
            extras = {k: v for k, v in data.items() if k != "scrobbles"}
        builder = TrackBuilder()
        return cls.from_listens((int(row["timestamp"]), builder.track(row)) for row in rows), extras

    def dump(self, path: Path, **extras: Any) -> None:
        rows = [scrobble_row(s) for s in self.scrobbles()]
        path.write_bytes(orjson.dumps({**extras, "scrobbles": rows}))

    # -- reading -------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._tracks)

    def window(self, from_ts: int | None, to_ts: int | None) -> tuple[int, int]:
        """Index range (newest first) of listens with ``from_ts <= timestamp < to_ts``."""
        start = 0 if to_ts is None else bisect.bisect_right(self._neg, -to_ts)
        stop = len(self._neg) if from_ts is None else bisect.bisect_right(self._neg, -from_ts)
        return start, max(start, stop)

    def slice(self, start: int, stop: int) -> Iterator[tuple[int, Track]]:
        neg, tracks = self._neg, self._tracks
        for i in range(start, stop):
            yield -neg[i], tracks[i]

    def scrobbles(self) -> list[Scrobble]:
        return [track.scrobble(-neg) for neg, track in zip(self._neg, self._tracks, strict=True)]

    def identities(self) -> set[tuple[int, str, str]]:
        return {
            (-neg, track.artist.name.casefold(), track.title.casefold())
            for neg, track in zip(self._neg, self._tracks, strict=True)
        }

    def find_album(self, artist: str, title: str) -> Album | None:
        return self.albums.get((artist.casefold(), title.casefold()))

    # -- changing ------------------------------------------------------------------------

    def add(self, timestamp: int, track: Track, *, twin: bool = False) -> bool:
        """Insert a listen; False (and nothing changes) if Last.fm would drop it as a duplicate.

        ``twin``: keep it beside a listen of the same track in the same second (Last.fm
        serves such twins now and then, with different albums).
        """
        lo = bisect.bisect_left(self._neg, -timestamp)
        hi = bisect.bisect_right(self._neg, -timestamp)
        artist, title = track.artist.name.casefold(), track.title.casefold()
        for i in range(lo if not twin else hi, hi):
            other = self._tracks[i]
            if other.artist.name.casefold() == artist and other.title.casefold() == title:
                return False
        self._neg.insert(hi, -timestamp)
        self._tracks.insert(hi, track)
        self._remember(track)
        return True


def scrobble_row(s: Scrobble) -> dict[str, Any]:
    return {
        "timestamp": s.timestamp,
        "artist": s.artist,
        "title": s.title,
        "album": s.album,
        "artist_mbid": s.artist_mbid,
        "album_mbid": s.album_mbid,
        "track_mbid": s.track_mbid,
        "loved": s.loved,
    }


class TrackBuilder:
    """Tracks from plain rows, sharing one Artist/Album object per name."""

    def __init__(self) -> None:
        self._artists: dict[str, Artist] = {}
        self._albums: dict[tuple[str, str], Album] = {}

    def artist(self, name: str, mbid: str = "", url: str = "") -> Artist:
        key = name.casefold()
        if key not in self._artists:
            self._artists[key] = Artist(name=name, mbid=mbid, url=url)
        return self._artists[key]

    def album(self, artist: Artist, title: str, mbid: str = "", image: str = "") -> Album:
        key = (artist.name.casefold(), title.casefold())
        if key not in self._albums:
            image = image or _image_name(f"{artist.name}\x00{title}")
            self._albums[key] = Album(artist=artist, title=title, mbid=mbid, image=image)
        return self._albums[key]

    def track(self, row: dict[str, Any]) -> Track:
        artist = self.artist(str(row["artist"]), str(row.get("artist_mbid") or ""))
        album_title = str(row.get("album") or "")
        album = self.album(artist, album_title, str(row.get("album_mbid") or ""))
        return Track(
            artist=artist,
            title=str(row["title"]),
            album=album if album_title else None,
            mbid=str(row.get("track_mbid") or ""),
            loved=bool(row.get("loved")),
            image=album.image if album_title else "",
        )


def _image_name(seed: str) -> str:
    digest = uuid.uuid5(uuid.NAMESPACE_URL, seed).hex
    return f"{digest}.{'png' if digest[0] in '0123' else 'jpg'}"


# -- the generated catalog ---------------------------------------------------------------


def _word_list(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_WORDS = _word_list(
    "Midnight Echo Velvet Paper Neon Silver Hollow Northern Glass Golden Electric Quiet "
    "Broken Crimson Wild Lunar Atlas River Winter Summer Static Ocean Desert Fever Ghost "
    "Honey Iron Mirror Orchid Paris Radio Signal Tiger Violet Wolves Youth Zero Amber Blue "
    "Cathedral Dawn Ember Forest Harbor Island Jungle Kingdom Lantern Motel Nomad Pilot"
)
_FOREIGN = _word_list(
    "Björk Sigur Rós Mötley Café Été Noël Straße Ñandú Ångström Garçon Señorita Åsa "
    "Zoë Øresund Líf Ça Déjà Vu Fête Œuvre Müller Ærø Łódź Čaj Ζωή Москва Звезда "
    "東京 夜明け 사랑 Ночь Ölfus Jóga Hávamál"
)
_GLUE = ("&", "and the", "of", "vs.", "/", "+", "feat.", "in", "!")


class _Catalog:
    """Artists with albums and loose singles, and a Zipf-like popularity."""

    def __init__(self, artists: list[tuple[Artist, list[list[Track]], list[Track]]]) -> None:
        self.artists = artists
        self.cum_weights = list(
            _accumulate(1.0 / (rank + 1) ** 0.9 for rank in range(len(artists)))
        )
        self.all_tracks = [
            t for _, albums, singles in artists for group in (*albums, singles) for t in group
        ]

    @classmethod
    def build(cls, rng: random.Random, size: int) -> _Catalog:
        count = min(3000, max(30, size // 150))
        names = _UniqueNames(rng)
        artists = []
        for _ in range(count):
            artist = Artist(name=names.artist(), mbid=_mbid(rng, 0.4))
            albums: list[list[Track]] = []
            for _ in range(rng.choice((1, 2, 2, 3, 3, 4, 5, 6))):
                album = Album(
                    artist=artist,
                    title=names.title(artist.name, "album"),
                    mbid=_mbid(rng, 0.5),
                    image="" if rng.random() < 0.05 else _image_name(f"{rng.random()}"),
                    year=rng.randint(1965, 2025) if rng.random() < 0.7 else None,
                    has_wiki=rng.random() < 0.75,
                    listeners=rng.randint(50, 2_000_000),
                )
                titles = {names.title(album.title, "track") for _ in range(rng.randint(5, 13))}
                albums.append(
                    [
                        Track(
                            artist=artist,
                            title=title,
                            album=album,
                            mbid=_mbid(rng, 0.5),
                            loved=rng.random() < 0.05,
                            image=album.image,
                        )
                        for title in sorted(titles)
                    ]
                )
            singles = [
                Track(artist=artist, title=names.title(artist.name, "single"), mbid=_mbid(rng, 0.3))
                for _ in range(rng.randint(1, 3))
            ]
            artists.append((artist, albums, singles))
        return cls(artists)

    def session(self, rng: random.Random) -> list[Track]:
        """What one sitting sounds like, in play order."""
        played: list[Track] = []
        for _ in range(rng.randint(1, 4)):
            (_artist, albums, singles) = rng.choices(self.artists, cum_weights=self.cum_weights)[0]
            if rng.random() < ALBUM_NO_ALBUM_SHARE * 5.5:  # an album pick plays ~5 tracks
                played.append(rng.choice(singles))
            elif rng.random() < 0.45:
                played.extend(rng.choice(albums))  # the whole album, in order
            else:
                pool = rng.choice(albums)
                played.extend(rng.choice(pool) for _ in range(rng.randint(1, 5)))
        return played


class _UniqueNames:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.seen: set[str] = set()

    def _phrase(self, words: int) -> str:
        rng = self.rng
        parts = []
        for i in range(words):
            pool = _FOREIGN if rng.random() < 0.15 else _WORDS
            parts.append(rng.choice(pool))
            if i < words - 1 and rng.random() < 0.08:
                parts.append(rng.choice(_GLUE))
        return " ".join(parts)

    def artist(self) -> str:
        return self._unique("", lambda: self._phrase(self.rng.randint(1, 3)))

    def title(self, scope: str, kind: str) -> str:
        return self._unique(f"{scope}\x00{kind}", lambda: self._phrase(self.rng.randint(1, 4)))

    def _unique(self, scope: str, make: Any) -> str:
        name: str = make()
        suffix = 2
        base = name
        while f"{scope}\x00{name.casefold()}" in self.seen:
            name = f"{base} {_roman(suffix)}" if suffix < 40 else f"{base} {suffix}"
            suffix += 1
        self.seen.add(f"{scope}\x00{name.casefold()}")
        return name


def _roman(n: int) -> str:
    numerals = ((10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I"))
    out = ""
    for value, letters in numerals:
        while n >= value:
            out += letters
            n -= value
    return out


def _mbid(rng: random.Random, share: float) -> str:
    if rng.random() >= share:
        return ""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _timeline(newest: int, songs: list[int], pauses: list[int]) -> list[int]:
    """Negated timestamps walking back from ``newest``, squeezed to stay after ``EARLIEST``.

    Only what does not fit is squeezed: pauses between sittings first (a song still lasts a
    song), then the songs themselves, never below a second apart (same-second listens stay).
    """
    room = newest - EARLIEST - 1
    song_total, pause_total = sum(songs), sum(pauses)
    song_scale = pause_scale = 1.0
    if 0 < room < song_total + pause_total:
        if song_total < room:
            pause_scale = (room - song_total) / pause_total
        else:
            pause_scale, song_scale = 0.0, room / song_total
    neg: list[int] = []
    ts = newest
    for song, pause in zip(songs, pauses, strict=True):
        step = max(1, int(song * song_scale)) if song else 0
        ts -= step + int(pause * pause_scale)
        neg.append(-ts)
    return neg


def _accumulate(values: Iterable[float]) -> Iterator[float]:
    total = 0.0
    for value in values:
        total += value
        yield total


def total_pages(total: int, limit: int) -> int:
    return math.ceil(total / limit) if total else 0
