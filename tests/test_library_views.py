"""The library's views (services/library_views.py) against brute force over the same
listens, in three zones (one at +05:45, one with DST), and search by words whatever their
case and accents."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from collections import Counter
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from musiqued import zones
from musiqued.models import Scrobble
from musiqued.services.library import Library
from musiqued.services.library_views import LibraryViews
from musiqued.storage import jobs as job_store
from musiqued.storage.db import Database
from musiqued.storage.history import Cursor
from musiqued.storage.listens import write_page
from musiqued.storage.undo import remove_job_listens
from tests.fixtures.services import store_scrobbles

ZONES = ("Asia/Kathmandu", "America/New_York", "Asia/Kolkata")
ARTISTS = ("Sigur Rós", "Beyoncé", "björk", "Mötley Crüe", "plain", "עברית")
START = 1_704_000_000  # late December 2023 (UTC)
SPAN = 2 * 366 * 86400


def _listens(count: int = 3000) -> list[Scrobble]:
    rng = random.Random(27)
    stamps = sorted({START + rng.randrange(SPAN) for _ in range(count)})
    # Listens a second either side of quarter hours and of the zones' midnights.
    stamps += [START + 900 * k + d for k in range(0, 2000, 37) for d in (-1, 0, 1)]
    return [
        Scrobble(
            timestamp=t,
            artist=ARTISTS[(t // 7) % len(ARTISTS)],
            title=f"Song {(t // 11) % 9}",
            album=("", "Takk…", "Lemonade")[(t // 13) % 3],
            loved=t % 5 == 0,
        )
        for t in sorted(set(stamps))
    ]


@pytest.fixture
async def stored(database: Database) -> list[Scrobble]:
    listens = _listens()
    for start in range(0, len(listens), 500):
        await store_scrobbles(database, listens[start : start + 500])
    return listens


def _local(t: int, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime.fromtimestamp(t, zone)


@pytest.mark.parametrize("name", ZONES)
async def test_timelines_match_brute_force(
    database: Database, stored: list[Scrobble], name: str
) -> None:
    """Listens per day, week, month, year and hour of the week, in the zone, equal counts
    made listen by listen with the zone's own calendar."""
    zone = ZoneInfo(name)
    library = Library(database, zone).views
    since = zones.midnight(dt.date(2024, 1, 1), zone)
    until = zones.midnight(dt.date(2025, 12, 1), zone)
    inside = [s.timestamp for s in stored if since <= s.timestamp < until]
    keys = {
        "day": lambda d: d,
        "week": lambda d: d - dt.timedelta(days=d.weekday()),
        "month": lambda d: d.replace(day=1),
        "year": lambda d: d.replace(month=1, day=1),
    }
    for bucket, key in keys.items():
        answer = await library.timeline(since=since, until=until, bucket=bucket, zone=zone)  # type: ignore[arg-type]
        expected = Counter(key(_local(t, zone).date()).isoformat() for t in inside)
        got = {b["date"]: b["listens"] for b in answer["buckets"]}
        assert {k: v for k, v in got.items() if v} == dict(expected), bucket
        for b in answer["buckets"]:
            assert _local(b["start"], zone).time() == dt.time(), (bucket, b)
            assert _local(b["start"], zone).date().isoformat() == b["date"]
    grid = await library.timeline(since=since, until=until, bucket="hour_of_week", zone=zone)
    expected_grid = Counter((_local(t, zone).weekday(), _local(t, zone).hour) for t in inside)
    got_grid = {(b["weekday"], b["hour"]): b["listens"] for b in grid["buckets"]}
    assert len(got_grid) == 168
    assert {k: v for k, v in got_grid.items() if v} == dict(expected_grid)


def _identity(kind: str, scrobble: Scrobble) -> tuple[str, ...] | None:
    if kind == "artists":
        return (scrobble.artist,)
    if kind == "albums":
        return (scrobble.artist, scrobble.album) if scrobble.album else None
    return (scrobble.artist, scrobble.title)


def _counts(stored: list[Scrobble], kind: str, low: int, high: int) -> Counter[tuple[str, ...]]:
    found = (_identity(kind, s) for s in stored if low <= s.timestamp < high)
    return Counter(key for key in found if key is not None)


@pytest.mark.parametrize("name", ZONES)
async def test_top_lists_and_rank_change_match_brute_force(
    database: Database, stored: list[Scrobble], name: str
) -> None:
    """Top artists, albums and tracks of a month of the zone, and each one's rank in the
    month-long period before, equal a count of the listens one by one."""
    zone = ZoneInfo(name)
    library = Library(database, zone).views
    since = zones.midnight(dt.date(2024, 11, 3), zone)
    until = zones.midnight(dt.date(2024, 12, 3), zone)
    answers = await _assert_top_matches(library, stored, since, until, zone)
    for answer in answers.values():
        listens = [item["listens"] for item in answer["items"]]
        assert listens == sorted(listens, reverse=True)
        assert [item["rank"] for item in answer["items"]] == list(range(1, len(listens) + 1))
        assert answer["previous"] == {"since": 2 * since - until, "until": since}


async def test_top_lists_of_any_period_match_brute_force(
    database: Database, stored: list[Scrobble]
) -> None:
    """Top lists of periods of any length and position (a few minutes to the whole
    history; whole UTC years and months, parts of them, both) count each item's listens in
    the period exactly, and rank each item as the period before ranks it."""
    library = Library(database, ZoneInfo("UTC")).views
    rng = random.Random(11)
    utc = [
        int(dt.datetime(*ymd, tzinfo=dt.UTC).timestamp())
        for ymd in ((2024, 1, 1), (2024, 7, 1), (2025, 1, 1), (2025, 7, 1), (2025, 12, 1))
    ]
    periods = [(utc[0], utc[2]), (utc[1], utc[3]), (utc[0], utc[4]), (utc[1] + 1, utc[4] - 1)]
    periods += [
        tuple(sorted(rng.sample(range(START - 86400, START + SPAN + 86400), 2))) for _ in range(12)
    ]
    periods += [(low, low + rng.randrange(60, 40 * 86400)) for low, _ in periods[-6:]]
    for since, until in periods:
        await _assert_top_matches(library, stored, since, until, ZoneInfo("UTC"))


async def _assert_top_matches(
    library: LibraryViews, stored: list[Scrobble], since: int, until: int, zone: ZoneInfo
) -> dict[str, dict[str, Any]]:
    """Each kind's top list of ``[since, until)`` counts every item's listens exactly and
    ranks each as the period of the same length before ranks it; the answers, by kind."""
    answers = {}
    for kind in ("artists", "albums", "tracks"):
        answer = await library.top(kind, since=since, until=until, limit=1000, zone=zone)  # type: ignore[arg-type]
        counts = _counts(stored, kind, since, until)
        previous = _counts(stored, kind, 2 * since - until, since)
        got = {
            ((item["artist"],) if kind == "artists" else (item["artist"], item["title"])): item
            for item in answer["items"]
        }
        assert {key: item["listens"] for key, item in got.items()} == dict(counts), kind
        for key, item in got.items():
            if key not in previous:
                assert item["previous_rank"] is None
                continue
            more = sum(1 for n in previous.values() if n > previous[key])
            ties = sum(1 for n in previous.values() if n == previous[key])
            assert more < item["previous_rank"] <= more + ties, (since, until, kind)
        answers[kind] = answer
    return answers


def _periods_across_a_new_year(zone: ZoneInfo) -> list[tuple[int, int]]:
    """Periods of the zone across a new year: July to July, April to January, and 400 days
    ending mid-month."""
    return [
        (zones.midnight(dt.date(2024, 7, 1), zone), zones.midnight(dt.date(2025, 7, 1), zone)),
        (zones.midnight(dt.date(2024, 4, 1), zone), zones.midnight(dt.date(2025, 1, 1), zone)),
        (
            zones.midnight(dt.date(2025, 8, 15) - dt.timedelta(days=400), zone),
            zones.midnight(dt.date(2025, 8, 15), zone),
        ),
    ]


@pytest.mark.parametrize("name", ZONES)
async def test_top_lists_of_periods_across_a_new_year_match_brute_force(
    database: Database, stored: list[Scrobble], name: str
) -> None:
    """Top artists, albums and tracks of twelve months from July, of April to January and of
    400 days ending mid-month, in the zone, and each one's rank in the period before, equal a
    count of the listens one by one."""
    zone = ZoneInfo(name)
    library = Library(database, zone).views
    for since, until in _periods_across_a_new_year(zone):
        await _assert_top_matches(library, stored, since, until, zone)


async def test_top_lists_follow_listens_removed_and_moved_to_another_album(
    database: Database, stored: list[Scrobble]
) -> None:
    """After a file import is undone and listens are stored again with another album, the
    top lists of periods across a new year still count exactly."""
    zone = ZoneInfo("Asia/Kathmandu")
    job_id = await job_store.create(database, "file", {})
    taken = {s.timestamp for s in stored}
    extra = [
        Scrobble(timestamp=s.timestamp + 1, artist=s.artist, title=s.title, album=s.album)
        for s in stored[::7]
        if s.timestamp + 1 not in taken
    ]
    moved = [dataclasses.replace(s, album="Moved") for s in stored[::5]]
    async with database.transaction() as conn:
        await write_page(conn, extra, source="file", job_id=job_id)
    async with database.transaction() as conn:
        await write_page(conn, moved, source="tracker", job_id=None, refresh=True)
    async with database.transaction() as conn:
        assert await remove_job_listens(conn, job_id) == len(extra)
    now = {s.timestamp: s for s in stored} | {s.timestamp: s for s in moved}
    library = Library(database, zone).views
    for since, until in _periods_across_a_new_year(zone):
        await _assert_top_matches(library, list(now.values()), since, until, zone)


@pytest.mark.parametrize("name", ZONES)
async def test_stats_days_and_calendar_dates_are_the_zones(
    database: Database, stored: list[Scrobble], name: str
) -> None:
    """``stats.summary``'s days are the zone's days, and a date given without a time is
    midnight in the zone."""
    zone = ZoneInfo(name)
    library = Library(database, zone)
    summary = await library.summary(since=None, until=None, top=5)
    expected = Counter(_local(s.timestamp, zone).date().isoformat() for s in stored)
    assert {d["day"]: d["listens"] for d in summary["per_day"]} == dict(expected)
    assert summary["tz"] == name
    from musiqued.timespec import parse_moment

    midnight = parse_moment("2024-06-01", 0, zone)
    assert _local(midnight, zone) == dt.datetime(2024, 6, 1, tzinfo=zone)


async def test_year_in_review_matches_brute_force(
    database: Database, stored: list[Scrobble]
) -> None:
    """A year's totals, months, busiest day, longest run of days and new artists are those
    of the listens in that year of the zone."""
    zone = ZoneInfo("Asia/Kathmandu")
    library = Library(database, zone).views
    year = await library.year(2024, zone)
    inside = [s for s in stored if _local(s.timestamp, zone).year == 2024]
    assert year["listens"] == len(inside)
    assert year["artists"] == len({s.artist for s in inside})
    months = Counter(_local(s.timestamp, zone).month for s in inside)
    assert [m["listens"] for m in year["per_month"]] == [months.get(m, 0) for m in range(1, 13)]
    days = Counter(_local(s.timestamp, zone).date() for s in inside)
    assert year["busiest_day"]["listens"] == max(days.values())
    assert days[dt.date.fromisoformat(year["busiest_day"]["day"])] == max(days.values())
    run = year["longest_streak"]
    first, last = dt.date.fromisoformat(run["first"]), dt.date.fromisoformat(run["last"])
    assert all(first + dt.timedelta(days=i) in days for i in range(run["days"]))
    assert first - dt.timedelta(days=1) not in days
    assert last + dt.timedelta(days=1) not in days
    earlier = {s.artist for s in stored if _local(s.timestamp, zone).year < 2024}
    assert {a["artist"] for a in year["new_artists"]} == {s.artist for s in inside} - earlier
    by_artist = Counter(s.artist for s in inside)
    top = year["top_artists"]
    assert [a["listens"] for a in top] == sorted(by_artist.values(), reverse=True)[:5]
    assert all(by_artist[a["artist"]] == a["listens"] for a in top)


@pytest.mark.parametrize(
    ("query", "artist"),
    [
        ("sigur ros", "Sigur Rós"),
        ("beyonce", "Beyoncé"),
        ("BJÖRK", "björk"),
        ("motley", "Mötley Crüe"),
    ],
)
async def test_search_ignores_case_and_accents(
    database: Database, stored: list[Scrobble], query: str, artist: str
) -> None:
    """A search finds the listens of the artist whatever the case and accents typed, newest
    first, page after page by cursor without repeating or missing one."""
    library = Library(database).views
    expected = sorted((s.timestamp for s in stored if s.artist == artist), reverse=True)
    seen: list[int] = []
    cursor = None
    while True:
        page = await library.search(q=query, since=None, until=None, limit=200, cursor=cursor)
        assert all(listen.artist == artist for listen in page["listens"])
        seen += [listen.timestamp for listen in page["listens"]]
        if page["next_cursor"] is None:
            break
        cursor = Cursor.decode(page["next_cursor"])
    assert seen == expected


async def test_search_by_album_and_title_with_dates_and_loved(
    database: Database, stored: list[Scrobble]
) -> None:
    """Words may come from the artist, the album and the title together; date filters bound
    the listens; loved listens say so."""
    library = Library(database).views
    since, until = START + 100 * 86400, START + 300 * 86400
    page = await library.search(
        q="takk sigur song 3", since=since, until=until, limit=5000, cursor=None
    )
    expected = [
        s
        for s in stored
        if since <= s.timestamp < until
        and s.album == "Takk…"
        and s.artist == "Sigur Rós"
        and s.title == "Song 3"
    ]
    assert sorted(listen.timestamp for listen in page["listens"]) == sorted(
        s.timestamp for s in expected
    )
    assert [listen.loved for listen in page["listens"]] == [
        s.loved for s in sorted(expected, key=lambda s: -s.timestamp)
    ]
    everything = await library.search(q=None, since=None, until=until, limit=3, cursor=None)
    newest = sorted((s for s in stored if s.timestamp < until), key=lambda s: -s.timestamp)
    assert [listen.timestamp for listen in everything["listens"]] == [
        s.timestamp for s in newest[:3]
    ]


async def test_search_for_a_common_word_pages_like_a_rare_one(database: Database) -> None:
    """A word matching more listens than ``FEW_MATCHES`` (read by walking the history) gives
    the same pages as the same search over fewer: newest first, none repeated or missed."""
    from musiqued.storage.library import FEW_MATCHES

    count = FEW_MATCHES + 600
    listens = [
        Scrobble(timestamp=START + 60 * i, artist="Sigur Rós", title=f"Song {i % 40}")
        for i in range(count)
    ] + [Scrobble(timestamp=START + 60 * i + 1, artist="Other", title="x") for i in range(300)]
    for start in range(0, len(listens), 2000):
        await store_scrobbles(database, listens[start : start + 2000])
    library = Library(database).views
    seen: list[int] = []
    cursor = None
    while True:
        page = await library.search(q="ROS", since=None, until=None, limit=5000, cursor=cursor)
        seen += [listen.timestamp for listen in page["listens"]]
        if page["next_cursor"] is None:
            break
        cursor = Cursor.decode(page["next_cursor"])
    assert seen == sorted((s.timestamp for s in listens if s.artist == "Sigur Rós"), reverse=True)
