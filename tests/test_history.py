"""``history.recent``, ``history.list`` paging (in-process: the RPC methods over the services,
no socket) and ``musiquectl history`` end to end."""

from __future__ import annotations

import json
from pathlib import Path

from musiqued import wire
from musiqued.models import iso_utc
from musiqued.storage.db import Database
from tests.fixtures.services import InProcess
from tests.fixtures.whole_daemon import StartWholeDaemon
from tests.history_support import generated, seed, store


def _identity(listen: dict[str, object]) -> tuple[object, ...]:
    return (listen["timestamp"], listen["artist"], listen["title"])


async def test_list_pages_cover_everything_exactly_once(
    database: Database, in_process: InProcess
) -> None:
    """Walking ``next`` cursors with a small page returns every listen once, oldest first,
    even where several listens share one second across a page boundary."""
    scrobbles = generated(301)
    await store(database, scrobbles)
    async with in_process() as daemon:
        seen: list[dict[str, object]] = []
        after = None
        pages = 0
        while True:
            params: dict[str, object] = {"limit": 7}
            if after is not None:
                params["after"] = after
            result = await daemon.call("history.list", params)
            seen.extend(result["listens"])
            pages += 1
            after = result["next"]
            if after is None:
                break
        assert pages == 43  # 301 / 7, the last page full: its `next` is already null
        assert len(seen) == 301
        # Same order as stored: by second, then in the order the listens were recorded.
        assert [_identity(x) for x in seen] == [(s.timestamp, s.artist, s.title) for s in scrobbles]
        assert [x["timestamp"] for x in seen] == sorted(x["timestamp"] for x in seen)
        assert len({_identity(x) for x in seen}) == 301
        first = seen[0]
        assert first["date"] == iso_utc(int(str(first["timestamp"])))
        assert first["source"] == "import"


async def test_list_since_until_bounds(database: Database, in_process: InProcess) -> None:
    """``since`` is inclusive and ``until`` exclusive, as Unix seconds or ISO 8601."""
    scrobbles = generated(60, start=1_700_000_000, step=100)
    await store(database, scrobbles)
    async with in_process() as daemon:
        since, until = 1_700_000_500, 1_700_001_000
        expected = sorted(
            (s.timestamp, s.artist, s.title) for s in scrobbles if since <= s.timestamp < until
        )
        result = await daemon.call(
            "history.list", {"since": iso_utc(since), "until": until, "limit": 5000}
        )
        assert sorted(_identity(x) for x in result["listens"]) == expected
        assert result["next"] is None
        assert len(expected) == 15


async def test_bad_cursor_and_limits_are_invalid_params(in_process: InProcess) -> None:
    """A cursor not returned by the daemon, or a page over 5000, is -32602."""
    async with in_process() as daemon:
        assert (
            await daemon.call_error("history.list", {"after": "nonsense"})
        ).code == wire.INVALID_PARAMS
        assert (
            await daemon.call_error("history.list", {"limit": 5001})
        ).code == wire.INVALID_PARAMS
        assert (await daemon.call_error("history.recent", {"limit": 0})).code == wire.INVALID_PARAMS
        error = await daemon.call_error("history.list", {"since": 10, "until": 5})
        assert error.code == wire.INVALID_PARAMS


def test_recent_and_ctl_history(workdir: Path, start_in_thread: StartWholeDaemon) -> None:
    """``history.recent`` is newest first; ``musiquectl history`` shows them, --json as is."""
    scrobbles = generated(30)
    seed(workdir / "musique.db", scrobbles)
    daemon = start_in_thread()
    recent = daemon.call("history.recent", {"limit": 5})
    newest = sorted(scrobbles, key=lambda s: s.timestamp, reverse=True)
    assert [x["timestamp"] for x in recent] == [s.timestamp for s in newest[:5]]
    shown = daemon.ctl("--json", "history", "-n", "5")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == recent
    human = daemon.ctl("history", "-n", "3")
    assert human.returncode == 0, human.stderr
    lines = human.stdout.splitlines()
    assert lines[0] == "played (local)\tartist\ttitle\talbum\tsource\tloved"
    assert len(lines) == 4
    assert recent[0]["title"] in lines[1]
    assert human.stderr == "3 of 30 listens shown (the newest); -n N shows more, -n 0 all of them\n"
    period = daemon.ctl("--json", "history", "--since", str(newest[9].timestamp), "-n", "100")
    assert period.returncode == 0, period.stderr
    listed = json.loads(period.stdout)
    assert {x["timestamp"] for x in listed["listens"]} == {s.timestamp for s in newest[:10]}
