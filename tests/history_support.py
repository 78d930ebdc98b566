"""Known histories written straight into a database before the daemon starts."""

from __future__ import annotations

import asyncio
import datetime as dt
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
