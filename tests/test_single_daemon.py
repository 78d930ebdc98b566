"""One daemon per database and per socket: a second one stops before it touches anything.

The lock on ``<database>.lock`` is taken first, then the socket is claimed under
``<socket>.lock``; a second daemon exits 75 (EX_TEMPFAIL, which the systemd units do not
restart on) with one line naming what is taken and the pid of the daemon that holds it.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.fixtures.daemon import StartDaemon
from tests.fixtures.lastfm import SimulatedLastfm
from tests.import_helpers import assert_exact, wait_job, wait_pages
from tests.rawrpc import assert_serving
from tests.support import ROOT, DaemonProcess, base_sections, write_config

EX_TEMPFAIL = 75


def second_daemon(workdir: Path, name: str, *, socket: Path, database: Path) -> DaemonProcess:
    """A daemon of its own (config, log) in ``workdir/name``, not waited for."""
    home = workdir / name
    home.mkdir()
    config = write_config(
        home / "musiqued.toml", {"daemon": {"socket": str(socket), "database": str(database)}}
    )
    return DaemonProcess(home, config, socket).start(wait=False)


def _deleted(lock: Path) -> None:
    lock.unlink()


def _replaced(lock: Path) -> None:
    fresh = lock.with_name("fresh.lock")
    fresh.write_text("")
    fresh.replace(lock)


@pytest.mark.slow
def test_one_daemon_per_database_whatever_becomes_of_its_lock_file(
    start_daemon: StartDaemon, lastfm_sim: SimulatedLastfm, workdir: Path
) -> None:
    """The lock files beside the database and the socket are 0600 and hold the daemon's
    pid. A second daemon on the same database (another socket) exits 75 naming the database
    and the first daemon's pid, before it binds its socket or resumes anything; so does one
    started after ``musique.db.lock`` was replaced under the first daemon, and one after it
    was deleted. The first daemon's running import goes on to the exact end, within its
    plan (once the others are refused, at a pace raised by a reload). After a SIGKILL (no
    clean-up at all) the next daemon starts at once."""
    lastfm_sim.reset(size=3000, seed=90)
    # Slow enough that the import is still running while the others are refused.
    first = start_daemon(
        **lastfm_sim.sections(requests_per_second=2.0, max_in_flight=2),
        enrichment={"enabled": False},
    )
    assert first.proc is not None
    for lock in (workdir / "musique.db.lock", workdir / "d.sock.lock"):
        assert lock.stat().st_mode & 0o777 == 0o600
        assert lock.read_text() == f"{first.proc.pid}\n"
    job_id = first.call("import.start", {"all": True})["job_id"]
    wait_pages(first, job_id, 2)
    database = workdir / "musique.db"
    for name, tamper in (("second", None), ("replaced", _replaced), ("deleted", _deleted)):
        if tamper is not None:
            tamper(workdir / "musique.db.lock")
        socket = workdir / f"{name}.sock"
        second = second_daemon(workdir, name, socket=socket, database=database)
        line = second.refused(EX_TEMPFAIL)
        assert line == (
            f"musiqued: database {database} is in use by another musiqued "
            f"(pid {first.proc.pid}); stop it first, or give this one another [daemon] database"
        ), name
        assert not socket.exists()
        assert "resuming job" not in second.logs()
    fast = lastfm_sim.sections(requests_per_second=50.0, max_in_flight=2)
    write_config(first.config_path, base_sections(workdir, **fast, enrichment={"enabled": False}))
    first.call("daemon.reload")
    job = wait_job(first, job_id)
    assert job["state"] == "done", job
    assert job["pages_done"] <= job["pages_total"], job
    assert job["tracks_imported"] == 3000, job
    assert_exact(database, lastfm_sim.scrobbles())
    assert "resuming job" not in first.logs()

    first.kill()
    again = DaemonProcess(workdir, first.config_path, first.socket_path).start()
    try:
        assert again.proc is not None
        assert (workdir / "musique.db.lock").read_text() == f"{again.proc.pid}\n"
        assert again.call("daemon.status")["pid"] == again.proc.pid
    finally:
        again.stop()


SIMULTANEOUS = 6
"""Daemons started at once on one socket: enough that several race for its lock."""


def test_simultaneous_starts_on_one_socket(workdir: Path) -> None:
    """Six daemons started at once on one socket path (each with its own database):
    exactly one is ready and answers on it and serves on; the five others exit 75 naming
    the socket and the winner's pid, and none of them created its database."""
    socket_path = workdir / "d.sock"
    daemons = []
    for index in range(SIMULTANEOUS):
        home = workdir / f"d{index}"
        home.mkdir()
        config = write_config(
            home / "musiqued.toml",
            {"daemon": {"socket": str(socket_path), "database": str(home / "m.db")}},
        )
        daemons.append(DaemonProcess(home, config, socket_path))
    for daemon in daemons:
        daemon.start(wait=False)
    try:
        deadline = time.monotonic() + 120
        while sum(d.proc is not None and d.proc.poll() is None for d in daemons) > 1:
            assert time.monotonic() < deadline, "more than one daemon is still running"
            time.sleep(0.1)
        (winner,) = [d for d in daemons if d.proc is not None and d.proc.poll() is None]
        winner.wait_ready(60)
        assert winner.proc is not None
        assert winner.call("daemon.status")["pid"] == winner.proc.pid
        for loser in daemons:
            if loser is winner:
                continue
            line = loser.refused(EX_TEMPFAIL)
            assert line == (
                f"musiqued: another musiqued (pid {winner.proc.pid}) is already serving on "
                f"{socket_path}; stop it first, or give this one another [daemon] socket"
            )
            assert not (loser.workdir / "m.db").exists()
        assert (winner.workdir / "m.db").exists()
        assert_serving(socket_path)
        assert winner.call("daemon.status")["pid"] == winner.proc.pid
    finally:
        for daemon in daemons:
            daemon.stop()
            daemon.kill()


def test_systemd_does_not_restart_on_75_or_78() -> None:
    """Both units list 75 (another daemon holds the database or socket) and 78 (a human must
    fix something) in RestartPreventExitStatus=, so systemd does not restart-loop on them."""
    for unit in (ROOT / "systemd" / "musiqued.service", ROOT / "systemd/user/musiqued.service"):
        text = unit.read_text(encoding="utf-8")
        (line,) = re.findall(r"^RestartPreventExitStatus=(.*)$", text, re.MULTILINE)
        assert set(line.split()) == {"75", "78"}, unit
