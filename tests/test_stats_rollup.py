"""``stats.summary`` over the whole history comes from running totals; they stay exactly
equal to the full aggregate after every path that writes listens, and any period's summary
equals a brute-force count of its listens."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path
from typing import Any

from musiqued.models import Scrobble
from musiqued.storage import Database
from musiqued.storage.history import count_window, summary
from musiqued.timespec import EARLIEST, LATEST
from tests.fixtures.lastfm import SimulatedLastfm
from tests.fixtures.services import InProcess, InProcessDaemon, next_event
from tests.history_support import assert_totals_exact, generated, store

EVERYTHING = {"since": EARLIEST, "until": LATEST}


def _same(rolled: dict[str, Any], scanned: dict[str, Any]) -> None:
    """The totals' summary and the full scan's, field by field (the bounds aside)."""
    for key in ("since", "until"):
        rolled.pop(key)
        scanned.pop(key)
    assert rolled == scanned


def _brute_force(listens: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts computed from the listens themselves."""
    return {
        "listens": len(listens),
        "artists": len({x["artist"].casefold() for x in listens}),
        "albums": len(
            {(x["artist"].casefold(), x["album"].casefold()) for x in listens if x["album"]}
        ),
        "tracks": len({(x["artist"].casefold(), x["title"].casefold()) for x in listens}),
        "per_day": sorted(Counter(x["date"][:10] for x in listens).items()),
    }


def _as_brute(result: dict[str, Any]) -> dict[str, Any]:
    return {
        "listens": result["listens"],
        "artists": result["artists"],
        "albums": result["albums"],
        "tracks": result["tracks"],
        "per_day": [(d["day"], d["listens"]) for d in result["per_day"]],
    }


async def test_totals_follow_inserts_refreshes_and_deletes(tmp_path: Path) -> None:
    """Page writes (new and repeated), a refresh that moves listens to another album,
    deletions and moved times: after each, the summary from the totals equals the full
    scan's, and the totals per UTC day, hour and quarter and per item per month and year
    equal counts of the listens."""
    db = Database(tmp_path / "m.db")
    await db.open()
    try:
        history = generated(3000)
        for start in range(0, 3000, 200):
            await store(db, history[start : start + 200])
        await store(db, history[:500], source="tracker")  # seen again: nothing new
        _same(await summary(db), await summary(db, **EVERYTHING))
        await assert_totals_exact(db)

        moved = [
            Scrobble(s.timestamp, s.artist, s.title, "Another Album") for s in history[100:400]
        ]
        result = await store(db, moved, skip_existing=False)
        assert result.refreshed == 300
        _same(await summary(db, top=50), await summary(db, top=50, **EVERYTHING))

        await db.execute("DELETE FROM listening_history WHERE id % 7 = 0")
        _same(await summary(db, top=50), await summary(db, top=50, **EVERYTHING))
        await assert_totals_exact(db)
        await db.execute(
            "UPDATE listening_history SET timestamp = timestamp + 3000 WHERE id % 5 = 0"
        )
        await assert_totals_exact(db)
        rows = await db.fetchall("SELECT COUNT(*) FROM listening_history")
        assert (await summary(db))["listens"] == rows[0][0]
        rng = random.Random(5)
        stamps = [s.timestamp for s in history]
        periods = [(None, None), (None, stamps[1500]), (stamps[700], None)] + [
            tuple(sorted(rng.sample(range(min(stamps) - 90_000, max(stamps) + 90_000), 2)))
            for _ in range(40)
        ]
        for since, until in periods:
            low = -(2**62) if since is None else since
            high = 2**62 if until is None else until
            counted = await db.scalar(
                "SELECT COUNT(*) FROM listening_history WHERE timestamp >= ? AND timestamp < ?",
                (low, high),
            )
            assert await count_window(db, since, until) == counted, (since, until)
    finally:
        await db.close()


async def _listens(daemon: InProcessDaemon) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    after = None
    while True:
        params: dict[str, Any] = {"limit": 5000, **({"after": after} if after else {})}
        page = await daemon.call("history.list", params)
        out += page["listens"]
        after = page["next"]
        if after is None:
            return out


async def _check(daemon: InProcessDaemon, database: Database, rng: random.Random) -> None:
    """Everything, and ten random periods, against the brute-force counts."""
    await assert_totals_exact(database)
    listens = await _listens(daemon)
    everything = await daemon.call("stats.summary", {"top": 20})
    assert _as_brute(everything) == _brute_force(listens)
    scanned = await daemon.call("stats.summary", {"top": 20, **EVERYTHING})
    _same(everything, scanned)
    stamps = [x["timestamp"] for x in listens]
    for _ in range(10):
        low, high = sorted(rng.sample(range(min(stamps) - 86400, max(stamps) + 86400), 2))
        inside = [x for x in listens if low <= x["timestamp"] < high]
        period = await daemon.call("stats.summary", {"since": low, "until": high})
        assert _as_brute(period) == _brute_force(inside)
        # history.list's total of a period: whole days from the totals, the ends counted.
        first = await daemon.call("history.list", {"since": low, "until": high, "limit": 1})
        assert first.get("total", len(first["listens"])) == len(inside)


async def test_summary_exact_after_every_path_that_writes(
    lastfm_sim: SimulatedLastfm, database: Database, in_process: InProcess
) -> None:
    """Import, tracker, verify repair and --no-skip-existing refresh: after each, the
    summary of everything and of random periods equals brute force, and so do the running
    totals per UTC day, hour and quarter hour, and per item per UTC month and year."""
    rng = random.Random(5)
    lastfm_sim.reset(size=1500, seed=21)
    async with in_process(**lastfm_sim.sections(), tracker={"interval_seconds": 1}) as daemon:
        assert (await daemon.run_import(all=True))["state"] == "done"
        await _check(daemon, database, rng)

        newest = lastfm_sim.scrobbles()[0].timestamp
        lastfm_sim.add_rows(
            [
                {"timestamp": newest + 60 * i, "artist": "Tracked", "title": f"T{i}", "album": "A"}
                for i in range(1, 6)
            ]
        )
        events = daemon.events.subscribe(["scrobble"])
        await daemon.call("tracker.start")
        for _ in range(5):
            await next_event(events, "scrobble", source="tracker")
        await daemon.call("tracker.stop")
        await _check(daemon, database, rng)

        async with database.transaction() as conn:  # lost (deleted here, kept on Last.fm)
            await conn.execute("DELETE FROM listening_history WHERE id % 11 = 0")
            await conn.execute("UPDATE listening_history SET album_id = NULL WHERE id % 13 = 0")
        assert (await daemon.run_job("verify"))["state"] == "done"
        await _check(daemon, database, rng)

        assert (await daemon.run_import(all=True, skip_existing=False))["state"] == "done"
        await _check(daemon, database, rng)
