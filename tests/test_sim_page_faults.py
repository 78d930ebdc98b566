"""The simulated Last.fm's page faults: what each kind serves, forcing one on one page, the
admin API and the ``musique-sim lastfm --force`` option."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest

from musiqued.sim.faults import FAULT_KINDS
from musiqued.sim.pagefaults import PAGE_FAULTS
from tests.fixtures.lastfm import SimulatedLastfm
from tests.support import VENV_BIN, SimulatorProcess
from tests.test_sim_lastfm import admin, api, fetch

WINDOW = {"limit": 200, "to": 4_000_000_000}


def page(sim: SimulatedLastfm, number: int = 2, **params: Any) -> tuple[int, Any]:
    return api(sim, method="user.getRecentTracks", page=number, **{**WINDOW, **params})


def entries(body: Any) -> list[Any]:
    track = body["recenttracks"]["track"]
    return track if isinstance(track, list) else [track]


def test_every_kind_is_known_and_documented() -> None:
    """The page kinds join the wire kinds; docs/simulators.md lists every kind."""
    readme = (Path(__file__).parent.parent / "docs" / "simulators.md").read_text(encoding="utf-8")
    assert set(PAGE_FAULTS) <= set(FAULT_KINDS)
    for kind in FAULT_KINDS:
        assert f"`{kind}`" in readme, kind


@pytest.mark.parametrize("kind", PAGE_FAULTS)
def test_page_fault_keeps_the_totals(lastfm_sim: SimulatedLastfm, kind: str) -> None:
    """A broken page still says how many scrobbles the window holds (HTTP 200), except
    ``badpage``'s total, which is the breakage."""
    lastfm_sim.sim.faults.force(kind, 1, page=2)
    status, body = page(lastfm_sim)
    assert status == 200
    attr = body["recenttracks"]["@attr"]
    if attr["total"] != "lots":
        assert (attr["total"], attr["page"], attr["perPage"]) == ("1000", "2", "200")
    assert lastfm_sim.stats()[f"fault:{kind}"] == 1


def test_short_empty_and_undated_pages(lastfm_sim: SimulatedLastfm) -> None:
    """``short`` halves the scrobbles and keeps the newest half (now playing stays on top);
    ``empty`` is ``[]``, ``emptystr`` is ``""``; ``nodate`` drops every date; ``allplaying``
    marks every entry now playing, without date."""
    _, whole = page(lastfm_sim)
    lastfm_sim.set_now_playing("Playing", "Now")
    for kind in ("short", "empty", "emptystr", "nodate", "allplaying"):
        lastfm_sim.sim.faults.force(kind, 1, page=2)
    _, short = page(lastfm_sim)
    served = entries(short)
    assert served[0]["@attr"] == {"nowplaying": "true"}
    assert [e["date"] for e in served[1:]] == [e["date"] for e in entries(whole)[:100]]
    assert page(lastfm_sim)[1]["recenttracks"]["track"] == []
    assert page(lastfm_sim)[1]["recenttracks"]["track"] == ""
    undated = entries(page(lastfm_sim)[1])
    assert len(undated) == 201
    assert not any("date" in e for e in undated)
    playing = entries(page(lastfm_sim)[1])
    assert len(playing) == 201
    assert all(e["@attr"] == {"nowplaying": "true"} and "date" not in e for e in playing)
    assert len(entries(page(lastfm_sim)[1])) == 201  # the forced faults are used up


def test_badtypes_and_badpage(lastfm_sim: SimulatedLastfm) -> None:
    """``badtypes`` breaks every entry in one of its ways; ``badpage`` breaks the page as a
    whole (``track`` a number, or ``@attr.total`` not a number)."""
    lastfm_sim.sim.faults.force("badtypes", 1, page=2)
    broken = entries(page(lastfm_sim)[1])
    assert len(broken) == 200
    artists = [e["artist"] for e in broken if isinstance(e, dict)]
    assert {"mbid": "", "#text": 12345, "name": 12345} in artists
    assert ["not", "an", "object"] in artists
    assert any(isinstance(e, str) for e in broken)
    uts = {e["date"]["uts"] for e in broken if isinstance(e, dict) and isinstance(e["date"], dict)}
    assert {"0", "-5", "99999999999", 1_700_000_000} <= uts
    shapes = set()
    for _ in range(12):
        lastfm_sim.sim.faults.force("badpage", 1, page=2)
        body = page(lastfm_sim)[1]["recenttracks"]
        shapes.add("track" if body["track"] == 7 else body["@attr"]["total"])
    assert shapes == {"track", "lots"}


def test_errorbody_is_an_error_without_a_code(lastfm_sim: SimulatedLastfm) -> None:
    """``errorbody`` answers ``{"error": "x"}`` with HTTP 200, for any method."""
    lastfm_sim.sim.faults.force("errorbody", 2)
    assert api(lastfm_sim, method="user.getInfo") == (200, {"error": "x"})
    assert page(lastfm_sim) == (200, {"error": "x"})


def test_forced_faults_match_their_page_and_method(lastfm_sim: SimulatedLastfm) -> None:
    """A fault forced on page 3 waits for page 3 of recent tracks: other pages and other
    methods are served whole meanwhile; ``count`` says how many times; a page kind forced
    without a page hits the next recent-tracks request, whatever its page."""
    lastfm_sim.sim.faults.force("empty", 2, page=3)
    assert len(entries(page(lastfm_sim, 2)[1])) == 200
    assert api(lastfm_sim, method="user.getInfo")[0] == 200
    assert page(lastfm_sim, 3)[1]["recenttracks"]["track"] == []
    assert page(lastfm_sim, 3)[1]["recenttracks"]["track"] == []
    assert len(entries(page(lastfm_sim, 3)[1])) == 200
    lastfm_sim.sim.faults.force("short", 1)
    assert api(lastfm_sim, method="user.getInfo")[0] == 200
    assert len(entries(page(lastfm_sim, 4)[1])) == 100


def test_random_page_faults_spare_other_methods(lastfm_sim: SimulatedLastfm) -> None:
    """At rate 1 with only page kinds, recent tracks are always broken and user.getInfo
    never is."""
    lastfm_sim.set_faults(rate=1.0, kinds=["empty"])
    assert page(lastfm_sim)[1]["recenttracks"]["track"] == []
    assert api(lastfm_sim, method="user.getInfo")[1]["user"]["playcount"] == "1000"


def test_admin_api_forces_lists_and_clears(lastfm_sim: SimulatedLastfm) -> None:
    """``POST /admin/faults {force, count, page}`` queues a fault and lists what is queued;
    ``{clear: true}`` drops every fault; an unknown kind is a 400."""
    answer = admin(lastfm_sim, "faults", {"force": "nodate", "count": 3, "page": 5})
    assert answer["forced"] == [{"kind": "nodate", "left": 3, "page": 5}]
    assert admin(lastfm_sim, "faults", {"rate": 0.5})["rate"] == 0.5
    cleared = admin(lastfm_sim, "faults", {"clear": True})
    assert (cleared["forced"], cleared["rate"]) == ([], 0.0)
    status, body = fetch(f"{lastfm_sim.base_url}/admin/faults", b'{"force": "nope"}', "POST")
    assert status == 400
    assert b"unknown fault kinds ['nope']" in body


def test_command_line_forces_a_fault(tmp_path: Path) -> None:
    """``musique-sim lastfm --force empty:2`` serves page 2 empty once; a bad spec is a
    usage error naming it."""
    sim = SimulatorProcess("lastfm", "--size", "500", "--force", "empty:2", workdir=tmp_path)
    try:
        query = "method=user.getrecenttracks&user=simuser&api_key=simkey&format=json&page=2"
        url = f"{sim.url}/2.0/?{query}&limit=200"
        assert orjson.loads(fetch(url)[1])["recenttracks"]["track"] == []
        assert len(orjson.loads(fetch(url)[1])["recenttracks"]["track"]) == 200
    finally:
        sim.stop()
    bad = subprocess.run(
        [str(VENV_BIN / "musique-sim"), "lastfm", "--size", "10", "--force", "short:two"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2
    assert "--force 'short:two'" in bad.stderr
