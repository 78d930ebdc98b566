"""Maloja's export: ``{"maloja": {"export_time": <Unix seconds>}, "scrobbles": [...]}``.

Each scrobble is ``{"time", "track": {"artists": [...], "title", "album": {"artists":
[...], "albumtitle"} | null, "length"}, "duration", "origin"}``: ``time`` is the
scrobble's Unix seconds, ``length`` the track's seconds, ``duration`` the seconds played
(both may be null). Exports before Maloja 3 have no ``maloja`` object, only ``scrobbles``.

Maloja keeps several artists per track where a scrobble named them together; they are read
back as one artist, joined by ``ARTIST_JOIN``, so a one-artist scrobble keeps its name.
"""

from __future__ import annotations

from collections.abc import Iterator

from musiqued.interchange.entries import Entry, Play, Unreadable, checked
from musiqued.interchange.streams import Readable, json_items, text_field, whole_number

ARTIST_JOIN = ", "


def read(file: Readable, name: str) -> Iterator[Entry]:
    """Each scrobble of a Maloja export."""
    for number, item in json_items(file, "scrobbles.item", name):
        yield scrobble(item, f"entry {number}")


def scrobble(item: object, where: str) -> Entry:
    if not isinstance(item, dict):
        return Unreadable(where, f"not an object but {type(item).__name__}")
    time = whole_number(item.get("time"))
    track = item.get("track")
    if time is None or not isinstance(track, dict):
        return Unreadable(where, "no time and track")
    artists = _names(track.get("artists"))
    title = text_field(track.get("title"))
    if artists is None or title is None:
        return Unreadable(where, "no track artists and title")
    album = track.get("album")
    if not isinstance(album, dict):
        album = {}
    return checked(
        Play(
            timestamp=time,
            artist=artists,
            title=title,
            origin="maloja",
            album=text_field(album.get("albumtitle")) or "",
        ),
        where,
    )


def _names(value: object) -> str | None:
    """A list of artist names as one name; None unless it is a list of strings."""
    if isinstance(value, list) and value and all(isinstance(name, str) for name in value):
        return ARTIST_JOIN.join(value)
    return None
