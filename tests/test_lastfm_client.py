"""The async Last.fm client against the simulator: quirks, faults, 29, errors, signing."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from musiqued.errors import FatalUpstreamError, TransientUpstreamError
from musiqued.models import Scrobble
from musiqued.sim.faults import WIRE_FAULTS
from musiqued.sim.lastfm import LastfmSim
from musiqued.upstream.lastfm import (
    LastfmClient,
    RetryPolicy,
    parse_album_info,
    parse_recent_tracks,
    sign,
)
from musiqued.upstream.ratelimit import Governor, Priority
from tests.fixtures.lastfm import FAST_RETRY, SimulatedLastfm, running_sim

RECORDED_PAGE = Path(__file__).parent / "data" / "lastfm" / "extended-nowplaying-page.json"


def make_client(
    sim: SimulatedLastfm,
    *,
    governor: Governor | None = None,
    retry: RetryPolicy = FAST_RETRY,
    **config: Any,
) -> LastfmClient:
    cfg = sim.config(**config)
    return LastfmClient(
        cfg, governor or Governor(cfg.requests_per_second, cfg.max_in_flight), retry=retry
    )


async def fetch_all(client: LastfmClient, limit: int = 200) -> set[tuple[int, str, str]]:
    first = await client.recent_tracks(page=1, limit=limit)
    identities = {s.identity for s in first.scrobbles}
    for page in range(2, first.total_pages + 1):
        result = await client.recent_tracks(page=page, limit=limit)
        assert result.total == first.total
        identities |= {s.identity for s in result.scrobbles}
    return identities


def recorded_scrobbles() -> list[Scrobble]:
    """The recorded page's scrobbles, read straight from the JSON for comparison."""
    raw = json.loads(RECORDED_PAGE.read_text(encoding="utf-8"))["recenttracks"]["track"]
    return [
        Scrobble(
            timestamp=int(t["date"]["uts"]),
            artist=t["artist"]["name"],
            title=t["name"],
            album=t["album"]["#text"],
            artist_mbid=t["artist"]["mbid"],
            album_mbid=t["album"]["mbid"],
            track_mbid=t["mbid"],
            track_url=t["url"],
            artist_url=t["artist"]["url"],
            loved=t["loved"] == "1",
        )
        for t in raw
        if "date" in t
    ]


async def test_recorded_page_parses_exactly() -> None:
    """The recorded page, served by the simulator, parses to exactly its scrobbles and totals."""
    sim = LastfmSim.from_file(RECORDED_PAGE)
    oldest = min(s.timestamp for s in sim.scrobbles())
    sim.add_rows(
        [{"timestamp": oldest - 60 * (i + 1), "artist": "X", "title": f"{i}"} for i in range(7)]
    )
    with running_sim(sim) as simulated:
        client = make_client(simulated)
        await client.open()
        try:
            page = await client.recent_tracks(page=1, limit=4)
        finally:
            await client.close()
    assert page.scrobbles == recorded_scrobbles()
    assert (page.page, page.per_page, page.total_pages, page.total) == (1, 4, 3, 11)
    assert page.now_playing is not None
    assert (page.now_playing.artist, page.now_playing.title, page.now_playing.album) == (
        "The Howl & The Hum",
        "Hall of Fame",
        "Human Contact",
    )


def test_parse_quirks() -> None:
    """Bare single object, `[]`, @attr after track, plain artists and an empty album normalise."""
    single = {
        "recenttracks": {
            "track": {
                "artist": {"mbid": "", "#text": "Ólafur Arnalds"},
                "album": {"mbid": "", "#text": ""},
                "name": "Saman",
                "mbid": "",
                "url": "https://www.last.fm/music/%C3%93lafur+Arnalds/_/Saman",
                "date": {"uts": "1600000000", "#text": "13 Sep 2020, 12:26"},
            },
            "@attr": {"page": "1", "perPage": "50", "totalPages": "1", "total": "1", "user": "x"},
        }
    }
    page = parse_recent_tracks(single)
    assert page.scrobbles == [
        Scrobble(
            1600000000,
            "Ólafur Arnalds",
            "Saman",
            "",
            track_url="https://www.last.fm/music/%C3%93lafur+Arnalds/_/Saman",
            loved=False,
        )
    ]
    assert page.now_playing is None
    empty = {"recenttracks": {"@attr": {"page": "1", "total": "0", "totalPages": "0"}, "track": []}}
    assert parse_recent_tracks(empty).scrobbles == []
    playing_only = {
        "recenttracks": {
            "track": {
                "@attr": {"nowplaying": "true"},
                "artist": {"mbid": "", "#text": "A"},
                "album": {"mbid": "", "#text": "C"},
                "name": "B",
            },
            "@attr": {"page": "1", "total": "0", "totalPages": "0", "perPage": "50"},
        }
    }
    page = parse_recent_tracks(playing_only)
    assert page.scrobbles == []
    assert page.now_playing is not None
    assert (page.now_playing.artist, page.now_playing.title, page.now_playing.album) == (
        "A",
        "B",
        "C",
    )
    with pytest.raises(TransientUpstreamError):
        parse_recent_tracks({"something": "else"})


def test_signature_is_lastfms() -> None:
    """api_sig: md5 of sorted key+value pairs without format, then the secret."""
    params = {"method": "auth.getSession", "api_key": "k", "token": "t", "format": "json"}
    assert sign(params, "s") == hashlib.md5(b"api_keykmethodauth.getSessiontokents").hexdigest()


async def test_pages_and_playcount(
    lastfm_client: LastfmClient, lastfm_sim: SimulatedLastfm
) -> None:
    """Every page at once gives exactly the simulated history; playcount is the total."""
    assert await fetch_all(lastfm_client) == lastfm_sim.expected()
    assert await lastfm_client.playcount() == 1000


async def test_non_extended_and_windows(
    lastfm_client: LastfmClient, lastfm_sim: SimulatedLastfm
) -> None:
    """Plain (non-extended) pages and from/to windows give the same scrobbles."""
    history = lastfm_sim.scrobbles()
    newest, oldest = history[10].timestamp, history[60].timestamp
    page = await lastfm_client.recent_tracks(
        from_ts=oldest, to_ts=newest, extended=False, limit=200
    )
    expected = [s for s in history if oldest <= s.timestamp < newest]
    assert [s.identity for s in page.scrobbles] == [s.identity for s in expected]
    assert [s.album for s in page.scrobbles] == [s.album for s in expected]
    assert page.total == len(expected)


async def test_now_playing_is_split_out(
    lastfm_client: LastfmClient, lastfm_sim: SimulatedLastfm
) -> None:
    """The now-playing entry is not a scrobble; the page still holds `limit` scrobbles."""
    lastfm_sim.set_now_playing("Sigur Rós", "Glósóli", "Takk...")
    page = await lastfm_client.recent_tracks(limit=5, priority=Priority.TRACKER)
    assert len(page.scrobbles) == 5
    assert page.now_playing is not None
    assert page.now_playing.title == "Glósóli"


@pytest.mark.parametrize("kind", WIRE_FAULTS)
async def test_every_fault_kind_still_gives_exact_pages(
    lastfm_sim: SimulatedLastfm, kind: str
) -> None:
    """At a 30% fault rate of each kind on the wire, every page is retried until it is
    exact (a page served short is the pager's to fetch again: test_import_page_faults)."""
    lastfm_sim.set_faults(rate=0.3, kinds=[kind], slow_seconds=0.05, burst=2, seed=3)
    client = make_client(
        lastfm_sim, governor=Governor(1000, 4, hold_seconds=0.05, recovery_per_second=5)
    )
    await client.open()
    try:
        assert await fetch_all(client, limit=100) == lastfm_sim.expected()
    finally:
        await client.close()
    assert lastfm_sim.stats().get(f"fault:{kind}", 0) >= 1


async def test_slow_answers_past_the_timeout_are_retried(lastfm_sim: SimulatedLastfm) -> None:
    """An answer later than timeout_seconds is abandoned and asked again."""
    lastfm_sim.set_faults(rate=0.3, kinds=["slow"], slow_seconds=0.6, seed=4)
    client = make_client(lastfm_sim, timeout_seconds=0.2)
    await client.open()
    try:
        assert await fetch_all(client) == lastfm_sim.expected()
    finally:
        await client.close()
    assert client.retries >= 1


async def test_error_29_bursts_slow_the_governor_then_it_recovers(
    lastfm_sim: SimulatedLastfm,
) -> None:
    """Bursts of 29 penalize the governor (by how much and for how long:
    test_ratelimit.py, on a fake clock); the pages stay exact; the rate comes back."""
    governor = Governor(200, 4, hold_seconds=0.1, recovery_per_second=4.0)
    lastfm_sim.set_faults(rate=0.25, kinds=["error29"], burst=3, seed=1)
    client = make_client(lastfm_sim, governor=governor)
    await client.open()
    try:
        assert await fetch_all(client, limit=100) == lastfm_sim.expected()
        assert governor.penalties >= 1
        lastfm_sim.set_faults(rate=0.0)
        await asyncio.sleep(0.5)
        assert governor.rate == 200
    finally:
        await client.close()


async def test_transient_failures_give_up_after_the_attempts(lastfm_sim: SimulatedLastfm) -> None:
    """When every answer is a 5xx, the call ends in TransientUpstreamError after `attempts`."""
    lastfm_sim.set_faults(rate=1.0, kinds=["http503"])
    client = make_client(lastfm_sim, retry=RetryPolicy(attempts=3, base_delay=0.01))
    await client.open()
    try:
        with pytest.raises(TransientUpstreamError) as caught:
            await client.recent_tracks()
    finally:
        await client.close()
    assert caught.value.status == 503
    assert client.requests == 3


@pytest.mark.parametrize(
    ("config", "settings", "message", "code"),
    [
        ({"username": "nobody"}, {}, "Last.fm user 'nobody' not found", 6),
        ({"api_key": "wrong"}, {}, "the Last.fm API key is invalid", 10),
        (
            {},
            {"private": True},
            "this profile hides its recent tracks: run `musiquectl lastfm login`",
            17,
        ),
        ({}, {"suspended": True}, "the Last.fm API key is suspended", 26),
        ({"session_key": "0" * 32}, {}, "the Last.fm session key is invalid", 9),
    ],
)
async def test_fatal_errors_have_clear_messages(
    lastfm_sim: SimulatedLastfm,
    config: dict[str, str],
    settings: dict[str, Any],
    message: str,
    code: int,
) -> None:
    """Errors retrying cannot fix are raised at once with a message a person understands."""
    lastfm_sim.configure(**settings)
    client = make_client(lastfm_sim, **config)
    await client.open()
    try:
        with pytest.raises(FatalUpstreamError) as caught:
            await client.recent_tracks()
    finally:
        await client.close()
    assert caught.value.message.startswith(message)
    assert caught.value.upstream_code == code
    assert client.requests == 1


@pytest.mark.parametrize("refusal", ["error", "clamp"])
async def test_page_size_above_200_falls_back(lastfm_sim: SimulatedLastfm, refusal: str) -> None:
    """page_size 1000 is used when accepted; if refused or clamped, the client settles on 200."""
    client = make_client(lastfm_sim, page_size=1000)
    await client.open()
    try:
        page = await client.recent_tracks()
        assert (page.per_page, len(page.scrobbles), client.page_size) == (1000, 1000, 1000)
        lastfm_sim.configure(max_limit=200, limit_refusal=refusal)
        page = await client.recent_tracks()
        assert (page.per_page, page.total_pages, client.page_size) == (200, 5, 200)
        assert len(page.scrobbles) == 200
    finally:
        await client.close()


async def test_album_info(lastfm_client: LastfmClient, lastfm_sim: SimulatedLastfm) -> None:
    """album.getInfo gives the largest image, the wiki without its link, the year; None if unknown."""
    albums = lastfm_sim.sim.history.albums.values()
    album = next(a for a in albums if a.has_wiki and a.image and a.year)
    info = await lastfm_client.album_info(album.artist.name, album.title)
    assert info is not None
    assert info.image_url is not None
    assert "/300x300/" in info.image_url
    assert info.wiki_summary is not None
    assert "Read more on Last.fm" not in info.wiki_summary
    assert info.wiki_summary.startswith(album.title)
    assert info.release_year == album.year
    assert info.url.startswith("https://www.last.fm/music/")
    assert await lastfm_client.album_info("No One", "Nothing At All") is None


def test_album_without_image_or_wiki() -> None:
    """Empty image URLs and a missing wiki become None."""
    info = parse_album_info(
        {"album": {"url": "u", "image": [{"size": "small", "#text": ""}], "tags": ""}}
    )
    assert (info.image_url, info.wiki_summary, info.release_year) == (None, None, None)


def sim_session_key(sim: SimulatedLastfm) -> str:
    """A session key as web auth gets it (auth.getToken, approved, auth.getSession), asked of
    the simulator directly: web auth itself goes through pylast (tests/test_lastfm_login.py)."""

    def call(method: str, **params: str) -> dict[str, Any]:
        query = {"method": method, "api_key": sim.api_key, **params}
        query["api_sig"] = sign(query, sim.api_secret)
        status, body = sim.sim.handle({**query, "format": "json"})
        assert status == 200, body
        answer: dict[str, Any] = json.loads(body)
        return answer

    token = call("auth.getToken")["token"]
    assert sim.sim.approve(token)
    return str(call("auth.getSession", token=token)["session"]["key"])


async def test_session_key_signs_calls(lastfm_sim: SimulatedLastfm) -> None:
    """Without a session key a private profile gives the login hint; with one (configured or
    from a login, handed over by reconfigure) recent tracks are signed and read."""
    lastfm_sim.configure(private=True)
    client = make_client(lastfm_sim)
    await client.open()
    try:
        assert not client.signed
        with pytest.raises(FatalUpstreamError, match="musiquectl lastfm login"):
            await client.recent_tracks(limit=10)
        client.reconfigure(client.config, sim_session_key(lastfm_sim))
        assert client.signed
        page = await client.recent_tracks(limit=10)
        assert page.total == 1000
    finally:
        await client.close()
