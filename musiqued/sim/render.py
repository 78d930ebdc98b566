"""Last.fm's JSON bodies, key for key and in Last.fm's key order.

Every value is a string, as on the wire. Image arrays, artist and album objects are built
once per name and shared between entries (orjson serialises shared objects happily), so a
1000-entry page costs one small dict per entry.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

import orjson

from musiqued.sim.history import Album, Artist, Track

IMAGE_BASE = "https://lastfm.freetls.fastly.net/i/u"
_TRACK_SIZES = (("small", "34s"), ("medium", "64s"), ("large", "174s"), ("extralarge", "300x300"))
_ALBUM_SIZES = (*_TRACK_SIZES, ("mega", "300x300"), ("", "300x300"))


@lru_cache(maxsize=65536)
def images(
    name: str, sizes: tuple[tuple[str, str], ...] = _TRACK_SIZES, base: str = IMAGE_BASE
) -> list[dict[str, str]]:
    if not name:
        return [{"size": size, "#text": ""} for size, _ in sizes]
    return [{"size": size, "#text": f"{base}/{path}/{name}"} for size, path in sizes]


@lru_cache(maxsize=65536)
def _artist_extended(artist: Artist) -> dict[str, Any]:
    return {
        "url": artist.page_url,
        "mbid": artist.mbid,
        "image": images(artist.image),
        "name": artist.name,
    }


@lru_cache(maxsize=65536)
def _artist_plain(artist: Artist) -> dict[str, str]:
    return {"mbid": artist.mbid, "#text": artist.name}


@lru_cache(maxsize=65536)
def _album_ref(mbid: str, title: str) -> dict[str, str]:
    return {"mbid": mbid, "#text": title}


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_EPOCH = dt.date(1970, 1, 1)
DAY = 86400


@lru_cache(maxsize=4096)
def _day_text(day: int) -> str:
    date = _EPOCH + dt.timedelta(days=day)
    return f"{date.day:02d} {_MONTHS[date.month - 1]} {date.year}"


def _date(timestamp: int) -> dict[str, str]:
    """``{"uts", "#text"}``, the text as Last.fm writes it (``strftime("%d %b %Y, %H:%M")``
    in UTC, English months): the day's part made once per day, as a page's listens share
    their days and each ``strftime`` would cost as much as the rest of the entry."""
    seconds = timestamp % DAY
    text = f"{_day_text(timestamp // DAY)}, {seconds // 3600:02d}:{seconds % 3600 // 60:02d}"
    return {"uts": str(timestamp), "#text": text}


@lru_cache(maxsize=65536)
def _track_url(track: Track) -> str:
    """``track.page_url``, quoted once per track rather than once per listen."""
    return track.page_url


_NOW_PLAYING_ATTR = {"nowplaying": "true"}

Spoiler = Callable[[list[dict[str, Any]], dict[str, Any]], tuple[Any, dict[str, Any]]]


def track_entry(timestamp: int | None, track: Track, *, extended: bool) -> dict[str, Any]:
    """One ``track`` entry; ``timestamp`` None is the now-playing entry."""
    album = _album_ref(track.album_id, track.album_name)
    image = images(track.image)
    if extended:
        if timestamp is None:
            return {
                "@attr": _NOW_PLAYING_ATTR,
                "artist": _artist_extended(track.artist),
                "mbid": track.mbid,
                "image": image,
                "url": _track_url(track),
                "streamable": "0",
                "album": album,
                "name": track.title,
                "loved": "1" if track.loved else "0",
            }
        return {
            "mbid": track.mbid,
            "loved": "1" if track.loved else "0",
            "artist": _artist_extended(track.artist),
            "image": image,
            "date": _date(timestamp),
            "streamable": "0",
            "url": _track_url(track),
            "name": track.title,
            "album": album,
        }
    entry: dict[str, Any] = {
        "artist": _artist_plain(track.artist),
        "streamable": "0",
        "image": image,
        "mbid": track.mbid,
        "album": album,
        "name": track.title,
    }
    if timestamp is None:
        entry["@attr"] = _NOW_PLAYING_ATTR
        entry["url"] = _track_url(track)
    else:
        entry["url"] = _track_url(track)
        entry["date"] = _date(timestamp)
    return entry


def recent_tracks(
    entries: Iterable[tuple[int | None, Track]],
    *,
    user: str,
    page: int,
    per_page: int,
    total: int,
    total_pages: int,
    extended: bool,
    attr_last: bool = False,
    spoil: Spoiler | None = None,
) -> bytes:
    """A ``user.getRecentTracks`` body: a bare object for one entry, ``[]`` for none.

    ``spoil``: turns the rendered entries and ``@attr`` into a broken page's ``track`` value
    and ``@attr`` (``sim/pagefaults.py``).
    """
    tracks = [track_entry(ts, track, extended=extended) for ts, track in entries]
    attr: dict[str, Any] = {
        "page": str(page),
        "total": str(total),
        "user": user,
        "perPage": str(per_page),
        "totalPages": str(total_pages),
    }
    track_value: Any = tracks[0] if len(tracks) == 1 else tracks
    if spoil is not None:
        track_value, attr = spoil(tracks, attr)
    body = (
        {"track": track_value, "@attr": attr}
        if attr_last
        else {"@attr": attr, "track": track_value}
    )
    return _dumps({"recenttracks": body})


def _dumps(value: Any) -> bytes:
    """JSON as Last.fm writes it; text holding a lone surrogate (which orjson refuses to
    write) comes out as the JSON escape ``\\udXXX``, as Last.fm serves it."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return json.dumps(value, separators=(",", ":")).encode("ascii")


def user_info(user: str, playcount: int, registered: int, counts: dict[str, int]) -> bytes:
    return orjson.dumps(
        {
            "user": {
                "name": user,
                "age": "0",
                "subscriber": "0",
                "realname": "",
                "bootstrap": "0",
                "playcount": str(playcount),
                "artist_count": str(counts.get("artists", 0)),
                "playlists": "0",
                "track_count": str(counts.get("tracks", 0)),
                "album_count": str(counts.get("albums", 0)),
                "image": images(""),
                "registered": {"unixtime": str(registered), "#text": registered},
                "country": "None",
                "gender": "n",
                "url": f"https://www.last.fm/user/{user}",
                "type": "user",
            }
        }
    )


def wiki_summary(album: Album) -> str:
    return (
        f"{album.title} is an album by {album.artist.name}"
        + (f", released in {album.year}." if album.year else ".")
        + f' <a href="{album.page_url}">Read more on Last.fm</a>'
    )


def album_info(
    album: Album, *, user_playcount: int | None = None, image_base: str = IMAGE_BASE
) -> bytes:
    """``image_base``: where the album's images are (the simulator's own URL serves them)."""
    tags = [{"url": "https://www.last.fm/tag/rock", "name": "rock"}]
    if album.year:
        tags.append({"url": f"https://www.last.fm/tag/{album.year}", "name": str(album.year)})
    body: dict[str, Any] = {
        "artist": album.artist.name,
        "mbid": album.mbid,
        "tags": {"tag": tags},
        "playcount": str(album.listeners * 7),
        "image": images(album.image, _ALBUM_SIZES, image_base),
        "url": album.page_url,
        "name": album.title,
        "listeners": str(album.listeners),
    }
    if user_playcount is not None:
        body["userplaycount"] = user_playcount
    if album.has_wiki:
        published = "01 Jan 2015, 00:00"
        summary = wiki_summary(album)
        content = (
            f"{summary[: summary.index(' <a href')]} It was well received.\n\n"
            f"User-contributed text is available under the Creative Commons By-SA License; "
            f'additional terms may apply. <a href="{album.page_url}">Read more on Last.fm</a>'
        )
        body["wiki"] = {"published": published, "summary": summary, "content": content}
    return orjson.dumps({"album": body})


def error(code: int, message: str) -> bytes:
    return orjson.dumps({"error": code, "message": message})
