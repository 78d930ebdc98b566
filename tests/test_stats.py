"""``stats.summary`` (in-process) and ``musiquectl stats`` (end to end) against a small
history computed by hand."""

from __future__ import annotations

import json
from pathlib import Path

from musiqued.models import Scrobble
from musiqued.storage.db import Database
from tests.fixtures.services import InProcess
from tests.fixtures.whole_daemon import StartWholeDaemon
from tests.history_support import seed, store, ts

HISTORY = [
    Scrobble(ts("2024-03-01T10:00:00Z"), "Alpha", "Song 1", "Xylo"),
    Scrobble(ts("2024-03-01T11:00:00Z"), "Alpha", "Song 2", "Xylo"),
    Scrobble(ts("2024-03-01T23:59:59Z"), "Beta", "Tune"),  # no album
    Scrobble(ts("2024-03-02T00:00:00Z"), "ALPHA", "song 1", "XYLO"),  # same artist/track/album
    Scrobble(ts("2024-03-03T12:00:00Z"), "Gamma", "Other", "Yonder"),
    Scrobble(ts("2024-03-03T12:01:00Z"), "Alpha", "Song 1", "Xylo"),
]


async def test_summary_of_everything(database: Database, in_process: InProcess) -> None:
    """Counts, first/last listen, top artists/albums and per-UTC-day counts are exact."""
    await store(database, HISTORY)
    async with in_process() as daemon:
        stats = await daemon.call("stats.summary")
        assert (stats["listens"], stats["artists"], stats["albums"], stats["tracks"]) == (
            6,
            3,
            2,
            4,
        )
        assert stats["first_listen"]["timestamp"] == ts("2024-03-01T10:00:00Z")
        assert stats["first_listen"]["title"] == "Song 1"
        assert stats["last_listen"]["date"] == "2024-03-03T12:01:00Z"
        assert stats["top_artists"] == [
            {"artist": "Alpha", "listens": 4},
            {"artist": "Beta", "listens": 1},
            {"artist": "Gamma", "listens": 1},
        ]
        assert stats["top_albums"] == [
            {"artist": "Alpha", "album": "Xylo", "listens": 4},
            {"artist": "Gamma", "album": "Yonder", "listens": 1},
        ]
        assert stats["per_day"] == [
            {"day": "2024-03-01", "listens": 3},
            {"day": "2024-03-02", "listens": 1},
            {"day": "2024-03-03", "listens": 2},
        ]


async def test_summary_of_a_period(database: Database, in_process: InProcess) -> None:
    """``since`` inclusive, ``until`` exclusive: a listen exactly at ``until`` is left out."""
    await store(database, HISTORY)
    async with in_process() as daemon:
        stats = await daemon.call(
            "stats.summary", {"since": "2024-03-01T12:00:00Z", "until": "2024-03-03T12:00:00Z"}
        )
        assert (stats["listens"], stats["artists"], stats["albums"], stats["tracks"]) == (
            2,
            2,
            1,
            2,
        )
        assert stats["per_day"] == [
            {"day": "2024-03-01", "listens": 1},
            {"day": "2024-03-02", "listens": 1},
        ]
        assert stats["top_albums"] == [{"artist": "Alpha", "album": "Xylo", "listens": 1}]
        empty = await daemon.call("stats.summary", {"since": "2030-01-01"})
        assert empty["listens"] == 0
        assert empty["first_listen"] is None
        assert empty["top_artists"] == []
        assert empty["per_day"] == []


def test_ctl_stats(workdir: Path, start_in_thread: StartWholeDaemon) -> None:
    """``musiquectl stats`` prints the figures; ``--json`` prints the RPC result."""
    seed(workdir / "musique.db", HISTORY)
    daemon = start_in_thread()
    human = daemon.ctl("stats")
    assert human.returncode == 0, human.stderr
    assert "listens:" in human.stdout
    assert "6" in human.stdout.splitlines()[0]
    assert "Alpha\t4" in human.stdout
    assert "2024-03-03\t2" in human.stdout
    as_json = daemon.ctl("--json", "stats", "--since", "2024-03-02")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)["listens"] == 3
