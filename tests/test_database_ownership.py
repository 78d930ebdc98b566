"""The database is musiqued's alone: never another application's file, never two daemons
at once, however the lock file beside it is treated (issue 26, items 5 and 6)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fixtures.daemon import StartDaemon
from tests.fixtures.lastfm import SimulatedLastfm
from tests.import_helpers import assert_exact, wait_job, wait_pages
from tests.support import DaemonProcess, base_sections, write_config

EX_CONFIG = 78
EX_TEMPFAIL = 75


def configured(workdir: Path, **daemon: str) -> DaemonProcess:
    sections = base_sections(workdir)
    sections["daemon"].update(daemon)
    config = write_config(workdir / "musiqued.toml", sections)
    return DaemonProcess(workdir, config, Path(sections["daemon"]["socket"]))


def test_another_applications_database_is_refused_untouched(workdir: Path) -> None:
    """``[daemon] database`` naming another application's SQLite file (its own tables,
    ``user_version`` 0): one line naming the file and its tables, exit 78, and the file
    keeps exactly its tables, version and journal mode (our schema was written into it
    before)."""
    database = workdir / "notes.db"
    with sqlite3.connect(database) as conn:
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        conn.execute("INSERT INTO notes (body) VALUES ('keep me')")
    conn.close()
    line = configured(workdir, database=str(database)).start(wait=False).refused(EX_CONFIG)
    assert line == (
        f"musiqued: database {database} holds tables that are not musiqued's ('notes'): it "
        "belongs to another application; set [daemon] database to another file"
    )
    with sqlite3.connect(database) as conn:
        tables = conn.execute("SELECT name FROM sqlite_master").fetchall()
        version = conn.execute("PRAGMA user_version").fetchone()
        body = conn.execute("SELECT body FROM notes").fetchall()
        mode = conn.execute("PRAGMA journal_mode").fetchone()
    conn.close()
    assert (tables, version, body, mode) == ([("notes",)], (0,), [("keep me",)], ("delete",))


def _deleted(lock: Path) -> None:
    lock.unlink()


def _replaced(lock: Path) -> None:
    fresh = lock.with_name("fresh.lock")
    fresh.write_text("")
    fresh.replace(lock)


@pytest.mark.parametrize("tamper", [_deleted, _replaced], ids=["deleted", "replaced"])
def test_a_lock_file_deleted_or_replaced_lets_no_second_daemon_in(
    start_daemon: StartDaemon,
    lastfm_sim: SimulatedLastfm,
    workdir: Path,
    tamper: Callable[[Path], None],
) -> None:
    """With ``musique.db.lock`` deleted (or replaced) under a running daemon, a second daemon
    on the same database still exits 75 naming the first one's pid, resumes nothing, and the
    first daemon's import ends done with its counters within its plan and the history exact
    (the second daemon ran and resumed the job, which ended 791/500 pages)."""
    lastfm_sim.reset(size=2000, seed=265)
    first = start_daemon(
        **lastfm_sim.sections(requests_per_second=20.0, max_in_flight=2),
        enrichment={"enabled": False},
    )
    job_id = first.call("import.start", {"all": True})["job_id"]
    wait_pages(first, job_id, 2)
    database = workdir / "musique.db"
    tamper(workdir / "musique.db.lock")
    home = workdir / "second"
    home.mkdir()
    config = write_config(
        home / "musiqued.toml",
        {"daemon": {"socket": str(workdir / "s2.sock"), "database": str(database)}},
    )
    second = DaemonProcess(home, config, workdir / "s2.sock").start(wait=False)
    line = second.refused(EX_TEMPFAIL)
    assert first.proc is not None
    assert line == (
        f"musiqued: database {database} is in use by another musiqued (pid {first.proc.pid}); "
        "stop it first, or give this one another [daemon] database"
    )
    assert "resuming job" not in second.logs()
    job = wait_job(first, job_id)
    assert job["state"] == "done", job
    assert job["pages_done"] <= job["pages_total"], job
    assert job["tracks_imported"] == 2000, job
    assert_exact(database, lastfm_sim.scrobbles())
