"""Verify jobs: per-day counts against the simulated Last.fm, repairs, and what is only here."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

from musiqued import wire
from musiqued.models import Scrobble
from tests.fixtures.daemon import StartDaemon
from tests.fixtures.lastfm import SimulatedLastfm
from tests.history_support import seed
from tests.support import DaemonProcess

Identity = tuple[int, str, str]


def _stored(daemon: DaemonProcess) -> set[Identity]:
    out: set[Identity] = set()
    after = None
    while True:
        params: dict[str, Any] = {"limit": 5000}
        if after:
            params["after"] = after
        page = daemon.call("history.list", params)
        out |= {
            (x["timestamp"], x["artist"].casefold(), x["title"].casefold()) for x in page["listens"]
        }
        after = page["next"]
        if after is None:
            return out


def _finished(daemon: DaemonProcess, job_id: int) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        job: dict[str, Any] = daemon.call("import.status", {"job_id": job_id})
        return job if job["state"] in ("done", "failed", "cancelled") else None

    result: dict[str, Any] = daemon.wait_until(done, timeout=60)
    return result


def _prepare(workdir: Path, sim: SimulatedLastfm) -> tuple[list[Scrobble], list[Scrobble]]:
    """Store the simulator's history minus a few listens, plus a few it never had."""
    history = sim.scrobbles()
    removed = [history[i] for i in (5, 6, 300, 301, 302, 900)]
    extras = [
        Scrobble(history[10].timestamp + 7, "Ghost Artist", "Deleted On Last.fm", "Nowhere"),
        Scrobble(history[500].timestamp + 3, "Ghost Artist", "Edited Title", ""),
        Scrobble(history[501].timestamp + 2, history[501].artist, "Edited Title", ""),
    ]
    kept = [s for s in history if s not in removed]
    seed(workdir / "musique.db", [*reversed(kept), *extras])
    return removed, extras


def _ident(s: Scrobble) -> Identity:
    return s.identity


def test_verify_repairs_missing_and_reports_only_here(
    workdir: Path, start_daemon: StartDaemon, lastfm_sim: SimulatedLastfm
) -> None:
    """Removed listens are re-added; listens Last.fm lacks are reported, not deleted."""
    removed, extras = _prepare(workdir, lastfm_sim)
    daemon = start_daemon(**lastfm_sim.sections())
    shown = daemon.ctl("--json", "verify", timeout=120)
    assert shown.returncode == 0, shown.stderr
    job = json.loads(shown.stdout)
    assert job["kind"] == "verify"
    assert job["state"] == "done"
    result = job["result"]
    days = {s.timestamp // 86400 for s in [*removed, *extras]}
    assert result["days_checked"] == result["days_total"] == job["pages_total"] >= 20
    assert result["days_different"] == len(days)
    assert (
        result["listens_added"]
        == result["listens_missing"]
        == len(removed)
        == job["tracks_imported"]
    )
    assert result["listens_only_here"] == len(extras)
    sample = {
        (x["timestamp"], x["artist"].casefold(), x["title"].casefold())
        for x in result["only_here_sample"]
    }
    assert sample == {_ident(s) for s in extras}
    assert _stored(daemon) == lastfm_sim.expected() | {_ident(s) for s in extras}

    again = _finished(daemon, daemon.call("verify.start", {})["job_id"])
    assert again["result"]["listens_added"] == 0
    assert again["result"]["listens_only_here"] == len(extras)
    assert again["result"]["days_different"] == len({s.timestamp // 86400 for s in extras})


def test_verify_without_repair_and_human_summary(
    workdir: Path, start_daemon: StartDaemon, lastfm_sim: SimulatedLastfm
) -> None:
    """``--no-repair`` only reports. Piped, ``verify`` prints progress lines like an import,
    then what it found: the days that differ (named), the listens missing here and those
    only here; ``jobs show`` of the job shows the same verify fields with local dates, not
    an import's fields or Unix seconds."""
    removed, extras = _prepare(workdir, lastfm_sim)
    daemon = start_daemon(**lastfm_sim.sections())
    before = _stored(daemon)
    shown = daemon.ctl("verify", "--no-repair", timeout=120)
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout.splitlines()
    assert out[0] == "verify job 1 started (Ctrl-C detaches, the job goes on)"
    assert any(line.startswith("verify job 1: running, day ") for line in out)
    days = sorted(
        {time.strftime("%Y-%m-%d", time.gmtime(s.timestamp)) for s in [*removed, *extras]}
    )
    assert "Verify job 1 finished" in out
    summary = {
        key.strip(): value.strip()
        for key, _, value in (
            line.partition(": ") for line in out[out.index("Verify job 1 finished") + 1 :]
        )
        if value
    }
    assert summary["days different"] == f"{len(days)}: {', '.join(days)} (UTC days)"
    assert summary["listens missing"] == f"{len(removed)} (Last.fm has them, they were not here)"
    assert summary["listens added"] == "0 (--no-repair: reported only)"
    assert summary["listens only here"] == f"{len(extras)} (Last.fm no longer has them; kept)"
    assert "Ghost Artist" in shown.stdout
    assert _stored(daemon) == before
    job = daemon.call("jobs.list", {"limit": 1})[0]
    assert job["result"]["listens_missing"] == len(removed)

    again = daemon.ctl("jobs", "show", "1")
    assert again.returncode == 0, again.stderr
    fields = dict(line.split(": ", 1) for line in again.stdout.splitlines() if ": " in line)
    assert fields["job"].strip() == "1 (verify)"
    assert fields["days checked"].strip() == f"{job['pages_total']} of {job['pages_total']}"
    assert fields["days different"].strip() == summary["days different"]
    assert re.fullmatch(
        r" *\d{4}-\d\d-\d\d \d\d:\d\d:\d\d → \d{4}-\d\d-\d\d \d\d:\d\d:\d\d", fields["window"]
    )
    for import_field in ("pages", "imported", "skipped", "params"):
        assert import_field not in fields
    assert str(job["params"]["since"]) not in again.stdout


def test_verify_pause_resume_continues_from_checkpoint(
    workdir: Path, start_daemon: StartDaemon, lastfm_sim: SimulatedLastfm
) -> None:
    """A paused verify job resumes at the next unchecked day: every day is counted once."""
    removed, _ = _prepare(workdir, lastfm_sim)
    daemon = start_daemon(**lastfm_sim.sections(requests_per_second=8.0, max_in_flight=1))
    job_id = daemon.call("verify.start", {})["job_id"]
    daemon.wait_until(
        lambda: daemon.call("import.status", {"job_id": job_id})["pages_done"] >= 2, timeout=30
    )
    paused = daemon.call("import.pause", {"job_id": job_id})
    assert paused["state"] == "paused"
    assert paused["pages_done"] < paused["pages_total"]
    daemon.call("import.resume", {"job_id": job_id})
    job = _finished(daemon, job_id)
    assert job["state"] == "done"
    assert job["result"]["days_checked"] == job["pages_done"] == job["pages_total"]
    assert job["result"]["listens_added"] == len(removed)


def test_verify_needs_lastfm(workdir: Path, start_daemon: StartDaemon) -> None:
    """Without Last.fm credentials ``verify.start`` is -32001 and musiquectl exits 1."""
    daemon = start_daemon()
    assert daemon.call_error("verify.start", {}).code == wire.NOT_CONFIGURED
    shown = daemon.ctl("verify")
    assert shown.returncode == 1
    assert "not configured" in shown.stderr.lower() or "last.fm" in shown.stderr.lower()
    conn = sqlite3.connect(workdir / "musique.db")
    assert conn.execute("SELECT COUNT(*) FROM jobs").fetchone() == (0,)
