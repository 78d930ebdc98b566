"""Library benchmark: every ``library.*`` answer at 3,000,000 listens, target <= 100 ms each.

Builds a database with bare sqlite3 (``export_bench.build_database``: 2,000 artists, a listen
every ~4 minutes from 2010, then every migration as on a real upgrade), then times each
view through the service the RPC methods and the HTTP API call (``services/library.py``),
in three zones, and prints the median of a few runs of each with the worst case and the
processor time (on a shared machine, the part of the time that is the answer's own).

    .venv/bin/python tests/bench/library_bench.py [--listens 3000000] [--runs 5] [--keep DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import functools
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from musiqued import zones  # noqa: E402
from musiqued.services.library import Library  # noqa: E402
from musiqued.storage.db import Database  # noqa: E402
from musiqued.storage.history import Cursor  # noqa: E402
from musiqued.storage.totals import Kind  # noqa: E402
from tests.bench.export_bench import kept_database  # noqa: E402

TARGET_MS = 100.0
ZONES = ("Europe/Paris", "Asia/Kathmandu", "America/New_York")
KINDS: tuple[Kind, ...] = ("tracks", "albums", "artists")


async def _time(call: Callable[[], Awaitable[Any]], runs: int) -> tuple[float, float, float]:
    """The median and the worst time of ``runs`` calls, and the median processor time they
    took (this process's, every thread's: what other work on the machine does not add)."""
    times, spent = [], []
    for _ in range(runs):
        started, cpu = time.perf_counter(), time.process_time()
        await call()
        times.append((time.perf_counter() - started) * 1000)
        spent.append((time.process_time() - cpu) * 1000)
    return statistics.median(times), max(times), statistics.median(spent)


async def _zone(db: Database, name: str, span: Any, last_year: int, runs: int) -> bool:
    """Each view in zone ``name``; whether every median is within the target."""
    ok = True
    zone = zones.zone_named(name)
    library = Library(db, zone).views
    year_start = zones.midnight(dt.date(last_year, 1, 1), zone)
    year_end = zones.midnight(dt.date(last_year + 1, 1, 1), zone)
    month_start = zones.midnight(dt.date(last_year, 6, 1), zone)
    month_end = zones.midnight(dt.date(last_year, 7, 1), zone)
    # Twelve months across a new year (July to July), and 400 days ending mid-month.
    straddle = (zones.midnight(dt.date(last_year - 1, 7, 1), zone), month_end)
    days_end = dt.date(last_year, 6, 15)
    days = (zones.midnight(days_end - dt.timedelta(days=400), zone), zones.midnight(days_end, zone))
    first_page = await library.search(q=None, since=None, until=None, limit=50, cursor=None)
    cursor = Cursor.decode(first_page["next_cursor"])
    cases: dict[str, Callable[[], Awaitable[Any]]] = {
        "top artists, all time": lambda: library.top(
            "artists", since=None, until=None, limit=100, zone=zone
        ),
        "top albums, a month": lambda: library.top(
            "albums", since=month_start, until=month_end, limit=100, zone=zone
        ),
        "top tracks, a year": lambda: library.top(
            "tracks", since=year_start, until=year_end, limit=100, zone=zone
        ),
        "top artists, a year": lambda: library.top(
            "artists", since=year_start, until=year_end, limit=100, zone=zone
        ),
        **{
            f"top {kind}, {label}": functools.partial(
                library.top, kind, since=period[0], until=period[1], limit=100, zone=zone
            )
            for label, period in (("July to July", straddle), ("400 days", days))
            for kind in KINDS
        },
        "timeline by day, a year": lambda: library.timeline(
            since=year_start, until=year_end, bucket="day", zone=zone
        ),
        "timeline by month, all time": lambda: library.timeline(
            since=span["lo"], until=span["hi"] + 1, bucket="month", zone=zone
        ),
        "timeline hour of week, a year": lambda: library.timeline(
            since=year_start, until=year_end, bucket="hour_of_week", zone=zone
        ),
        "search, no words, page 2": lambda: library.search(
            q=None, since=None, until=None, limit=50, cursor=cursor
        ),
        "search, a rare word": lambda: library.search(
            q="artist 1234", since=None, until=None, limit=50, cursor=None
        ),
        "search, a common word": lambda: library.search(
            q="song", since=None, until=None, limit=50, cursor=None
        ),
        "search, a word and a date": lambda: library.search(
            q="album 3", since=None, until=year_start, limit=50, cursor=None
        ),
        "album page": lambda: library.album(17, zone),
        "artist page": lambda: library.artist(42, zone),
        "year in review": lambda: library.year(last_year, zone),
        "on this day": lambda: library.on_this_day(dt.date(last_year + 1, 3, 2), zone),
        "stats per day, all time": lambda: library.per_day(None, None, zone),
    }
    print(f"\n{name}")
    for label, call in cases.items():
        median, worst, cpu = await _time(call, runs)
        verdict = "ok" if median <= TARGET_MS else "OVER"
        ok = ok and median <= TARGET_MS
        print(
            f"  {label:34} median {median:6.1f} ms   worst {worst:6.1f} ms"
            f"   cpu {cpu:6.1f} ms   {verdict}"
        )
    return ok


async def bench(path: Path, runs: int) -> bool:
    db = Database(path)
    await db.open()
    try:
        span = await db.fetchone(
            "SELECT MIN(timestamp) AS lo, MAX(timestamp) AS hi FROM listening_history"
        )
        assert span is not None
        last_year = zones.local_date(span["hi"], zones.zone_named("UTC")).year - 1
        ok = True
        for name in ZONES:
            ok = await _zone(db, name, span, last_year, runs) and ok
        return ok
    finally:
        await db.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--listens", type=int, default=3_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="build (or reuse) the database here")
    args = parser.parse_args()
    with kept_database(args.listens, args.keep) as path:
        ok = asyncio.run(bench(path, args.runs))
    print(f"\nevery answer <= {TARGET_MS:.0f} ms (median): {'yes' if ok else 'NO'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
