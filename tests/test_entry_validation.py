"""Every entry of a ``user.getRecentTracks`` page is validated before anything is stored,
by the importer, the tracker and verify alike (one parser): a listen at -5 s or at 0, an
empty artist or title, wrong types, are refused with a reason and never stored."""

from __future__ import annotations

from typing import Any

import structlog
from hypothesis import given, settings
from hypothesis import strategies as st

from musiqued.errors import TransientUpstreamError
from musiqued.storage.db import Database
from musiqued.upstream.lastfm import parse_recent_tracks
from tests.fixtures.lastfm import SimulatedLastfm
from tests.fixtures.services import InProcess, eventually
from tests.import_helpers import assert_exact
from tests.tracker_support import identities

BAD_ROWS = [
    {"timestamp": -5, "artist": "Before", "title": "The Epoch"},
    {"timestamp": 0, "artist": "At", "title": "The Epoch"},
    {"timestamp": 1_600_000_000, "artist": "", "title": "Nobody Sang This"},
    {"timestamp": 1_600_000_100, "artist": "Someone", "title": "   "},
]


def good_identities(sim: SimulatedLastfm) -> set[tuple[int, str, str]]:
    return {
        s.identity
        for s in sim.scrobbles()
        if s.timestamp > 0 and s.artist.strip() and s.title.strip()
    }


async def test_tracker_never_stores_an_unusable_listen(
    in_process: InProcess, database: Database, lastfm_sim: SimulatedLastfm
) -> None:
    """The tracker records every good scrobble and none of the listens at -5 s, at 0, with
    an empty artist or a blank title; it logs how many it left out and why, each entry once. A poll whose
    page came back with wrong types stores nothing of it; the next poll stores it all."""
    lastfm_sim.reset(size=30, seed=80)
    lastfm_sim.add_rows(BAD_ROWS)
    lastfm_sim.sim.faults.force("badtypes", 1, page=1)
    sections = lastfm_sim.sections()
    with structlog.testing.capture_logs() as logs:
        async with in_process(
            **sections, tracker={"interval_seconds": 1}, enrichment={"enabled": False}
        ) as daemon:
            await daemon.call("tracker.start")

            async def all_good() -> bool:
                return identities(database.path) == good_identities(lastfm_sim)

            await eventually(all_good)
    left_out = [
        entry
        for entry in logs
        if entry["event"] == "unusable entries in a Last.fm page; not stored"
    ]
    assert left_out[0]["count"] == 34  # the broken poll: every entry
    # Later polls warn only of the entries not warned of before, each once.
    assert 1 <= sum(w["count"] for w in left_out[1:]) <= 4
    reasons = " ".join(reason for w in left_out for reason in w["reasons"])
    for said in (
        "timestamp -5 out of range",
        "timestamp 0 out of range",
        "no artist name",
        "no title",
    ):
        assert said in reasons
    assert min(ts for ts, _, _ in identities(database.path)) > 0


async def test_import_counts_unusable_listens_as_errors(
    in_process: InProcess, database: Database, lastfm_sim: SimulatedLastfm
) -> None:
    """The importer refuses the same four listens, each counted in ``tracks_errors`` with
    its reason, and stores the rest exactly."""
    lastfm_sim.reset(size=300, seed=81)
    lastfm_sim.add_rows(BAD_ROWS)
    async with in_process(**lastfm_sim.sections(), enrichment={"enabled": False}) as daemon:
        job = await daemon.run_import(all=True)
    assert job["state"] == "done", job
    assert (job["tracks_imported"], job["tracks_errors"], job["missing"]) == (300, 4, None)
    assert len(job["error_reasons"]) == 4
    good = [s for s in lastfm_sim.scrobbles() if s.identity in good_identities(lastfm_sim)]
    assert_exact(database.path, good)


async def test_verify_never_stores_an_unusable_listen(
    in_process: InProcess, database: Database, lastfm_sim: SimulatedLastfm
) -> None:
    """Verify sees the days whose counts include unusable listens differ, fetches them, and
    adds nothing: it applies the same validation."""
    lastfm_sim.reset(size=200, seed=82)
    oldest = lastfm_sim.scrobbles()[-1].timestamp
    lastfm_sim.add_rows(
        [
            {"timestamp": oldest + 5, "artist": "", "title": "Nobody Sang This"},
            {"timestamp": oldest + 9, "artist": "Someone", "title": " "},
        ]
    )
    async with in_process(**lastfm_sim.sections(), enrichment={"enabled": False}) as daemon:
        await daemon.run_import(all=True)
        before = identities(database.path)
        job = await daemon.run_job("verify", since=oldest - oldest % 86400)
    assert job["state"] == "done", job
    assert job["result"]["days_different"] == 1
    assert job["result"]["listens_added"] == 0
    assert identities(database.path) == before == good_identities(lastfm_sim)


# -- the parser on anything --------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=6,
)
digits = st.integers(min_value=-10, max_value=10**12).map(str)


def maybe(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The valid shape mostly, anything else otherwise."""
    return st.one_of(valid, valid, json_values)


# The strategies are built once, here: building them inside each draw is what costs.
texts = maybe(st.text(max_size=5))
named = maybe(st.fixed_dictionaries({"#text": texts}))
# An entry close to Last.fm's, any part of it possibly replaced by anything.
entries = maybe(
    st.fixed_dictionaries(
        {"artist": named, "name": texts, "album": named},
        optional={
            "date": maybe(st.fixed_dictionaries({"uts": maybe(digits)})),
            "@attr": maybe(st.just({"nowplaying": "true"})),
        },
    )
)


@settings(max_examples=800, deadline=None)
@given(
    track=st.one_of(st.lists(entries, max_size=6), entries, json_values),
    attr=st.one_of(st.fixed_dictionaries({"total": digits, "page": digits}), json_values),
)
def test_parser_refuses_what_cannot_be_stored(track: Any, attr: Any) -> None:
    """On any page: a malformed one is a TransientUpstreamError (retried), never another
    exception; otherwise every entry is a scrobble with a positive timestamp and a non-blank
    artist and title, the now-playing entry, or refused with a reason: none is lost."""
    try:
        page = parse_recent_tracks({"recenttracks": {"track": track, "@attr": attr}})
    except TransientUpstreamError as exc:
        kind = exc.kind
        assert kind == "malformed"
        return
    count = len(track) if isinstance(track, list) else 1 if isinstance(track, dict) else 0
    playing = 1 if page.now_playing is not None else 0
    assert len(page.scrobbles) + len(page.rejected) + playing == count
    for scrobble in page.scrobbles:
        assert scrobble.timestamp > 0
        assert scrobble.artist.strip()
        assert scrobble.title.strip()
    assert all(page.rejected)


def test_a_lone_surrogate_refuses_an_entry_only_in_what_is_kept() -> None:
    """A lone surrogate (which only the lenient parser lets through) refuses its entry when
    it is in a text the listen keeps (here the album's MBID); in a part never stored (an
    image link) it costs nothing."""

    def entry(title: str, album_mbid: str, image: str) -> dict[str, Any]:
        return {
            "artist": {"#text": "Someone", "mbid": ""},
            "name": title,
            "album": {"#text": "Some Album", "mbid": album_mbid},
            "image": [{"size": "small", "#text": image}],
            "date": {"uts": "1600000000"},
        }

    page = parse_recent_tracks(
        {
            "recenttracks": {
                "track": [
                    entry("Kept", "", "https://img.example/\ud800.png"),
                    entry("Refused", "mbid-\udfff", ""),
                ],
                "@attr": {"total": "2", "page": "1"},
            }
        }
    )
    assert [s.title for s in page.scrobbles] == ["Kept"]
    (reason,) = page.rejected
    assert "lone surrogate" in reason
