"""Upstream answers are bounded and typed: Spotify sizes that are not numbers, image URLs
that are not http(s), AI descriptions that are huge, not text, or full of control bytes.
Each such item ends failed with the reason (or stored cleaned), never stuck pending."""

from __future__ import annotations

import re
import sqlite3
from typing import Any

import pytest

from musiqued.models import web_url
from musiqued.storage.db import Database
from musiqued.upstream.ai import TRUNCATION_MARK
from musiqued.upstream.lastfm import parse_album_info
from tests.fixtures.enrichment import SimulatedAi, SimulatedSpotify
from tests.fixtures.lastfm import SimulatedLastfm
from tests.fixtures.services import InProcess, InProcessDaemon, eventually
from tests.test_enrich import FAST

CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _rows(database: Database, sql: str) -> list[sqlite3.Row]:
    with sqlite3.connect(f"file:{database.path}?mode=ro", uri=True) as conn:
        conn.row_factory = sqlite3.Row
        rows = conn.execute(sql).fetchall()
    conn.close()
    return rows


def _albums(database: Database) -> list[sqlite3.Row]:
    return _rows(database, "SELECT * FROM albums")


def _failed(database: Database, source: str) -> list[sqlite3.Row]:
    return _rows(
        database,
        f"SELECT * FROM enrichment_queue WHERE source = '{source}' AND state = 'failed'",
    )


async def _settled(daemon: InProcessDaemon) -> dict[str, Any]:
    """``enrich.status`` once nothing is pending or running (no event says so: polled)."""

    async def quiet() -> dict[str, Any] | None:
        status: dict[str, Any] = await daemon.call("enrich.status")
        return status if status["pending"] == status["running"] == 0 else None

    return await eventually(quiet, within=60)


async def test_spotify_sizes_that_are_not_numbers_fail_the_item_once(
    lastfm_sim: SimulatedLastfm,
    spotify_sim: SimulatedSpotify,
    database: Database,
    in_process: InProcess,
) -> None:
    """An image width of "abc": every Spotify item ends failed with the reason, after one
    search or two each (no retry storm, nothing left pending); with a javascript: URL the
    items are done and no image is stored."""
    lastfm_sim.reset(size=60, seed=11)
    spotify_sim.sim.set_images([{"url": "https://i.scdn.co/image/x", "width": "abc", "height": 64}])
    sections = {**lastfm_sim.sections(), **spotify_sim.sections()}
    async with in_process(**sections, enrichment=FAST) as daemon:
        assert (await daemon.run_import(all=True))["state"] == "done"
        status = await _settled(daemon)
        spotify = status["by_source"]["spotify"]
        items = len(_rows(database, "SELECT * FROM enrichment_queue WHERE source = 'spotify'"))
        assert spotify["failed"] == items > 0
        assert spotify["pending"] == 0
        reasons = {row["last_error"] for row in _failed(database, "spotify")}
        assert all("image size is not a number" in reason for reason in reasons), reasons
        assert len(spotify_sim.searches()) <= 2 * items, "each item searched at most twice"

        spotify_sim.sim.set_images([{"url": "javascript:alert(1)", "width": 640, "height": 640}])
        assert (await daemon.call("enrich.run", {"retry_failed": True}))["queued"] == items
        status = await _settled(daemon)
        assert status["by_source"]["spotify"]["failed"] == 0
        assert all(album["image_spotify"] is None for album in _albums(database))
        assert all(album["spotify_id"] for album in _albums(database))
        artists = _rows(database, "SELECT image_spotify FROM artists")
        assert all(artist["image_spotify"] is None for artist in artists)


async def test_ai_descriptions_are_bounded_typed_and_clean(
    lastfm_sim: SimulatedLastfm, ai_sim: SimulatedAi, database: Database, in_process: InProcess
) -> None:
    """A content that is an object, or a body over 1 MiB, fails the album with the reason;
    20 kB of markup with escape and control bytes is stored cut on a word to the configured
    maximum, marked, without control characters (newlines kept)."""
    lastfm_sim.reset(size=20, seed=12)
    ai_sim.sim.set_content({"text": "an object, not text"})
    sections = {**lastfm_sim.sections(), **ai_sim.sections(max_description_chars=1000)}
    async with in_process(**sections, enrichment=FAST) as daemon:
        assert (await daemon.run_import(all=True))["state"] == "done"
        await _settled(daemon)
        failures = _failed(database, "ai")
        albums = len(_albums(database))
        assert len(failures) == albums > 0
        assert all("not text" in row["last_error"] for row in failures)
        assert all(album["description"] is None for album in _albums(database))

        ai_sim.sim.set_content("x" * (2 * 1024 * 1024))
        await daemon.call("enrich.run", {"retry_failed": True})
        await _settled(daemon)
        failures = _failed(database, "ai")
        assert len(failures) == albums
        assert all("more than 1024 KiB" in row["last_error"] for row in failures)

        hostile = "<script>alert(1)</script> \x1b[31mred\x1b[0m \x07bell\r\nline two \u202e " * 400
        ai_sim.sim.set_content(hostile)
        await daemon.call("enrich.run", {"retry_failed": True})
        status = await _settled(daemon)
        assert status["by_source"]["ai"]["failed"] == 0
        for album in _albums(database):
            text = album["description"]
            assert 900 <= len(text) <= 1000
            assert text.endswith(TRUNCATION_MARK)
            assert not CONTROL.search(text)
            assert "\n" in text
            assert "<script>alert(1)</script>" in text, "stored as the text it is"
        results = _rows(database, "SELECT result FROM enrichment_queue WHERE source = 'ai'")
        assert {row["result"] for row in results} == {"description (cut to the maximum length)"}


def test_lastfm_album_links_are_kept_only_when_http() -> None:
    """album.getInfo: an image or page URL that is not http(s) is not kept."""
    info = parse_album_info(
        {
            "album": {
                "url": "javascript:alert(1)",
                "image": [
                    {"size": "mega", "#text": "data:image/png;base64,AAAA"},
                    {"size": "large", "#text": "https://lastfm.freetls.fastly.net/i/u/a.png"},
                ],
            }
        }
    )
    assert info.url == ""
    assert info.image_url == "https://lastfm.freetls.fastly.net/i/u/a.png"


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        ("https://www.last.fm/music/A", True),
        ("http://www.last.fm/music/A", True),
        ("HTTPS://www.last.fm/music/A", True),
        ("Http://x", True),
        ("https:/x", False),
        ("javascript:alert(1)", False),
        ("data:image/png;base64,AAAA", False),
        (" https://x", False),
        ("", False),
        (None, False),
        (["https://x"], False),
    ],
)
def test_a_link_is_kept_only_when_http_in_any_case(value: object, kept: bool) -> None:
    assert web_url(value) == (value if kept else None)
