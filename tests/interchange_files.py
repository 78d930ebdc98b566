"""Other services' export files, generated with their real field names and value shapes.

Each builder returns the file's bytes, as the service writes them; the tests hand them to
the readers as ``io.BytesIO`` (a seekable binary file, as a handed-over descriptor is).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

CLIENT_TIME = "2024-01-01T00:00:00Z"


def iso_z(timestamp: int) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def spotify_play(
    end: int,
    *,
    ms_played: int = 200_000,
    track: str | None = "Song",
    artist: str | None = "Artist",
    album: str | None = "Album",
    uri: str | None = "spotify:track:4uLU6hMCjMI75M1A2tKUQC",
    incognito: bool = False,
    **overrides: Any,
) -> dict[str, Any]:
    """One entry of ``Streaming_History_Audio_*.json``: a music play ending at ``end``."""
    entry: dict[str, Any] = {
        "ts": iso_z(end),
        "username": "someone",  # older exports only
        "platform": "Android OS 13 API 33 (Google, Pixel 7)",
        "ms_played": ms_played,
        "conn_country": "CH",
        "ip_addr": "192.0.2.10",
        "master_metadata_track_name": track,
        "master_metadata_album_artist_name": artist,
        "master_metadata_album_album_name": album,
        "spotify_track_uri": uri,
        "episode_name": None,
        "episode_show_name": None,
        "spotify_episode_uri": None,
        "audiobook_title": None,
        "audiobook_uri": None,
        "audiobook_chapter_uri": None,
        "audiobook_chapter_title": None,
        "reason_start": "trackdone",
        "reason_end": "trackdone",
        "shuffle": False,
        "skipped": False,
        "offline": False,
        "offline_timestamp": None,
        "incognito_mode": incognito,
    }
    entry.update(overrides)
    return entry


def spotify_episode(end: int) -> dict[str, Any]:
    """A podcast episode: no track fields, the episode's instead."""
    return spotify_play(
        end,
        track=None,
        artist=None,
        album=None,
        uri=None,
        episode_name="Episode 12: On Tape",
        episode_show_name="The Show",
        spotify_episode_uri="spotify:episode:5Xt5DXGzch68nYYamXrNxZ",
    )


def spotify_chapter(end: int) -> dict[str, Any]:
    """An audiobook chapter: no track fields, the audiobook's instead."""
    return spotify_play(
        end,
        track=None,
        artist=None,
        album=None,
        uri=None,
        audiobook_title="A Long Book",
        audiobook_uri="spotify:show:2Fh1tkeD2ck0Y4QH3dLRbX",
        audiobook_chapter_uri="spotify:episode:0A7KkcHUpUgEWQw9e3A1zu",
        audiobook_chapter_title="Chapter 3",
    )


def spotify_account_play(end: int, *, ms_played: int = 200_000, **fields: Any) -> dict[str, Any]:
    """One entry of the account data's ``StreamingHistory*.json`` (end to the minute)."""
    moment = dt.datetime.fromtimestamp(end, dt.UTC)
    return {
        "endTime": moment.strftime("%Y-%m-%d %H:%M"),
        "artistName": "Artist",
        "trackName": "Song",
        "msPlayed": ms_played,
        **fields,
    }


def json_file(value: Any, *, bom: bool = False, crlf: bool = False) -> bytes:
    """``value`` as Spotify and Maloja lay out their JSON (indented)."""
    text = json.dumps(value, indent=2, ensure_ascii=False)
    if crlf:
        text = text.replace("\n", "\r\n")
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode()


def listenbrainz_listen(
    listened_at: float,
    *,
    artist: str = "Artist",
    title: str = "Song",
    release: str | None = "Album",
    additional_info: Mapping[str, Any] | None = None,
    mbid_mapping: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A listen as ListenBrainz's export writes it (``inserted_at``, ``recording_msid``,
    ``mbid_mapping`` null when unmatched)."""
    track_metadata: dict[str, Any] = {
        "artist_name": artist,
        "track_name": title,
        "additional_info": {
            "submission_client": "Pano Scrobbler",
            "recording_msid": "0b7f4fa6-6ee4-4fef-9b16-a5f1e8dd26c4",
            **(additional_info or {}),
        },
        "recording_msid": "0b7f4fa6-6ee4-4fef-9b16-a5f1e8dd26c4",
        "mbid_mapping": dict(mbid_mapping) if mbid_mapping else None,
    }
    if release is not None:
        track_metadata["release_name"] = release
    return {
        "listened_at": listened_at,
        "inserted_at": listened_at + 3.25,
        "track_metadata": track_metadata,
    }


def json_lines(items: Iterable[Any], *, crlf: bool = False) -> bytes:
    end = "\r\n" if crlf else "\n"
    return "".join(json.dumps(item, ensure_ascii=False) + end for item in items).encode()


def listenbrainz_zip(listens: Sequence[Mapping[str, Any]], *, username: str = "someone") -> bytes:
    """The export zip: ``user.json``, then ``listens/<year>/<month>.jsonl`` per month (in
    time order, as ListenBrainz writes them), and the feedback, which holds no listens."""
    months: dict[tuple[int, int], list[Mapping[str, Any]]] = {}
    for listen in listens:
        moment = dt.datetime.fromtimestamp(listen["listened_at"], dt.UTC)
        months.setdefault((moment.year, moment.month), []).append(listen)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("user.json", json.dumps({"user_id": 7, "username": username}) + "\n")
        for (year, month), items in sorted(months.items()):
            archive.writestr(f"listens/{year}/{month}.jsonl", json_lines(items))
        archive.writestr(
            "feedback.jsonl",
            json.dumps({"recording_msid": "x", "recording_mbid": None, "score": 1}) + "\n",
        )
    return buffer.getvalue()


def maloja_scrobble(
    time: int,
    *,
    artists: Sequence[str] = ("Artist",),
    title: str = "Song",
    album: str | None = "Album",
    album_artists: Sequence[str] | None = None,
    length: int | None = None,
) -> dict[str, Any]:
    return {
        "time": time,
        "track": {
            "artists": list(artists),
            "title": title,
            "album": None
            if album is None
            else {"albumtitle": album, "artists": list(album_artists or artists)},
            "length": length,
        },
        "duration": None,
        "origin": "client:Web Scrobbler",
    }


def maloja_export(
    scrobbles: Sequence[Mapping[str, Any]], *, export_time: int = 1_700_000_000
) -> bytes:
    """Maloja's ``maloja_export_<time>.json`` (indented by three, as Maloja writes it)."""
    data = {"maloja": {"export_time": export_time}, "scrobbles": list(scrobbles)}
    return json.dumps(data, indent=3).encode()


def lastfm_date(timestamp: int) -> str:
    """``"31 Jan 2021 20:15"``, with English month names whatever the locale."""
    moment = dt.datetime.fromtimestamp(timestamp, dt.UTC)
    month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"][
        moment.month - 1
    ]
    return f"{moment.day:02d} {month} {moment.year} {moment.hour:02d}:{moment.minute:02d}"


def lastfm_csv(
    rows: Iterable[Sequence[str]], *, encoding: str = "utf-8", crlf: bool = False, bom: bool = False
) -> bytes:
    """lastfm-to-csv's file: ``artist,album,title,date`` rows, no header."""
    text = io.StringIO()
    csv.writer(text, lineterminator="\r\n" if crlf else "\n").writerows(rows)
    return (b"\xef\xbb\xbf" if bom else b"") + text.getvalue().encode(encoding)


def scrobbler_log(
    lines: Iterable[Sequence[str]], *, zone: str = "UTC", crlf: bool = False
) -> bytes:
    """A Rockbox ``.scrobbler.log``: its three header lines, the column line, the tracks."""
    end = "\r\n" if crlf else "\n"
    head = [
        "#AUDIOSCROBBLER/1.1",
        f"#TZ/{zone}",
        "#CLIENT/Rockbox ipodvideo $Revision$",
        "#ARTIST #ALBUM #TITLE #TRACKNUM #LENGTH #RATING #TIMESTAMP #MUSICBRAINZ_TRACKID",
    ]
    body = ["\t".join(fields) for fields in lines]
    return "".join(line + end for line in head + body).encode()
