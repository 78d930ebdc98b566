"""The fast reading of a plain recent-tracks page (upstream/plain_page.py) against the
general one (``classify`` then ``parse_recent_tracks``): it gives the same page or steps
aside (None), never another result, on recorded, simulated, faulty and mutated answers."""

from __future__ import annotations

import copy
import json
import random
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from musiqued.errors import UpstreamError
from musiqued.models import RecentTracksPage
from musiqued.sim.lastfm import LastfmSim
from musiqued.sim.pagefaults import PAGE_FAULTS
from musiqued.upstream.lastfm import FUTURE_SLACK_S, classify, parse_recent_tracks
from musiqued.upstream.plain_page import ENTRIES_PER_TURN, plain_page_in_turns, read_plain_page
from tests.support import pauses_of

RECORDED = Path(__file__).parent / "data" / "lastfm"
END = 1_700_000_000


def general(body: bytes) -> RecentTracksPage | str:
    """The page the general way reads, or the error it raises (as text)."""
    try:
        return parse_recent_tracks(classify(200, body, "simuser"))
    except UpstreamError as exc:
        return f"{type(exc).__name__}: {exc.message}"


def fast(body: bytes) -> RecentTracksPage | None:
    return read_plain_page(body, time.time() + FUTURE_SLACK_S)


def agrees(body: bytes) -> RecentTracksPage | None:
    """The fast result, after checking that it is the general one whenever it is given."""
    quick = fast(body)
    if quick is not None:
        assert quick == general(body)
    return quick


def sim_page(*, extended: bool, size: int = 60, page: int = 2, fault: str | None = None) -> bytes:
    sim = LastfmSim()
    sim.reset(500, seed=7, end=END)
    status, body = sim.handle(
        {
            "method": "user.getrecenttracks",
            "user": "simuser",
            "api_key": sim.settings.api_key,
            "format": "json",
            "limit": str(size),
            "page": str(page),
            "extended": "1" if extended else "0",
        },
        page_fault=fault,
    )
    assert status == 200
    return body


@pytest.mark.parametrize("extended", [False, True])
def test_a_simulated_page_is_read_fast_and_the_same(extended: bool) -> None:
    body = sim_page(extended=extended)
    page = agrees(body)
    assert page is not None
    assert len(page.scrobbles) == 60
    assert page.page == 2
    assert page.per_page == 60
    assert page.total == 500


def test_a_long_page_is_read_in_parts_and_the_same() -> None:
    """On the event loop a page is read in parts (the RPC clients' calls are answered
    between them): after the decoding, and every ENTRIES_PER_TURN scrobbles."""
    body = sim_page(extended=True, size=500, page=1)
    page, pauses = pauses_of(plain_page_in_turns(body, time.time() + FUTURE_SLACK_S))
    assert page == general(body)
    assert page is not None
    assert len(page.scrobbles) == 500
    assert pauses == 1 + (500 - 1) // ENTRIES_PER_TURN


def test_one_entry_as_a_bare_object_and_an_empty_page() -> None:
    one = sim_page(extended=True, size=1, page=3)
    assert b'"track":{' in one
    page = agrees(one)
    assert page is not None
    assert len(page.scrobbles) == 1
    empty = (RECORDED / "empty-window.json").read_bytes()
    page = agrees(empty)
    assert page is not None
    assert page.scrobbles == []
    assert page.total == 0


def test_the_now_playing_entry_goes_the_general_way() -> None:
    recorded = (RECORDED / "extended-nowplaying-page.json").read_bytes()
    assert fast(recorded) is None
    reading = general(recorded)
    assert isinstance(reading, RecentTracksPage)
    assert reading.now_playing is not None


@pytest.mark.parametrize("fault", PAGE_FAULTS)
def test_every_faulty_page_of_the_simulator_goes_the_general_way_or_agrees(fault: str) -> None:
    for extended in (False, True):
        for _ in range(5):  # the faults draw which way they break a page
            body = sim_page(extended=extended, fault=fault)
            quick = agrees(body)
            if fault in ("nodate", "allplaying", "badtypes", "badpage"):
                assert quick is None, fault


def test_errors_and_what_is_not_json_go_the_general_way() -> None:
    plain = orjson.loads(sim_page(extended=False))
    for body in (
        b'{"error": 29, "message": "Rate limit exceeded"}',
        orjson.dumps({**plain, "error": 8}),
        b"<html>busy</html>",
        b"",
        b"\xff",
        b'{"recenttracks": {"track": "\\ud800"}}',
    ):
        assert fast(body) is None
        assert isinstance(general(body), str)


def _paths(value: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [at]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*at, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*at, index))
    return found


REPLACEMENTS: list[Any] = [
    None,
    "",
    "  ",
    "\u00b2",  # a digit to str.isdigit(), not to int()
    "-7",
    "0",
    "99999999999",
    "http://x/\x1b[2J",
    "javascript:alert(1)",
    "1",
    "true",
    1,
    -1,
    1.5,
    True,
    [],
    {},
    {"#text": "x"},
    ["x"],
]


def test_any_one_value_replaced_or_removed_agrees() -> None:
    """Every path of a small plain page, with each replacement in turn and removed: the
    fast reading is the general one, or None."""
    base = orjson.loads(sim_page(extended=True, size=2))
    seen_fast = seen_none = 0
    for path in _paths(base)[1:]:
        for replacement in [*REPLACEMENTS, KeyError]:
            data = copy.deepcopy(base)
            holder = data
            for key in path[:-1]:
                holder = holder[key]
            if replacement is KeyError:
                del holder[path[-1]]
            else:
                holder[path[-1]] = replacement
            if agrees(orjson.dumps(data)) is None:
                seen_none += 1
            else:
                seen_fast += 1
    assert seen_fast > 100
    assert seen_none > 100


@pytest.mark.parametrize("extended", [False, True])
def test_a_key_added_anywhere_agrees(extended: bool) -> None:
    """Keys one shape of answer has and the other lacks (an artist's ``name`` beside its
    ``#text``), and ``error`` beside a page, added to every object in turn."""
    base = orjson.loads(sim_page(extended=extended, size=2))
    added = {"name": "Added", "#text": "Added too", "error": 6, "@attr": {"nowplaying": "true"}}
    seen_fast = 0
    for path in _paths(base):
        for key, value in added.items():
            data = copy.deepcopy(base)
            holder = data
            for step in path:
                holder = holder[step]
            if isinstance(holder, dict):
                holder[key] = value
                seen_fast += agrees(orjson.dumps(data)) is not None
    assert seen_fast > 10


def test_random_mutations_agree() -> None:
    rng = random.Random(15)
    base = orjson.loads(sim_page(extended=False, size=5))
    paths = _paths(base)[1:]
    for _ in range(2000):
        data = copy.deepcopy(base)
        for path in rng.sample(paths, 3):
            holder = data
            try:
                for key in path[:-1]:
                    holder = holder[key]
                holder[path[-1]] = rng.choice(REPLACEMENTS)
            except (KeyError, IndexError, TypeError):
                continue  # an earlier mutation removed the way there
        agrees(json.dumps(data).encode())


def test_duplicate_keys_read_as_the_general_way_reads_them() -> None:
    body = sim_page(extended=False, size=1).replace(b'"name":', b'"name":"Other","name":', 1)
    page = agrees(body)
    assert page is not None
