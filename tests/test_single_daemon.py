"""One daemon per database and per socket: a second one stops before it touches anything.

The lock on ``<database>.lock`` is taken first, then the socket is claimed under
``<socket>.lock``; a second daemon exits 75 (EX_TEMPFAIL, which the systemd units do not
restart on) with one line naming what is taken and the pid of the daemon that holds it.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from tests.fixtures.daemon import StartDaemon
from tests.fixtures.lastfm import SimulatedLastfm
from tests.import_helpers import assert_exact, wait_job, wait_pages
from tests.rawrpc import assert_serving
from tests.support import ROOT, DaemonProcess, write_config

EX_TEMPFAIL = 75


def second_daemon(workdir: Path, name: str, *, socket: Path, database: Path) -> DaemonProcess:
    """A daemon of its own (config, log) in ``workdir/name``, not waited for."""
    home = workdir / name
    home.mkdir()
    config = write_config(
        home / "musiqued.toml", {"daemon": {"socket": str(socket), "database": str(database)}}
    )
    return DaemonProcess(home, config, socket).start(wait=False)


def test_second_daemon_on_the_same_database_exits_first(
    start_daemon: StartDaemon, lastfm_sim: SimulatedLastfm, workdir: Path
) -> None:
    """A second daemon on the same database (another socket) exits 75 naming the database
    and the first daemon's pid, before it binds its socket or resumes anything; the first
    daemon's running import goes on to the exact end."""
    lastfm_sim.reset(size=3000, seed=90)
    first = start_daemon(**lastfm_sim.sections(requests_per_second=20.0, max_in_flight=2))
    job_id = first.call("import.start", {"all": True})["job_id"]
    wait_pages(first, job_id, 2)
    database = workdir / "musique.db"
    second = second_daemon(workdir, "second", socket=workdir / "s2.sock", database=database)
    line = second.refused(EX_TEMPFAIL)
    assert first.proc is not None
    assert line == (
        f"musiqued: database {database} is in use by another musiqued (pid {first.proc.pid}); "
        "stop it first, or give this one another [daemon] database"
    )
    assert not (workdir / "s2.sock").exists()
    assert "resuming job" not in second.logs()
    job = wait_job(first, job_id)
    assert job["state"] == "done", job
    assert_exact(database, lastfm_sim.scrobbles())
    assert "resuming job" not in first.logs()


def test_second_daemon_on_the_same_socket_never_opens_its_database(
    start_daemon: StartDaemon, workdir: Path
) -> None:
    """A second daemon on the same socket (another database) exits 75 naming the socket and
    the first daemon's pid; its own database file is never created; the first serves on."""
    first = start_daemon()
    other = workdir / "other.db"
    second = second_daemon(workdir, "second", socket=first.socket_path, database=other)
    line = second.refused(EX_TEMPFAIL)
    assert first.proc is not None
    assert line == (
        f"musiqued: another musiqued (pid {first.proc.pid}) is already serving on "
        f"{first.socket_path}; stop it first, or give this one another [daemon] socket"
    )
    assert not other.exists()
    assert_serving(first.socket_path)
    assert first.call("daemon.status")["pid"] == first.proc.pid


def test_twenty_simultaneous_starts_on_one_socket(workdir: Path) -> None:
    """Twenty daemons started at once on one socket path (each with its own database):
    exactly one is ready and answers on it; the nineteen others exit 75 naming the socket
    and the winner's pid, and none of them created its database."""
    socket_path = workdir / "d.sock"
    daemons = []
    for index in range(20):
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
            assert f"(pid {winner.proc.pid}) is already serving on {socket_path}" in line
            assert not (loser.workdir / "m.db").exists()
        assert (winner.workdir / "m.db").exists()
    finally:
        for daemon in daemons:
            daemon.stop()
            daemon.kill()


def test_lock_files_hold_the_pid_and_a_killed_daemon_leaves_no_stale_lock(
    start_daemon: StartDaemon, workdir: Path
) -> None:
    """The lock files beside the database and the socket are 0600 and hold the daemon's
    pid; after a SIGKILL (no clean-up at all) the next daemon starts at once."""
    first = start_daemon()
    assert first.proc is not None
    for lock in (workdir / "musique.db.lock", workdir / "d.sock.lock"):
        assert lock.stat().st_mode & 0o777 == 0o600
        assert lock.read_text() == f"{first.proc.pid}\n"
    first.kill()
    again = DaemonProcess(workdir, first.config_path, first.socket_path).start()
    try:
        assert again.proc is not None
        assert (workdir / "musique.db.lock").read_text() == f"{again.proc.pid}\n"
        assert again.call("daemon.status")["pid"] == again.proc.pid
    finally:
        again.stop()


def test_systemd_does_not_restart_on_75_or_78() -> None:
    """Both units list 75 (another daemon holds the database or socket) and 78 (a human must
    fix something) in RestartPreventExitStatus=, so systemd does not restart-loop on them."""
    for unit in (ROOT / "systemd" / "musiqued.service", ROOT / "systemd/user/musiqued.service"):
        text = unit.read_text(encoding="utf-8")
        (line,) = re.findall(r"^RestartPreventExitStatus=(.*)$", text, re.MULTILINE)
        assert set(line.split()) == {"75", "78"}, unit
