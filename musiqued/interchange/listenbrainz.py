"""ListenBrainz's listens: its export zip, a JSON-lines file, or the older JSON array.

A listen is ``{"listened_at": <Unix seconds>, "track_metadata": {"artist_name",
"track_name", "release_name"?, "additional_info"?: {...}, "mbid_mapping"?: {...}}}``.
``listened_at`` is the start of the play; the export writes it as a number that may carry a
fraction (PostgreSQL's epoch), floored here to the second.

The export zip (``listenbrainz_<user>_<time>.zip``) holds ``user.json`` and one
``listens/<year>/<month>.jsonl`` per month, besides feedback and pins, which are not
listens. Identifiers come from ``additional_info`` (what the submitting client knew:
``recording_mbid``, ``release_mbid``, ``artist_mbids``, ``spotify_id`` as an
open.spotify.com URL), else from ``mbid_mapping`` (what ListenBrainz matched it to).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import IO, Any, BinaryIO

import orjson

from musiqued.interchange.entries import Entry, Play, Unreadable, checked
from musiqued.interchange.streams import (
    BOM,
    TOO_LONG,
    ZIP_MAGIC,
    byte_lines,
    json_items,
    text_field,
    zip_members,
)

LISTENS_MEMBER = re.compile(r"(?:^|/)listens/.+\.jsonl$")
SPOTIFY_TRACK_URI = "spotify:track:"


def read(file: BinaryIO, name: str) -> Iterator[Entry]:
    """Each listen of a ListenBrainz file, whichever of the three shapes it has.

    ``file`` must be seekable (a regular file): its start is read to tell the shape, and a
    zip's directory sits at its end.
    """
    head = file.read(64)
    file.seek(0)
    if head.startswith(ZIP_MAGIC):
        # Every ``listens/…/*.jsonl`` member, in the archive's order.
        for member, lines in zip_members(file, name, lambda m: bool(LISTENS_MEMBER.search(m))):
            yield from read_lines(lines, where_prefix=f"{member}: ")
    elif head.removeprefix(BOM).lstrip().startswith(b"["):
        for number, item in json_items(file, "item", name):
            yield listen(item, f"entry {number}")
    else:
        yield from read_lines(file)


def read_lines(file: IO[bytes], *, where_prefix: str = "") -> Iterator[Entry]:
    """One listen per line; blank lines are not entries."""
    for number, data in byte_lines(file):
        where = f"{where_prefix}line {number}"
        if data is None:
            yield Unreadable(where, TOO_LONG)
            continue
        if not data.strip():
            continue
        try:
            item = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            yield Unreadable(where, f"not JSON ({exc})")
            continue
        yield listen(item, where)


def listen(item: object, where: str) -> Entry:
    """One listen object as a play."""
    if not isinstance(item, dict):
        return Unreadable(where, f"not an object but {type(item).__name__}")
    listened_at = item.get("listened_at")
    meta = item.get("track_metadata")
    if not isinstance(meta, dict) or not _is_number(listened_at):
        return Unreadable(where, "no listened_at and track_metadata")
    artist = text_field(meta.get("artist_name"))
    title = text_field(meta.get("track_name"))
    if artist is None or title is None:
        return Unreadable(where, "no artist_name and track_name")
    info = _object(meta.get("additional_info"))
    mapping = _object(meta.get("mbid_mapping"))
    return checked(
        Play(
            timestamp=math.floor(listened_at),  # type: ignore[arg-type]
            artist=artist,
            title=title,
            origin="listenbrainz",
            album=text_field(meta.get("release_name")) or "",
            spotify_track_uri=_spotify_uri(info.get("spotify_id")),
            artist_mbid=_first_text(info.get("artist_mbids"))
            or _first_text(mapping.get("artist_mbids")),
            album_mbid=text_field(info.get("release_mbid"))
            or text_field(mapping.get("release_mbid"))
            or "",
            track_mbid=text_field(info.get("recording_mbid"))
            or text_field(mapping.get("recording_mbid"))
            or "",
        ),
        where,
    )


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _object(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _first_text(value: object) -> str:
    if isinstance(value, list) and value and isinstance(value[0], str):
        return value[0]
    return ""


def _spotify_uri(value: object) -> str:
    """``https://open.spotify.com/track/<id>`` (ListenBrainz's ``spotify_id``) as
    ``spotify:track:<id>``; anything else is no Spotify track."""
    if isinstance(value, str):
        address = value.removeprefix("http://").removeprefix("https://")
        if address.startswith("open.spotify.com/track/"):
            track_id = address.removeprefix("open.spotify.com/track/").split("?")[0]
            if track_id.isascii() and track_id.isalnum():
                return SPOTIFY_TRACK_URI + track_id
    return ""
