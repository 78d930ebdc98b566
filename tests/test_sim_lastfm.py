"""The simulated Last.fm: wire format, paging semantics, errors, faults, admin API, command."""

from __future__ import annotations

import datetime
import itertools
import json
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from musiqued.sim.history import EARLIEST, History
from musiqued.sim.lastfm import LastfmSim, PageCache, api_signature
from tests.fixtures.lastfm import SimulatedLastfm, running_sim
from tests.support import VENV_BIN, free_port

DATA = Path(__file__).parent / "data" / "lastfm"
RECORDED_PAGE = DATA / "extended-nowplaying-page.json"
EMPTY_WINDOW = DATA / "empty-window.json"


def fetch(url: str, data: bytes | None = None, method: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 (http only)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


def api(sim: SimulatedLastfm, **params: Any) -> tuple[int, Any]:
    query = {"api_key": sim.api_key, "user": sim.username, "format": "json", **params}
    query = {k: str(v) for k, v in query.items() if v is not None}
    status, body = fetch(f"{sim.api_url}?{urllib.parse.urlencode(query)}")
    return status, orjson.loads(body)


def recent(sim: SimulatedLastfm, **params: Any) -> dict[str, Any]:
    status, data = api(sim, method="user.getRecentTracks", **params)
    assert status == 200, data
    body: dict[str, Any] = data["recenttracks"]
    return body


def admin(sim: SimulatedLastfm, path: str, payload: Any = None, method: str = "POST") -> Any:
    data = None if payload is None else orjson.dumps(payload)
    status, body = fetch(f"{sim.base_url}/admin/{path}", data, method)
    assert status == 200, body
    return orjson.loads(body)


def leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for item in value.values():
            yield from leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from leaves(item)
    else:
        yield value


@pytest.fixture
def recorded_sim() -> Iterator[SimulatedLastfm]:
    """The recorded page loaded as a history, padded to the 11 scrobbles its totals state."""
    sim = LastfmSim.from_file(RECORDED_PAGE)
    oldest = min(s.timestamp for s in sim.scrobbles())
    sim.add_rows(
        [
            {"timestamp": oldest - 600 * (i + 1), "artist": "Older", "title": f"Track {i}"}
            for i in range(7)
        ]
    )
    with running_sim(sim) as simulated:
        yield simulated


def test_recorded_page_is_served_verbatim(recorded_sim: SimulatedLastfm) -> None:
    """The simulator serves the recorded Last.fm page byte for byte in content and key order."""
    status, body = fetch(
        f"{recorded_sim.api_url}?method=user.getrecenttracks&user=loige&limit=4&page=1"
        f"&extended=1&format=json&api_key={recorded_sim.api_key}"
    )
    assert status == 200
    expected = json.loads(RECORDED_PAGE.read_text(encoding="utf-8"))
    served = json.loads(body)
    assert served == expected
    assert json.dumps(served) == json.dumps(expected)  # same key order everywhere


def test_empty_window_is_served_like_the_recording(recorded_sim: SimulatedLastfm) -> None:
    """A from/to window without scrobbles gives `track: []` and "0" totals, as recorded."""
    recorded_sim.clear_now_playing()
    status, body = fetch(
        f"{recorded_sim.api_url}?method=user.getrecenttracks&user=loige&from=100&to=200"
        f"&format=json&api_key={recorded_sim.api_key}"
    )
    assert status == 200
    expected = json.loads(EMPTY_WINDOW.read_text(encoding="utf-8"))
    assert json.dumps(json.loads(body)) == json.dumps(expected)


def test_single_entry_is_a_bare_object(lastfm_sim: SimulatedLastfm) -> None:
    """Exactly one entry in the page comes as an object, not a one-element list."""
    newest = lastfm_sim.scrobbles()[0]
    body = recent(lastfm_sim, **{"from": newest.timestamp, "to": newest.timestamp + 1})
    assert isinstance(body["track"], dict)
    assert body["track"]["name"] == newest.title
    assert body["@attr"]["total"] == "1"


def test_now_playing_alone_in_an_empty_window(lastfm_sim: SimulatedLastfm) -> None:
    """Now playing shows even in a window with no scrobbles: a bare object, totals "0"."""
    lastfm_sim.set_now_playing("Sigur Rós", "Hoppípolla", "Takk...")
    body = recent(lastfm_sim, **{"from": 100, "to": 200})
    assert body["track"]["@attr"] == {"nowplaying": "true"}
    assert "date" not in body["track"]
    assert body["track"]["artist"] == {"mbid": "", "#text": "Sigur Rós"}
    assert (body["@attr"]["total"], body["@attr"]["totalPages"]) == ("0", "0")


def test_empty_history_page_is_an_empty_list(lastfm_sim: SimulatedLastfm) -> None:
    """A window with nothing in it and no now playing is `[]`."""
    body = recent(lastfm_sim, **{"from": 100, "to": 200})
    assert body["track"] == []


def test_from_is_inclusive_and_to_exclusive(lastfm_sim: SimulatedLastfm) -> None:
    """`from` includes its second, `to` excludes its own."""
    lastfm_sim.add_rows(
        [{"timestamp": t, "artist": "Edge", "title": f"At {t}"} for t in (1000, 2000, 3000)]
    )
    body = recent(lastfm_sim, **{"from": 2000, "to": 3000})
    assert body["track"]["date"]["uts"] == "2000"
    body = recent(lastfm_sim, **{"from": 1000, "to": 3001})
    assert [t["date"]["uts"] for t in body["track"]] == ["3000", "2000", "1000"]


def test_pages_are_newest_first_and_cover_the_history(lastfm_sim: SimulatedLastfm) -> None:
    """Pages at a limit walk the whole history newest first with exact totals."""
    lastfm_sim.reset(size=450, seed=5)
    seen = []
    for page in (1, 2, 3):
        body = recent(lastfm_sim, page=page, limit=200)
        attr = body["@attr"]
        assert (attr["total"], attr["totalPages"], attr["perPage"]) == ("450", "3", "200")
        seen.extend(int(t["date"]["uts"]) for t in body["track"])
    assert len(seen) == 450
    assert seen == sorted(seen, reverse=True)
    assert recent(lastfm_sim, page=4, limit=200)["track"] == []


def test_now_playing_comes_on_top_in_addition_to_limit(lastfm_sim: SimulatedLastfm) -> None:
    """With a track playing, a page of limit N has N+1 entries, the now-playing one first."""
    lastfm_sim.set_now_playing("Artist", "Title", "Album")
    body = recent(lastfm_sim, limit=3, extended=1)
    tracks = body["track"]
    assert len(tracks) == 4
    assert tracks[0]["@attr"] == {"nowplaying": "true"}
    assert all("date" in t for t in tracks[1:])
    assert body["@attr"]["perPage"] == "3"


def test_every_value_is_a_string(lastfm_sim: SimulatedLastfm) -> None:
    """Numbers, booleans and timestamps are strings in both formats."""
    lastfm_sim.set_now_playing("A", "B")
    for extended in (0, 1):
        body = recent(lastfm_sim, limit=50, extended=extended)
        assert all(isinstance(v, str) for v in leaves(body))


def test_extended_and_plain_shapes(lastfm_sim: SimulatedLastfm) -> None:
    """Plain artists are {mbid, #text}; extended ones {url, mbid, image, name} with `loved`."""
    plain = recent(lastfm_sim, limit=2)["track"][0]
    assert list(plain) == ["artist", "streamable", "image", "mbid", "album", "name", "url", "date"]
    assert list(plain["artist"]) == ["mbid", "#text"]
    extended = recent(lastfm_sim, limit=2, extended=1)["track"][0]
    assert list(extended) == [
        "mbid", "loved", "artist", "image", "date", "streamable", "url", "name", "album",
    ]  # fmt: skip
    assert list(extended["artist"]) == ["url", "mbid", "image", "name"]
    assert [i["size"] for i in extended["image"]] == ["small", "medium", "large", "extralarge"]


def test_dates_read_as_last_fm_writes_them(lastfm_sim: SimulatedLastfm) -> None:
    """Each listen's date text is its UTC time as ``%d %b %Y, %H:%M`` in English, and its URL
    the track's page, on every page of a history spanning years (leap days included)."""
    lastfm_sim.reset(size=600, seed=9)
    history = {(s.timestamp, s.title): s for s in lastfm_sim.scrobbles()}
    for page in (1, 2, 3):
        for track in recent(lastfm_sim, page=page, limit=200, extended=page % 2)["track"]:
            uts = int(track["date"]["uts"])
            moment = datetime.datetime.fromtimestamp(uts, tz=datetime.UTC)
            assert track["date"]["#text"] == moment.strftime("%d %b %Y, %H:%M")
            assert track["url"] == history[(uts, track["name"])].track_url


def test_attr_comes_after_track_on_even_pages(lastfm_sim: SimulatedLastfm) -> None:
    """In the default mixed mode, `@attr` follows `track` on even pages, as Last.fm sometimes does."""
    assert list(recent(lastfm_sim, page=1, limit=10)) == ["@attr", "track"]
    assert list(recent(lastfm_sim, page=2, limit=10)) == ["track", "@attr"]


def test_generated_history_is_realistic_and_deterministic() -> None:
    """Same seed/size/end → same history; albums missing ~3%, non-ASCII, empty MBIDs, same-second."""
    first = History.generate(7, 20_000, end=1_700_000_000).scrobbles()
    again = History.generate(7, 20_000, end=1_700_000_000).scrobbles()
    assert first == again
    assert len({s.identity for s in first}) == 20_000
    no_album = sum(1 for s in first if not s.album) / len(first)
    assert 0.015 < no_album < 0.05
    assert any(not s.artist.isascii() or not s.title.isascii() for s in first)
    assert 0.2 < sum(1 for s in first if not s.track_mbid) / len(first) < 0.9
    same_second = sum(1 for a, b in itertools.pairwise(first) if a.timestamp == b.timestamp)
    assert same_second > 5
    assert len({s.artist for s in first}) > 50
    assert len({(s.artist, s.album) for s in first}) > 150
    assert first[0].timestamp <= 1_700_000_000


def test_no_listen_comes_twice_in_one_second(monkeypatch: pytest.MonkeyPatch) -> None:
    """Last.fm drops an identical scrobble at the same second: a generated history never
    holds one, even in a run of several same-second listens (A, B, A). Same-second listens
    made common here so that such runs occur in a small history."""
    monkeypatch.setattr("musiqued.sim.history.SAME_SECOND_SHARE", 0.6)
    listens = History.generate(3, 20_000, end=1_700_000_000).scrobbles()
    runs = sum(1 for a, c in zip(listens, listens[2:], strict=False) if a.timestamp == c.timestamp)
    assert runs > 100
    assert len({s.identity for s in listens}) == 20_000


@pytest.mark.parametrize("days", [365, 20])
def test_long_history_fits_after_2003(days: int) -> None:
    """A history too long for its span at a normal pace (a million listens over ~23 years;
    here 30,000 over a year or 20 days) is squeezed to start after 2003-01-01, still
    newest first, deterministic, with its same-second listens kept."""
    end = EARLIEST + days * 86400
    first = History.generate(9, 30_000, end=end).scrobbles()
    assert [s.timestamp for s in first] == [
        s.timestamp for s in History.generate(9, 30_000, end=end).scrobbles()
    ]
    assert len({s.identity for s in first}) == 30_000
    assert end > first[0].timestamp >= first[-1].timestamp > EARLIEST
    assert all(a.timestamp >= b.timestamp for a, b in itertools.pairwise(first))
    same_second = sum(1 for a, b in itertools.pairwise(first) if a.timestamp == b.timestamp)
    assert 0 < same_second < 30_000 * 0.01


def test_history_dump_and_load_round_trip(tmp_path: Path) -> None:
    """A dumped history loads back to the same scrobbles."""
    history = History.generate(3, 300, end=1_700_000_000)
    path = tmp_path / "history.json"
    history.dump(path, username="someone")
    loaded, extras = History.load(path)
    assert extras["username"] == "someone"
    assert [s.identity for s in loaded.scrobbles()] == [s.identity for s in history.scrobbles()]
    assert [s.album_mbid for s in loaded.scrobbles()] == [s.album_mbid for s in history.scrobbles()]


@pytest.mark.parametrize(
    ("params", "settings", "code"),
    [
        ({"api_key": "wrong"}, {}, 10),
        ({"user": "nobody"}, {}, 6),
        ({}, {"private": True}, 17),
        ({}, {"suspended": True}, 26),
        ({"sk": "forged", "api_sig": "x"}, {}, 13),
    ],
)
def test_error_bodies(
    lastfm_sim: SimulatedLastfm, params: dict[str, str], settings: dict[str, Any], code: int
) -> None:
    """Errors come as {"error": N, "message": ...} with the Last.fm code."""
    lastfm_sim.configure(**settings)
    status, data = api(lastfm_sim, method="user.getRecentTracks", **params)
    assert status >= 400
    assert data["error"] == code
    assert isinstance(data["message"], str)
    assert data["message"]


def test_private_profile_needs_a_valid_signed_session(lastfm_sim: SimulatedLastfm) -> None:
    """Error 17 unsigned; 9 for an unknown session; pages once a real session key signs."""
    lastfm_sim.configure(private=True)
    secret = lastfm_sim.api_secret

    def signed(**params: str) -> dict[str, str]:
        full = {"api_key": lastfm_sim.api_key, "user": lastfm_sim.username, **params}
        return {**full, "api_sig": api_signature(full, secret)}

    _, token = api(lastfm_sim, **signed(method="auth.getToken"))
    _, session = api(lastfm_sim, **signed(method="auth.getSession", token=token["token"]))
    key = session["session"]["key"]
    assert session["session"]["name"] == lastfm_sim.username
    base = {"method": "user.getRecentTracks", "user": lastfm_sim.username}
    assert api(lastfm_sim, **base)[1]["error"] == 17
    assert api(lastfm_sim, **signed(**base, sk="0" * 32))[1]["error"] == 9
    status, data = api(lastfm_sim, **signed(**base, sk=key))
    assert status == 200
    assert data["recenttracks"]["@attr"]["total"] == "1000"


def test_token_must_be_approved_when_auto_approve_is_off(lastfm_sim: SimulatedLastfm) -> None:
    """An unapproved token gives 14; opening the auth page approves it."""
    lastfm_sim.configure(auto_approve=False)
    secret = lastfm_sim.api_secret

    def signed(**params: str) -> dict[str, str]:
        full = {"api_key": lastfm_sim.api_key, "user": lastfm_sim.username, **params}
        return {**full, "api_sig": api_signature(full, secret)}

    token = api(lastfm_sim, **signed(method="auth.getToken"))[1]["token"]
    assert api(lastfm_sim, **signed(method="auth.getSession", token=token))[1]["error"] == 14
    status, _ = fetch(f"{lastfm_sim.base_url}/api/auth/?api_key={lastfm_sim.api_key}&token={token}")
    assert status == 200
    assert "session" in api(lastfm_sim, **signed(method="auth.getSession", token=token))[1]


def test_limit_above_the_maximum_is_refused_or_clamped(lastfm_sim: SimulatedLastfm) -> None:
    """With max_limit 200, limit 1000 is refused with error 6, or clamped to 200."""
    lastfm_sim.configure(max_limit=200)
    status, data = api(lastfm_sim, method="user.getRecentTracks", limit=1000)
    assert (status, data["error"]) == (400, 6)
    assert "limit" in data["message"]
    lastfm_sim.configure(limit_refusal="clamp")
    assert recent(lastfm_sim, limit=1000)["@attr"]["perPage"] == "200"
    lastfm_sim.configure(max_limit=1000)
    assert len(recent(lastfm_sim, limit=1000)["track"]) == 1000


def test_user_and_album_info(lastfm_sim: SimulatedLastfm) -> None:
    """user.getInfo has the playcount; album.getInfo images (largest last) and a linked wiki."""
    status, info = api(lastfm_sim, method="user.getInfo")
    assert status == 200
    assert info["user"]["playcount"] == "1000"
    albums = lastfm_sim.sim.history.albums.values()
    album = next(a for a in albums if a.has_wiki and a.image)
    status, data = api(
        lastfm_sim, method="album.getInfo", artist=album.artist.name, album=album.title
    )
    assert status == 200
    body = data["album"]
    assert body["name"] == album.title
    assert [i["size"] for i in body["image"]][:4] == ["small", "medium", "large", "extralarge"]
    assert body["wiki"]["summary"].endswith(f'<a href="{body["url"]}">Read more on Last.fm</a>')
    _, missing = api(lastfm_sim, method="album.getInfo", artist="No One", album="Nothing")
    assert missing["error"] == 6


@pytest.mark.parametrize(
    ("kind", "statuses"),
    [
        ("http500", {500}),
        ("http502", {502}),
        ("http503", {503}),
        ("error8", {200, 500}),
        ("error11", {200, 503}),
        ("error16", {200, 503}),
        ("error29", {429}),
    ],
)
def test_http_faults(lastfm_sim: SimulatedLastfm, kind: str, statuses: set[int]) -> None:
    """Each fault kind answers as configured, and the stats count it."""
    lastfm_sim.set_faults(rate=1.0, kinds=[kind])
    url = f"{lastfm_sim.api_url}?method=user.getrecenttracks&user=simuser&api_key=simkey"
    seen = {fetch(url)[0] for _ in range(8)}
    assert seen <= statuses
    assert lastfm_sim.stats()[f"fault:{kind}"] >= 1


def test_malformed_slow_and_reset_faults(lastfm_sim: SimulatedLastfm) -> None:
    """Malformed bodies do not parse; slow answers are late but right; resets drop the line."""
    url = f"{lastfm_sim.api_url}?method=user.getrecenttracks&user=simuser&api_key=simkey"
    lastfm_sim.set_faults(rate=1.0, kinds=["malformed"])
    for _ in range(6):
        status, body = fetch(url)
        assert status == 200
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(body)
    lastfm_sim.set_faults(rate=1.0, kinds=["slow"], slow_seconds=0.3)
    started = time.monotonic()
    status, body = fetch(url)
    assert time.monotonic() - started >= 0.3
    assert orjson.loads(body)["recenttracks"]["@attr"]["total"] == "1000"
    lastfm_sim.set_faults(rate=1.0, kinds=["reset"])
    with pytest.raises((ConnectionError, urllib.error.URLError)):
        fetch(url)
    lastfm_sim.set_faults(rate=0.0)
    assert fetch(url)[0] == 200


def test_error29_comes_in_bursts(lastfm_sim: SimulatedLastfm) -> None:
    """One error-29 fault starts a burst: the next requests are refused too."""
    url = f"{lastfm_sim.api_url}?method=user.getrecenttracks&user=simuser&api_key=simkey"
    lastfm_sim.set_faults(rate=1.0, kinds=["error29"], burst=3)
    assert fetch(url)[0] == 429
    lastfm_sim.set_faults(rate=0.0, kinds=["error29"], burst=3)  # reconfiguring ends a burst
    assert fetch(url)[0] == 200


def test_rate_limit_answers_29(lastfm_sim: SimulatedLastfm) -> None:
    """Past `rate_limit` requests per second the simulator answers 29 (HTTP 429)."""
    lastfm_sim.configure(rate_limit=3)
    url = f"{lastfm_sim.api_url}?method=user.getinfo&user=simuser&api_key=simkey"
    statuses = [fetch(url)[0] for _ in range(10)]
    assert statuses.count(429) >= 5
    assert lastfm_sim.stats()["rate_limited"] >= 5


def test_admin_api(lastfm_sim: SimulatedLastfm) -> None:
    """Tests and demos drive the simulator over HTTP: add, back-date, now playing, reset, stats."""
    now = int(time.time())
    added = admin(lastfm_sim, "scrobbles", {"n": 2})["added"]
    assert len(added) == 2
    assert all(abs(row["timestamp"] - now) < 120 for row in added)
    late = admin(lastfm_sim, "scrobbles", {"n": 1, "back_days": 3})["added"][0]
    assert abs(late["timestamp"] - (now - 3 * 86400)) < 120
    identities = {(r["timestamp"], r["artist"].casefold(), r["title"].casefold()) for r in added}
    assert identities <= lastfm_sim.expected()
    admin(lastfm_sim, "now_playing", {"artist": "A", "title": "B", "album": "C"})
    assert recent(lastfm_sim, limit=1)["track"][0]["name"] == "B"
    admin(lastfm_sim, "now_playing", method="DELETE")
    assert isinstance(recent(lastfm_sim, limit=1)["track"], dict)
    assert admin(lastfm_sim, "reset", {"size": 50, "seed": 2}) == {"scrobbles": 50}
    assert len(admin(lastfm_sim, "scrobbles", method="GET")) == 50
    admin(lastfm_sim, "faults", {"rate": 0.0})
    stats = admin(lastfm_sim, "stats", method="GET")
    assert stats["scrobbles"] == 50
    assert admin(lastfm_sim, "settings", {"private": True})["private"] is True
    status, _ = fetch(f"{lastfm_sim.base_url}/admin/faults", b'{"kinds": ["nope"]}', "POST")
    assert status == 400


def test_duplicate_scrobble_is_dropped(lastfm_sim: SimulatedLastfm) -> None:
    """Like Last.fm, the same artist and title at the same second is kept once."""
    row = {"timestamp": 5000, "artist": "Dup", "title": "Same"}
    assert len(lastfm_sim.add_rows([row, {**row, "artist": "DUP"}])) == 1


def test_musique_sim_command_serves(tmp_path: Path) -> None:
    """`musique-sim lastfm` serves the API on the given port until terminated."""
    port = free_port()
    proc = subprocess.Popen(
        [str(VENV_BIN / "musique-sim"), "lastfm", "--port", str(port), "--size", "300"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        banner = proc.stderr.readline()
        assert f":{port}/2.0/" in banner
        status, body = fetch(
            f"http://127.0.0.1:{port}/2.0/?method=user.getinfo&user=simuser&api_key=simkey"
            "&format=json"
        )
        assert status == 200
        assert orjson.loads(body)["user"]["playcount"] == "300"
    finally:
        proc.terminate()
        code = proc.wait(10)
        if proc.stderr is not None:
            proc.stderr.close()
    assert code == 0


def _page(sim: LastfmSim, **params: str) -> bytes:
    status, body = sim.handle(
        {
            "method": "user.getrecenttracks",
            "user": "simuser",
            "api_key": sim.settings.api_key,
            "format": "json",
            **params,
        }
    )
    assert status == 200
    return body


def test_the_page_cache_serves_what_rendering_would() -> None:
    """``page_cache_mb`` (benchmarks) never changes an answer: two simulators, one keeping
    pages and one rendering each, answer the same through every change that shapes a page."""
    kept, rendered = LastfmSim(), LastfmSim()
    for sim in (kept, rendered):
        sim.reset(300, seed=3, end=1_700_000_000)
    kept.configure(page_cache_mb=1)
    asks = [
        {"limit": "50", "page": "2"},
        {"limit": "50", "page": "2", "extended": "1"},
        {"limit": "50", "page": "3"},
        {"limit": "50", "page": "2", "to": "1699990000"},
        {"limit": "20", "page": "2", "to": "1699990000"},
        {"limit": "50", "page": "2", "from": "1699900000"},
    ]
    changes: list[Any] = [
        lambda sim: None,
        lambda sim: sim.add_scrobbles(3, at=1_700_000_100),
        lambda sim: sim.configure(attr_position="first"),
        lambda sim: sim.configure(page_cache_mb=sim.settings.page_cache_mb),
        lambda sim: sim.set_now_playing("Artist", "Title"),
        lambda sim: sim.clear_now_playing(),
        lambda sim: sim.add_rows([{"timestamp": 1_699_999_000, "artist": "A", "title": "T"}]),
        lambda sim: sim.reset(120, seed=4, end=1_700_000_000),
    ]
    for change in changes:
        change(kept)
        change(rendered)
        for _ in range(2):  # the second time from memory
            for ask in asks:
                assert _page(kept, **ask) == _page(rendered, **ask)


def test_the_page_cache_keeps_at_most_its_size() -> None:
    cache = PageCache()
    for n in range(5):
        cache.put(("page", n), bytes(400), limit=1000)
    assert cache.get(("page", 4)) is not None
    assert cache.get(("page", 3)) is not None
    assert cache.get(("page", 2)) is None  # 3 x 400 bytes would be over 1,000
    cache.get(("page", 3))  # now the most recent
    cache.put(("page", 5), bytes(400), limit=1000)
    assert cache.get(("page", 3)) is not None
    assert cache.get(("page", 4)) is None
