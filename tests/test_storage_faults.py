"""Storage faults: a full disk, a vanished database. The whole daemon runs in the test's
process (``tests/fixtures/whole_daemon.py``): its socket (``musiquectl`` runs against it),
its STATUS= lines and its log are the daemon's own; no musiqued process is started.

Disk full is real: the database lives on a size-limited tmpfs the test mounts (the suite
runs as root), and the test fills it with a file until ``write()`` fails with ENOSPC; SQLite
then answers SQLITE_FULL to the daemon's next write. Removing the file gives the space back.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.lastfm import SimulatedLastfm
from tests.fixtures.whole_daemon import ThreadedWholeDaemon, daemon_in_thread
from tests.import_helpers import assert_exact, run_import, wait_job, wait_pages
from tests.support import DaemonProcess, base_sections, short_tmp, write_config
from tests.test_notify import NotifyListener

PAUSED_FOR_SPACE = ("paused", "failed", "done", "cancelled")


@contextlib.contextmanager
def small_filesystem(size: str = "32m") -> Iterator[Path]:
    """A tmpfs of ``size`` mounted for the test (root only), unmounted after it."""
    if os.geteuid() != 0:
        pytest.skip("a size-limited filesystem needs root to mount it")
    with short_tmp() as base:
        mount = base / "fs"
        mount.mkdir()
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(mount)],
            check=True,
        )
        try:
            yield mount
        finally:
            subprocess.run(["umount", "-l", str(mount)], check=False)


@contextlib.contextmanager
def disk_full(directory: Path) -> Iterator[Path]:
    """Fill ``directory``'s filesystem until writing fails with ENOSPC; free it after."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 20, 1 << 12, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
        with pytest.raises(OSError, match="No space left on device") as full:
            os.write(fd, b"\0")
        assert full.value.errno == errno.ENOSPC
    finally:
        os.close(fd)
    try:
        yield filler
    finally:
        filler.unlink(missing_ok=True)


def daemon_on(workdir: Path, database: Path, **sections: Any) -> DaemonProcess:
    """A daemon process whose database is ``database`` (its socket and log stay in
    ``workdir``), not started (``tests/test_follow_exits.py`` uses it)."""
    config = base_sections(workdir, **sections)
    config["daemon"]["database"] = str(database)
    write_config(workdir / "musiqued.toml", config)
    return DaemonProcess(workdir, workdir / "musiqued.toml", workdir / "d.sock")


def on_database(database: Path, **sections: Any) -> dict[str, Any]:
    """Sections for a daemon whose database is ``database`` (its socket stays in the
    test's directory)."""
    return {**sections, "daemon": {"database": str(database)}}


@contextlib.contextmanager
def importing_on_a_small_disk(
    sim: SimulatedLastfm, workdir: Path, *, pages: int
) -> Iterator[tuple[ThreadedWholeDaemon, Path, int]]:
    """A daemon with its database on a small filesystem, importing ``sim``'s whole history
    slowly, ``pages`` pages in: (daemon, mount point, job id)."""
    with (
        small_filesystem() as mount,
        daemon_in_thread(
            workdir,
            **on_database(
                mount / "musique.db",
                **sim.sections(requests_per_second=10.0, max_in_flight=2),
                enrichment={"enabled": False},
            ),
        ) as daemon,
    ):
        job_id = daemon.call("import.start", {"all": True})["job_id"]
        wait_pages(daemon, job_id, pages)
        yield daemon, mount, job_id


def events(daemon: ThreadedWholeDaemon, name: str) -> list[dict[str, Any]]:
    return [r for r in daemon.log_records() if r.get("event") == name]


@pytest.mark.slow
def test_disk_full_pauses_the_import_then_it_resumes_by_itself(
    lastfm_sim: SimulatedLastfm, workdir: Path
) -> None:
    """The disk fills up during an import: the page commit fails, the job is paused with
    "no space left on <directory>" in its status and in the log (never left ``running``,
    never "Task exception was never retrieved"); what was committed stays; resuming by hand
    says there is still no space; once space is back the daemon resumes the job by itself
    and the history ends exact."""
    lastfm_sim.reset(size=4000, seed=100)  # 20 pages: the disk fills with 17 still to come
    with importing_on_a_small_disk(lastfm_sim, workdir, pages=3) as (daemon, mount, job_id):
        with disk_full(mount):
            job = wait_job(daemon, job_id, PAUSED_FOR_SPACE)
            assert job["state"] == "paused", job
            assert job["error"].startswith(
                f"no space left on {mount} for the database; job {job_id} paused: it "
                "resumes by itself once space is free"
            )
            assert 3 <= job["pages_done"] < job["pages_total"]
            stored = daemon.call("daemon.status")["listens"]
            assert stored == job["tracks_imported"] == job["pages_done"] * 200
            (paused,) = events(daemon, "job paused: no space left")
            assert paused["level"] == "error"
            assert paused["job_id"] == job_id
            line = daemon.call("daemon.status")["status"]
            assert f"job {job_id} paused: no space left for the database" in line
            refused = daemon.call_error("jobs.resume", {"job_id": job_id})
            assert "no space left on" in refused.message
            assert daemon.call("jobs.get", {"job_id": job_id})["state"] == "paused"
            conflict = daemon.call_error("import.start", {"all": True})
            assert f"job {job_id} (import) is paused" in conflict.message
        job = wait_job(daemon, job_id, timeout=90)
        assert job["state"] == "done", job
        assert (job["tracks_imported"], job["error"], job["missing"]) == (4000, None, None)
        assert_exact(mount / "musique.db", lastfm_sim.scrobbles())
        assert daemon.wait_until(lambda: events(daemon, "space is back; job resumed"))
        assert "Task exception was never retrieved" not in daemon.logs()
        assert "Traceback" not in daemon.logs()


def test_disk_full_stops_the_tracker_storing_and_it_says_so(
    lastfm_sim: SimulatedLastfm, workdir: Path
) -> None:
    """With the disk full, the tracker reports that it cannot store what it fetched (its
    status, the daemon's status line, the log); ``tracker.stop`` and ``tracker.start``
    answer the error and change nothing; once space is back it records everything."""
    lastfm_sim.reset(size=50, seed=101)
    with (
        small_filesystem() as mount,
        daemon_in_thread(
            workdir,
            **on_database(
                mount / "musique.db",
                **lastfm_sim.sections(),
                tracker={"interval_seconds": 1},
                enrichment={"enabled": False},
            ),
        ) as daemon,
    ):
        daemon.call("tracker.start")
        daemon.wait_until(caught_up_on(daemon, lastfm_sim, mount / "musique.db"))
        with disk_full(mount):
            lastfm_sim.add_scrobbles(3)
            status = daemon.wait_until(
                lambda: (s := daemon.call("tracker.status"))["last_error"] and s
            )
            assert status["last_error"] == f"no space left on {mount} for the database"
            assert status["running"] is True
            line = daemon.call("daemon.status")["status"]
            assert re.search(rf"tracker failing \(\d+x\): no space left on {mount}", line)
            (failing,) = events(daemon, "tracker cannot store its scrobbles; backing off")
            assert failing["level"] == "error"
            refused = daemon.call_error("tracker.stop")
            assert "no space left on" in refused.message
            assert daemon.call("tracker.status")["running"] is True
        daemon.wait_until(caught_up_on(daemon, lastfm_sim, mount / "musique.db"), timeout=90)
        # The listens are stored before the poll that stored them ends and says so.
        assert daemon.wait_until(lambda: events(daemon, "tracker recovered"))
        daemon.call("tracker.stop")
        with disk_full(mount):
            refused = daemon.call_error("tracker.start")
            assert "no space left on" in refused.message
            assert daemon.call("tracker.status")["running"] is False
        assert daemon.call("tracker.start") == {"status": "started"}


def caught_up_on(daemon: ThreadedWholeDaemon, sim: SimulatedLastfm, database: Path) -> Any:
    def check() -> bool:
        conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
        try:
            count = conn.execute("SELECT COUNT(*) FROM listening_history").fetchone()[0]
        finally:
            conn.close()
        return int(count) == len(sim.expected())

    return check


@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_database_file_deleted_or_replaced_stops_writes_loudly(
    lastfm_sim: SimulatedLastfm, workdir: Path, how: str
) -> None:
    """The database file deleted (or replaced by another) while the daemon runs: within a
    second or two it says so in ``daemon.status``, ``musiquectl status``, STATUS= and the
    log (at error); a new import is refused with the reason; the tracker stops rather than
    write into a file that is no longer there."""
    lastfm_sim.reset(size=300, seed=102)
    with (
        contextlib.closing(NotifyListener(workdir / "notify.sock")) as notify,
        daemon_in_thread(
            workdir,
            notify_environ={"NOTIFY_SOCKET": str(notify.path)},
            **lastfm_sim.sections(),
            tracker={"interval_seconds": 1},
            enrichment={"enabled": False},
        ) as daemon,
    ):
        assert run_import(daemon, all=True)["state"] == "done"
        daemon.call("tracker.start")
        database = workdir / "musique.db"
        if how == "deleted":
            database.unlink()
        else:
            copy = workdir / "copy.db"
            with sqlite3.connect(database) as source, sqlite3.connect(copy) as target:
                source.backup(target)
            source.close()
            target.close()
            os.replace(copy, database)
        said = f"the database file {database} was {how} while musiqued ran"
        status = daemon.wait_until(
            lambda: (s := daemon.call("daemon.status"))["database_error"] and s, timeout=10
        )
        assert status["database_error"] == f"{said}; writes stopped, restart musiqued"
        assert status["status"].startswith(f"DATABASE GONE: {said}")
        (gone,) = events(daemon, "database file gone; writes stopped")
        assert gone["level"] == "error"
        daemon.wait_until(
            lambda: any(
                fields.get("STATUS", "").startswith(f"DATABASE GONE: {said}")
                for _, fields in notify.snapshot()
            ),
            timeout=5,
        )
        shown = daemon.ctl("status")
        assert said in shown.stdout
        refused = daemon.call_error("import.start", {"all": True})
        assert said in refused.message
        lastfm_sim.add_scrobbles(2)
        tracker = daemon.wait_until(
            lambda: (t := daemon.call("tracker.status"))["running"] is False and t, timeout=10
        )
        assert said in tracker["last_error"]


def test_paused_for_space_resumes_at_the_next_start(
    lastfm_sim: SimulatedLastfm, workdir: Path
) -> None:
    """A job the daemon paused for lack of space (not a person) resumes when the daemon
    starts again with space free."""
    lastfm_sim.reset(size=4000, seed=103)
    with importing_on_a_small_disk(lastfm_sim, workdir, pages=2) as (daemon, mount, job_id):
        with disk_full(mount):
            assert wait_job(daemon, job_id, PAUSED_FOR_SPACE)["state"] == "paused"
            daemon.stop()
        daemon.start()  # a new Daemon, as at the next start of musiqued
        job = wait_job(daemon, job_id, timeout=90)
        assert job["state"] == "done", job
        assert_exact(mount / "musique.db", lastfm_sim.scrobbles())
