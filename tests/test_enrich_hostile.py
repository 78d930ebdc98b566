"""Upstream answers are bounded and typed: Spotify sizes that are not numbers, image URLs
that are not http(s), AI descriptions that are huge, not text, or full of control bytes.
Each such item ends failed with the reason (or stored cleaned), never stuck pending."""

from __future__ import annotations

import re
from typing import Any

import pytest

from musiqued.models import web_url
from musiqued.upstream.ai import TRUNCATION_MARK
from musiqued.upstream.lastfm import parse_album_info
from tests.fixtures.daemon import StartDaemon
from tests.fixtures.enrichment import SimulatedAi, SimulatedSpotify
from tests.fixtures.lastfm import SimulatedLastfm
from tests.test_enrich import FAST, _albums, _import_all, _rows, _settled

CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _failed(daemon: Any, source: str) -> list[Any]:
    return _rows(
        daemon,
        f"SELECT * FROM enrichment_queue WHERE source = '{source}' AND state = 'failed'",
    )


def test_spotify_sizes_that_are_not_numbers_fail_the_item_once(
    lastfm_sim: SimulatedLastfm, spotify_sim: SimulatedSpotify, start_daemon: StartDaemon
) -> None:
    """An image width of "abc": every Spotify item ends failed with the reason, after one
    search or two each (no retry storm, nothing left pending); with a javascript: URL the
    items are done and no image is stored."""
    lastfm_sim.reset(size=60, seed=11)
    spotify_sim.sim.set_images([{"url": "https://i.scdn.co/image/x", "width": "abc", "height": 64}])
    daemon = start_daemon(**lastfm_sim.sections(), **spotify_sim.sections(), enrichment=FAST)
    assert _import_all(daemon)["state"] == "done"
    status = _settled(daemon)
    spotify = status["by_source"]["spotify"]
    items = len(_rows(daemon, "SELECT * FROM enrichment_queue WHERE source = 'spotify'"))
    assert spotify["failed"] == items > 0
    assert spotify["pending"] == 0
    reasons = {row["last_error"] for row in _failed(daemon, "spotify")}
    assert all("image size is not a number" in reason for reason in reasons), reasons
    assert len(spotify_sim.searches()) <= 2 * items, "each item searched at most twice"

    spotify_sim.sim.set_images([{"url": "javascript:alert(1)", "width": 640, "height": 640}])
    assert daemon.call("enrich.run", {"retry_failed": True})["queued"] == items
    status = _settled(daemon)
    assert status["by_source"]["spotify"]["failed"] == 0
    assert all(album["image_spotify"] is None for album in _albums(daemon))
    assert all(album["spotify_id"] for album in _albums(daemon))
    artists = _rows(daemon, "SELECT image_spotify FROM artists")
    assert all(artist["image_spotify"] is None for artist in artists)


def test_ai_descriptions_are_bounded_typed_and_clean(
    lastfm_sim: SimulatedLastfm, ai_sim: SimulatedAi, start_daemon: StartDaemon
) -> None:
    """A content that is an object, or a body over 1 MiB, fails the album with the reason;
    20 kB of markup with escape and control bytes is stored cut on a word to the configured
    maximum, marked, without control characters (newlines kept)."""
    lastfm_sim.reset(size=20, seed=12)
    ai_sim.sim.set_content({"text": "an object, not text"})
    daemon = start_daemon(
        **lastfm_sim.sections(),
        **ai_sim.sections(max_description_chars=1000),
        enrichment=FAST,
    )
    assert _import_all(daemon)["state"] == "done"
    _settled(daemon)
    failures = _failed(daemon, "ai")
    albums = len(_albums(daemon))
    assert len(failures) == albums > 0
    assert all("not text" in row["last_error"] for row in failures)
    assert all(album["description"] is None for album in _albums(daemon))

    ai_sim.sim.set_content("x" * (2 * 1024 * 1024))
    daemon.call("enrich.run", {"retry_failed": True})
    _settled(daemon)
    failures = _failed(daemon, "ai")
    assert len(failures) == albums
    assert all("more than 1024 KiB" in row["last_error"] for row in failures)

    hostile = "<script>alert(1)</script> \x1b[31mred\x1b[0m \x07bell\r\nline two \u202e " * 400
    ai_sim.sim.set_content(hostile)
    daemon.call("enrich.run", {"retry_failed": True})
    status = _settled(daemon)
    assert status["by_source"]["ai"]["failed"] == 0
    for album in _albums(daemon):
        text = album["description"]
        assert 900 <= len(text) <= 1000
        assert text.endswith(TRUNCATION_MARK)
        assert not CONTROL.search(text)
        assert "\n" in text
        assert "<script>alert(1)</script>" in text, "stored as the text it is"
    results = _rows(daemon, "SELECT result FROM enrichment_queue WHERE source = 'ai'")
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
