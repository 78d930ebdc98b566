"""Writing ListenBrainz and Maloja exports, and reading them back: the same identities, the
identifiers kept, every string unchanged."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from musiqued.interchange import formats
from musiqued.interchange.entries import Play
from musiqued.interchange.matching import identity
from musiqued.interchange.writers import ExportFormat, ListenBrainzLines, MalojaExport, form


def stored(
    timestamp: int,
    artist: str,
    title: str,
    album: str | None = None,
    *,
    mbids: tuple[str | None, str | None, str | None] = (None, None, None),
    **extra: Any,
) -> dict[str, Any]:
    """A listen as ``listen_shape`` makes it, with the optional extras."""
    artist_mbid, album_mbid, track_mbid = mbids
    return {
        "timestamp": timestamp,
        "date": "(not read)",
        "artist": artist,
        "title": title,
        "album": album,
        "artist_mbid": artist_mbid,
        "album_mbid": album_mbid,
        "track_mbid": track_mbid,
        "source": "import",
        **extra,
    }


LISTENS = [
    stored(
        1_600_000_000,
        "Beyoncé",
        "Halo",
        "I Am... Sasha Fierce",
        mbids=("859d0860-d480-4efd-970c-c05d5f1776b8", "rel-1", "rec-1"),
        duration_ms=261_000,
    ),
    stored(
        1_600_000_300,
        "Crosby, Stills, Nash & Young",
        "Ohio",
        None,
        origin="spotify",
        spotify_id="spotify:track:4uLU6hMCjMI75M1A2tKUQC",
        loved=True,
    ),
    stored(1_600_000_600, "Sigur Rós", "Hoppípolla", "Takk...", origin="scrobbler-log"),
    stored(1_600_000_900, "Line\nBreak", "Tab\tand \x1b[31mescape\u2028", "🎵", origin="maloja"),
    stored(1_600_000_900, "Line\nBreak", "Another title", None, origin="lastfm-csv"),
]


def export(fmt: ExportFormat, listens: list[dict[str, Any]]) -> str:
    """The export of ``listens`` as the export service writes it: two at a time."""
    writer = form(fmt, client_version="0.1.0", export_time=1_700_000_000)
    parts = [writer.head()]
    parts.extend(writer.rows(listens[start : start + 2]) for start in range(0, len(listens), 2))
    return "".join([*parts, writer.tail(len(listens))])


def read_back(fmt: ExportFormat, text: str) -> list[Play]:
    entries = list(formats.read(fmt, io.BytesIO(text.encode()), f"export.{fmt}"))
    assert all(isinstance(entry, Play) for entry in entries), entries
    return [entry for entry in entries if isinstance(entry, Play)]


@pytest.mark.parametrize("fmt", ["listenbrainz", "maloja"])
def test_round_trip_keeps_identities_and_strings(fmt: ExportFormat) -> None:
    """What is written in either format reads back to the same starts, artists and titles,
    every string as it was (newlines, escapes, emoji included), the album where known; the
    file is recognised as its format."""
    text = export(fmt, LISTENS)
    assert formats.detect(f"export.{fmt}", text.encode()[: formats.DETECT_BYTES]) == fmt
    plays = read_back(fmt, text)
    assert [(p.timestamp, p.artist, p.title, p.album) for p in plays] == [
        (listen["timestamp"], listen["artist"], listen["title"], listen["album"] or "")
        for listen in LISTENS
    ]
    assert {(p.timestamp, identity(p.artist, p.title)) for p in plays} == {
        (listen["timestamp"], identity(listen["artist"], listen["title"])) for listen in LISTENS
    }


def test_listenbrainz_lines_carry_what_is_known() -> None:
    """Each line is one listen: listened_at, the names, and in additional_info the client,
    the music service by origin, the MusicBrainz ids, the duration and the Spotify track as
    ListenBrainz spells them; nothing unknown is written."""
    lines = export("listenbrainz", LISTENS[:3]).splitlines()
    first, second, third = (json.loads(line) for line in lines)
    assert first == {
        "listened_at": 1_600_000_000,
        "track_metadata": {
            "artist_name": "Beyoncé",
            "track_name": "Halo",
            "release_name": "I Am... Sasha Fierce",
            "additional_info": {
                "submission_client": "musiqued",
                "submission_client_version": "0.1.0",
                "music_service": "last.fm",
                "recording_mbid": "rec-1",
                "release_mbid": "rel-1",
                "artist_mbids": ["859d0860-d480-4efd-970c-c05d5f1776b8"],
                "duration_ms": 261_000,
            },
        },
    }
    assert "release_name" not in second["track_metadata"]
    assert second["track_metadata"]["additional_info"] == {
        "submission_client": "musiqued",
        "submission_client_version": "0.1.0",
        "music_service": "spotify.com",
        "spotify_id": "https://open.spotify.com/track/4uLU6hMCjMI75M1A2tKUQC",
    }
    assert "music_service" not in third["track_metadata"]["additional_info"]
    back = read_back("listenbrainz", export("listenbrainz", LISTENS[:2]))
    assert (back[0].track_mbid, back[0].album_mbid, back[0].artist_mbid) == (
        "rec-1",
        "rel-1",
        "859d0860-d480-4efd-970c-c05d5f1776b8",
    )
    assert back[1].spotify_track_uri == "spotify:track:4uLU6hMCjMI75M1A2tKUQC"


def test_maloja_export_is_one_json_document() -> None:
    """The Maloja export is valid JSON as Maloja reads it: export_time, then each scrobble
    with its artists, title, album (null when unknown), length in seconds and origin; an
    empty export is valid too."""
    document = json.loads(export("maloja", LISTENS[:2]))
    assert document["maloja"] == {"export_time": 1_700_000_000}
    assert document["scrobbles"] == [
        {
            "time": 1_600_000_000,
            "track": {
                "artists": ["Beyoncé"],
                "title": "Halo",
                "album": {"artists": ["Beyoncé"], "albumtitle": "I Am... Sasha Fierce"},
                "length": 261,
            },
            "duration": None,
            "origin": "musiqued:lastfm",
        },
        {
            "time": 1_600_000_300,
            "track": {
                "artists": ["Crosby, Stills, Nash & Young"],
                "title": "Ohio",
                "album": None,
                "length": None,
            },
            "duration": None,
            "origin": "musiqued:spotify",
        },
    ]
    assert json.loads(export("maloja", [])) == {
        "maloja": {"export_time": 1_700_000_000},
        "scrobbles": [],
    }


def test_writers_produce_text_batch_by_batch() -> None:
    """head, rows per batch and tail concatenated are the whole export: nothing is held
    back between batches."""
    lb = ListenBrainzLines("0.1.0")
    assert lb.rows(LISTENS[:1]).count("\n") == 1
    maloja = MalojaExport(1)
    parts = [maloja.head(), maloja.rows(LISTENS[:1]), maloja.rows(LISTENS[1:2]), maloja.tail(2)]
    assert json.loads("".join(parts))["scrobbles"][1]["track"]["title"] == "Ohio"


names = st.text(min_size=1, max_size=40).filter(lambda text: bool(text.strip()))


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=2**31 - 1),
            names,
            names,
            st.one_of(st.none(), names),
        ),
        max_size=8,
    ),
    fmt=st.sampled_from(["listenbrainz", "maloja"]),
)
def test_any_text_reads_back_unchanged(
    rows: list[tuple[int, str, str, str | None]], fmt: ExportFormat
) -> None:
    """Whatever the names hold (NUL, control characters, line and paragraph separators,
    any script), each format reads back every start, artist, title and album unchanged."""
    listens = [stored(timestamp, artist, title, album) for timestamp, artist, title, album in rows]
    plays = read_back(fmt, export(fmt, listens))
    assert [(p.timestamp, p.artist, p.title, p.album) for p in plays] == [
        (timestamp, artist, title, album or "") for timestamp, artist, title, album in rows
    ]
