"""Store benchmark: writing 200-row pages with one aiosqlite await per row versus the
daemon's page write (one statement per page, one hop to the writer thread). Prints its
figures; not a test.

    .venv/bin/python tests/bench/store_bench.py [--pages 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import aiosqlite

from musiqued.models import Scrobble
from musiqued.storage import Database
from musiqued.storage.listens import page_rows, prepare_page

PAGE = 200


def page(n: int) -> list[Scrobble]:
    base = 1_500_000_000 + n * PAGE
    return [
        Scrobble(
            timestamp=base + i,
            artist=f"Artist {(base + i) % 500}",
            title=f"Song {(base + i) % 5000}",
            album=f"Album {(base + i) % 1500}",
        )
        for i in range(PAGE)
    ]


async def per_row(db: Database, scrobbles: list[Scrobble]) -> None:
    """The naive way: every statement of every row is its own await (a thread hop), on an
    aiosqlite connection of its own."""
    async with aiosqlite.connect(db.path, isolation_level=None) as conn:
        await conn.execute("BEGIN IMMEDIATE")
        for s in scrobbles:
            for sql, params in page_rows([s], source="import", job_id=None).statements():
                await conn.execute(sql, params)
        await conn.execute("COMMIT")


async def batched(db: Database, scrobbles: list[Scrobble]) -> None:
    await db.write(prepare_page(scrobbles, source="import", job_id=None).write)


async def run(pages: int) -> None:
    with tempfile.TemporaryDirectory(prefix="mq-store-") as name:
        for label, write, offset in (
            ("one await per row", per_row, 0),
            ("page write (batched)", batched, 10_000),
        ):
            db = Database(Path(name) / f"{offset}.db")
            await db.open()
            times = []
            for n in range(pages):
                scrobbles = page(offset + n)
                started = time.perf_counter()
                await write(db, scrobbles)
                times.append(time.perf_counter() - started)
            await db.close()
            median = statistics.median(times)
            print(
                f"{label}: {median * 1000:.1f} ms per {PAGE}-row page, "
                f"{PAGE / median:,.0f} rows/s (median of {pages} pages)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=20)
    asyncio.run(run(parser.parse_args().pages))


if __name__ == "__main__":
    main()
