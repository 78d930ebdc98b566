"""Spotify's streaming history: the Extended Streaming History and the account data's.

The Extended Streaming History (``Streaming_History_Audio_*.json``, earlier
``endsong_*.json``) is a JSON array of objects, one per play::

    {"ts": "2022-06-17T19:53:06Z", "ms_played": 215000,
     "master_metadata_track_name": ..., "master_metadata_album_artist_name": ...,
     "master_metadata_album_album_name": ..., "spotify_track_uri": "spotify:track:...",
     "episode_name": null, "episode_show_name": null, "spotify_episode_uri": null,
     "audiobook_title": null, "audiobook_uri": null, "audiobook_chapter_uri": null,
     "audiobook_chapter_title": null, "reason_start": ..., "reason_end": ...,
     "shuffle": ..., "skipped": ..., "offline": ..., "offline_timestamp": ...,
     "incognito_mode": ..., "platform": ..., "conn_country": ..., "ip_addr": ...}

``ts`` is when the play ended, in UTC; ``ms_played`` how long it played. The account data's
``StreamingHistory*.json`` has ``{"endTime": "2021-01-31 20:15", "artistName",
"trackName", "msPlayed"}`` (the end in UTC, to the minute); its podcast files name
``podcastName`` and ``episodeName`` instead.

The zip Spotify sends (``my_spotify_data.zip``) is read as every history file in it.

A play's listen time is its start, ``ts - ms_played`` (floored to the second). Despite its
name, ``master_metadata_album_artist_name`` is the track's (first) artist: it is read as the
artist, and the album artist stays unknown. ``platform``, ``conn_country``, ``ip_addr`` and
``username`` are not read.

An entry that is no listen is skipped under one reason, the first that applies: what it is
(a podcast episode, an audiobook chapter, no track name at all) before how it was played
(incognito, then shorter than ``MIN_PLAY_MS``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any, BinaryIO

from musiqued.interchange.entries import (
    MIN_PLAY_MS,
    Entry,
    Play,
    Skipped,
    Unreadable,
    checked,
    excerpt,
)
from musiqued.interchange.streams import (
    ZIP_MAGIC,
    Readable,
    json_items,
    text_field,
    whole_number,
    zip_members,
)

HISTORY_MEMBER = re.compile(
    r"(?:^|/)(?:Streaming_History_Audio_[^/]*|endsong_[^/]*|StreamingHistory[^/]*)\.json$"
)
"""The history files inside the zip Spotify sends (its PDFs and video history are not)."""


def read(file: BinaryIO, name: str) -> Iterator[Entry]:
    """Each entry of a Spotify history file, or of every history file in Spotify's zip.

    ``file`` must be seekable: its start is read to tell a zip from a JSON file.
    """
    head = file.read(len(ZIP_MAGIC))
    file.seek(0)
    if head == ZIP_MAGIC:
        for member, opened in zip_members(file, name, lambda m: bool(HISTORY_MEMBER.search(m))):
            yield from read_json(opened, f"{name}: {member}", where_prefix=f"{member}: ")
    else:
        yield from read_json(file, name)


def read_json(file: Readable, name: str, *, where_prefix: str = "") -> Iterator[Entry]:
    """Each entry of one history file (either kind: each entry says which it is)."""
    for number, entry in json_items(file, "item", name):
        where = f"{where_prefix}entry {number}"
        if not isinstance(entry, dict):
            yield Unreadable(where, f"not an object but {type(entry).__name__}")
        elif "endTime" in entry:
            yield _account_data(entry, where)
        else:
            yield _extended(entry, where)


def _extended(entry: dict[str, Any], where: str) -> Entry:
    end = _utc_seconds(entry.get("ts"))
    played = whole_number(entry.get("ms_played"))
    if end is None or played is None or played < 0:
        return Unreadable(
            where,
            f"no end time and played milliseconds (ts {excerpt(entry.get('ts'))}, "
            f"ms_played {excerpt(entry.get('ms_played'))})",
        )
    if entry.get("spotify_episode_uri") or entry.get("episode_name"):
        return Skipped("podcast", where)
    if (
        entry.get("audiobook_uri")
        or entry.get("audiobook_chapter_uri")
        or entry.get("audiobook_title")
    ):
        return Skipped("audiobook", where)
    title = text_field(entry.get("master_metadata_track_name"))
    if not title:
        return Skipped("no_track_name", where)
    if entry.get("incognito_mode") is True:
        return Skipped("incognito", where)
    if played < MIN_PLAY_MS:
        return Skipped("short_play", where)
    return checked(
        Play(
            timestamp=(end * 1000 - played) // 1000,
            artist=text_field(entry.get("master_metadata_album_artist_name")) or "",
            title=title,
            origin="spotify",
            album=text_field(entry.get("master_metadata_album_album_name")) or "",
            spotify_track_uri=text_field(entry.get("spotify_track_uri")) or "",
        ),
        where,
    )


def _account_data(entry: dict[str, Any], where: str) -> Entry:
    end = _utc_seconds(entry.get("endTime"))
    played = whole_number(entry.get("msPlayed"))
    if end is None or played is None or played < 0:
        return Unreadable(
            where,
            f"no end time and played milliseconds (endTime {excerpt(entry.get('endTime'))}, "
            f"msPlayed {excerpt(entry.get('msPlayed'))})",
        )
    if "podcastName" in entry or "episodeName" in entry:
        return Skipped("podcast", where)
    if "audiobookName" in entry or "chapterName" in entry:
        return Skipped("audiobook", where)
    title = text_field(entry.get("trackName"))
    if not title:
        return Skipped("no_track_name", where)
    if played < MIN_PLAY_MS:
        return Skipped("short_play", where)
    return checked(
        Play(
            timestamp=(end * 1000 - played) // 1000,
            artist=text_field(entry.get("artistName")) or "",
            title=title,
            origin="spotify",
        ),
        where,
    )


def _utc_seconds(value: object) -> int | None:
    """``"2022-06-17T19:53:06Z"`` or ``"2021-01-31 20:15"`` (UTC both) as Unix seconds."""
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp())
