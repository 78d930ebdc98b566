"""Known histories written straight into a database before the daemon starts."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from musiqued.models import Scrobble
from musiqued.storage.db import Database
from musiqued.storage.listens import PageStored, Source, write_page


def ts(iso: str) -> int:
    """Unix seconds of an ISO 8601 UTC datetime."""
    return int(dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp())


async def store(
    db: Database,
    scrobbles: Sequence[Scrobble],
    *,
    source: Source = "import",
    skip_existing: bool = True,
) -> PageStored:
    """Write ``scrobbles`` as one page, through the daemon's own page write, in one
    transaction."""
    async with db.transaction() as conn:
        return await write_page(
            conn, scrobbles, source=source, job_id=None, refresh=not skip_existing
        )


async def assert_totals_exact(db: Database) -> None:
    """Each running total per UTC day, hour and quarter hour, and per artist, album and
    track per UTC month and year, equals a count of the listens made here in Python."""
    listens = await db.fetchall(
        "SELECT timestamp, artist_id, album_id, track_id FROM listening_history"
    )
    expected: dict[str, Counter[tuple[int, ...]]] = {}
    for table, seconds in (("day_totals", 86400), ("hour_totals", 3600), ("quarter_totals", 900)):
        expected[table] = Counter((r["timestamp"] // seconds,) for r in listens)
    for kind in ("artist", "album", "track"):
        for level in ("month", "year"):
            found: Counter[tuple[int, ...]] = Counter()
            for r in listens:
                if r[f"{kind}_id"] is None:
                    continue
                day = dt.datetime.fromtimestamp(r["timestamp"], dt.UTC)
                period = day.year * 12 + day.month - 1 if level == "month" else day.year
                found[(period, r[f"{kind}_id"])] += 1
            expected[f"{kind}_{level}s"] = found
    for table, counts in expected.items():
        kept = await db.fetchall(f"SELECT * FROM {table} WHERE n != 0")
        assert {tuple(r)[:-1]: r["n"] for r in kept} == dict(counts), table


def seed(database: Path, scrobbles: Sequence[Scrobble], page: int = 500) -> None:
    """Store ``scrobbles`` with the daemon's own page write, page by page."""

    async def write() -> None:
        db = Database(database)
        await db.open()
        try:
            for start in range(0, len(scrobbles), page):
                await store(db, scrobbles[start : start + page])
        finally:
            await db.close()

    asyncio.run(write())


def generated(count: int, start: int = 1_700_000_000, step: int = 97) -> list[Scrobble]:
    """``count`` listens with awkward text (commas, quotes, accents), some sharing a second."""
    out = []
    for i in range(count):
        artist = ("Björk", 'The "Quoted", Band', "Sigur Rós", "plain")[i % 4]
        album = ("", "Homogenic", "Ágætis byrjun, live")[i % 3]
        when = start + (i // 3) * step  # three listens (different tracks) per second
        out.append(
            Scrobble(
                timestamp=when,
                artist=artist,
                title=f"Track {i % 50}, part “{i % 7}”",
                album=album,
                track_mbid=f"mbid-{i % 5}" if i % 5 else "",
            )
        )
    return out
