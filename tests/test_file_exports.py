"""Exports in other services' formats (``history.export`` ``listenbrainz`` and ``maloja``),
in-process: what this package's own readers read back is the history, listen for listen."""

from __future__ import annotations

import io
import json

import pytest

from musiqued.interchange import formats
from musiqued.interchange.entries import Play
from musiqued.services import export
from musiqued.storage.db import Database
from tests.history_support import generated, store


async def _exported(database: Database, fmt: export.Format, **period: int | None) -> str:
    parts: list[str] = []

    async def write(text: str) -> None:
        parts.append(text)

    await export.export(
        database, fmt, since=period.get("since"), until=period.get("until"), write=write
    )
    return "".join(parts)


@pytest.mark.parametrize("fmt", ["listenbrainz", "maloja"])
async def test_exports_read_back_as_the_same_listens(database: Database, fmt: str) -> None:
    """Every listen of the period, oldest first, comes back through the format's reader with
    its start, artist, title and album; ListenBrainz's lines name musiqued and Last.fm;
    Maloja's scrobbles say they came from musiqued's Last.fm listens."""
    scrobbles = generated(300)
    await store(database, scrobbles)
    since, until = scrobbles[30].timestamp, scrobbles[270].timestamp
    text = await _exported(database, fmt, since=since, until=until)  # type: ignore[arg-type]
    raw = text.encode()
    assert formats.detect(f"x.{fmt}", raw[: formats.DETECT_BYTES]) == fmt
    plays = [e for e in formats.read(fmt, io.BytesIO(raw), "x") if isinstance(e, Play)]  # type: ignore[arg-type]
    wanted = sorted(
        (s.timestamp, s.artist, s.title, s.album) for s in scrobbles if since <= s.timestamp < until
    )
    assert sorted((p.timestamp, p.artist, p.title, p.album) for p in plays) == wanted
    if fmt == "listenbrainz":
        first = json.loads(text.splitlines()[0])
        info = first["track_metadata"]["additional_info"]
        assert info["submission_client"] == "musiqued"
        assert info["music_service"] == "last.fm"
    else:
        document = json.loads(text)
        assert {s["origin"] for s in document["scrobbles"]} == {"musiqued:lastfm"}


@pytest.mark.parametrize("fmt", ["listenbrainz", "maloja"])
async def test_an_empty_history_exports_an_empty_file_of_the_format(
    database: Database, fmt: str
) -> None:
    """Nothing stored: ListenBrainz's export is empty, Maloja's an export with no scrobbles."""
    text = await _exported(database, fmt)  # type: ignore[arg-type]
    if fmt == "listenbrainz":
        assert text == ""
    else:
        assert json.loads(text)["scrobbles"] == []
