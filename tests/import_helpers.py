"""What the import tests share: reading the database back, waiting for a job."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from tests.support import DaemonProcess

Listen = tuple[int, str, str, str]
"""(timestamp, artist, title, album) as stored; album "" when the listen has none."""

FINISHED = ("done", "failed", "cancelled")


def stored_listens(database: Path) -> list[Listen]:
    """Every stored listen, read with plain sqlite3 (duplicates would show twice)."""
    with sqlite3.connect(database) as conn:
        rows = conn.execute(
            """
            SELECT l.timestamp, a.name, t.title, COALESCE(al.title, '')
            FROM listening_history l
            JOIN tracks t ON t.id = l.track_id
            JOIN artists a ON a.id = l.artist_id
            LEFT JOIN albums al ON al.id = l.album_id
            """
        ).fetchall()
    conn.close()
    return [(int(r[0]), r[1], r[2], r[3]) for r in rows]


def expected_listens(scrobbles: list[Any]) -> list[Listen]:
    return [(s.timestamp, s.artist, s.title, s.album) for s in scrobbles]


def assert_exact(database: Path, scrobbles: list[Any]) -> None:
    """The database holds exactly these scrobbles: same identities, albums, no duplicate."""
    stored = stored_listens(database)
    expected = expected_listens(scrobbles)
    assert len(stored) == len(set(stored)), "a listen is stored twice"
    missing = set(expected) - set(stored)
    extra = set(stored) - set(expected)
    assert not missing, f"{len(missing)} missing, e.g. {sorted(missing)[:3]}"
    assert not extra, f"{len(extra)} extra, e.g. {sorted(extra)[:3]}"
    assert len(stored) == len(expected)


def wait_job(
    daemon: DaemonProcess, job_id: int, states: tuple[str, ...] = FINISHED, timeout: float = 60
) -> dict[str, Any]:
    """The job as ``import.status`` shows it once it is in one of ``states`` (its ``job``
    event is awaited, not polled for)."""
    with daemon.events("job") as events:
        job: dict[str, Any] = daemon.call("import.status", {"job_id": job_id})
        if job["state"] not in states:
            try:
                events.wait_for(
                    "job", lambda data: data["state"] in states, job_id=job_id, timeout=timeout
                )
            except AssertionError as exc:
                now = daemon.call("import.status", {"job_id": job_id})
                raise AssertionError(f"{exc}\njob {job_id} now: {now}") from None
            job = daemon.call("import.status", {"job_id": job_id})
    return job


def run_import(daemon: DaemonProcess, timeout: float = 60, **params: Any) -> dict[str, Any]:
    """``import.start`` with ``params``; returns the job once it has finished."""
    with daemon.events("job") as events:
        job_id = daemon.call("import.start", params)["job_id"]
        events.wait_for(
            "job", lambda data: data["state"] in FINISHED, job_id=job_id, timeout=timeout
        )
    job: dict[str, Any] = daemon.call("import.status", {"job_id": job_id})
    return job


def wait_pages(daemon: DaemonProcess, job_id: int, pages: int, timeout: float = 30) -> None:
    """Until the job has committed ``pages`` pages (or has ended)."""

    def reached(job: dict[str, Any]) -> bool:
        return job["pages_done"] >= pages or job["state"] in FINISHED

    with daemon.events("job") as events:
        if not reached(daemon.call("import.status", {"job_id": job_id})):
            events.wait_for("job", reached, job_id=job_id, timeout=timeout)
