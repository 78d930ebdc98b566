"""The AudioScrobbler portable player log, ``.scrobbler.log`` (Rockbox and others).

Header lines start with ``#``: ``#AUDIOSCROBBLER/1.1`` (or 1.0), ``#TZ/UTC`` or
``#TZ/UNKNOWN``, ``#CLIENT/<player>``; Rockbox adds a ``#ARTIST #ALBUM ...`` line naming
the columns and ``# FAILED - ...`` lines; every ``#`` line is a comment. Then one line per
track, tab separated::

    artist  album  title  track-number  seconds  rating  start  musicbrainz-track-id

``album``, ``track-number`` and the MusicBrainz id may be empty (the id, with its tab,
may be missing). ``rating`` is ``L`` (listened, at least half of it) or ``S`` (skipped).
``start`` is the Unix time the track started: in UTC under ``#TZ/UTC``; under
``#TZ/UNKNOWN`` the player wrote its wall clock as if it were UTC, so the start is that
wall-clock time in the zone the caller names (the player's owner's).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import IO

from musiqued.interchange.entries import Entry, Play, Skipped, Unreadable, checked, excerpt
from musiqued.interchange.streams import TOO_LONG, text_lines


def read(file: IO[bytes], name: str, *, local_zone: dt.tzinfo) -> Iterator[Entry]:
    """Each track line; ``local_zone`` is the zone of a ``#TZ/UNKNOWN`` log's times."""
    zone: dt.tzinfo | None = None  # None: UTC, until a #TZ/UNKNOWN line says otherwise
    for number, line in text_lines(file, name):
        if line is None:
            yield Unreadable(f"line {number}", TOO_LONG)
            continue
        if line.startswith("#"):
            if line.strip().upper() == "#TZ/UNKNOWN":
                zone = local_zone
            elif line.strip().upper() == "#TZ/UTC":
                zone = None
            continue
        if not line.strip():
            continue
        yield _track(line, f"line {number}", zone)


def _track(line: str, where: str, zone: dt.tzinfo | None) -> Entry:
    fields = line.split("\t")
    if len(fields) not in (7, 8):
        return Unreadable(where, f"{len(fields)} tab-separated fields, not 7 or 8")
    artist, album, title, _position, _seconds, rating, start = fields[:7]
    mbid = fields[7] if len(fields) == 8 else ""
    if rating not in ("L", "S"):
        return Unreadable(where, f"rating {excerpt(rating)}, not L or S")
    if not start.isdecimal():
        return Unreadable(where, f"start {excerpt(start)} is not Unix seconds")
    if rating == "S":
        return Skipped("rated_skip", where)
    timestamp = int(start)
    if zone is not None:
        try:
            wall = dt.datetime.fromtimestamp(timestamp, dt.UTC).replace(tzinfo=zone)
        except (OverflowError, ValueError, OSError):
            return Unreadable(where, f"start {excerpt(start)} is out of range")
        timestamp = int(wall.timestamp())
    return checked(
        Play(
            timestamp=timestamp,
            artist=artist,
            title=title,
            origin="scrobbler-log",
            album=album,
            track_mbid=mbid.strip(),
        ),
        where,
    )
