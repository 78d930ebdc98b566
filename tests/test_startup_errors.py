"""What musiqued does at start with a database or socket it cannot use: one line naming the
path and the problem, and exit 78 (which systemd's units do not restart on), never a
traceback. And the files it creates are its own user's only, whatever the umask."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from musiqued.storage.migrations import LATEST_VERSION
from tests.support import VENV_BIN, DaemonProcess, base_sections, write_config
from tests.test_storage_faults import small_filesystem

EX_CONFIG = 78


def configured(workdir: Path, **daemon: str) -> DaemonProcess:
    sections = base_sections(workdir)
    sections["daemon"].update(daemon)
    config = write_config(workdir / "musiqued.toml", sections)
    return DaemonProcess(workdir, config, Path(sections["daemon"]["socket"]))


def refused(daemon: DaemonProcess) -> str:
    """Start ``daemon``; it must exit 78 with exactly one line: that line."""
    return daemon.start(wait=False).refused(EX_CONFIG)


def a_real_database(workdir: Path) -> Path:
    """A database as musiqued leaves it after a clean stop (no write-ahead log beside it)."""
    daemon = configured(workdir).start()
    assert daemon.stop() == 0
    database = workdir / "musique.db"
    assert not Path(f"{database}-wal").exists()
    (workdir / "musiqued.log").unlink()
    return database


def random_bytes(database: Path) -> None:
    database.write_bytes(os.urandom(8192))


def zeroed_header(database: Path) -> None:
    with database.open("r+b") as file:
        file.write(b"\0" * 100)


def truncated(database: Path) -> None:
    os.truncate(database, database.stat().st_size // 2)


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        (random_bytes, "is not a SQLite database: its header is wrong"),
        (zeroed_header, "is not a SQLite database: its header is all zeros"),
        (truncated, "is truncated: "),
    ],
    ids=["random-bytes", "zeroed-header", "truncated"],
)
def test_damaged_database_is_one_line_and_exit_78(
    workdir: Path, damage: Callable[[Path], None], said: str
) -> None:
    """Random bytes, a zeroed header or a truncated file where the database should be: one
    line naming the file and what is wrong, exit 78, and the file left as it was."""
    database = a_real_database(workdir)
    damage(database)
    before = database.read_bytes()
    line = refused(configured(workdir))
    assert line.startswith(f"musiqued: database {database} {said}")
    assert line.endswith("restore it from a backup, or move it away to start a new history")
    assert database.read_bytes() == before


def test_database_from_a_newer_musiqued_is_refused(workdir: Path) -> None:
    """A database whose schema is newer than this musiqued's: exit 78, upgrade musiqued."""
    database = a_real_database(workdir)
    with sqlite3.connect(database) as conn:
        conn.execute(f"PRAGMA user_version = {LATEST_VERSION + 5}")
    conn.close()
    line = refused(configured(workdir))
    assert line == (
        f"musiqued: database {database} has schema version {LATEST_VERSION + 5}, newer than "
        f"this musiqued understands ({LATEST_VERSION}); upgrade musiqued"
    )


def test_read_only_directory_is_one_line_and_exit_78(workdir: Path) -> None:
    """An existing database in a directory that became read-only (a read-only mount: root
    ignores permission bits): one line naming the path and the problem, exit 78."""
    with small_filesystem("8m") as mount:
        database = mount / "musique.db"
        first = configured(workdir, database=str(database)).start()
        assert first.stop() == 0
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        (workdir / "musiqued.log").unlink()
        line = refused(configured(workdir, database=str(database)))
        assert line == (
            f"musiqued: cannot lock {database}: cannot open {database}.lock: Read-only file "
            f"system (musiqued must be able to write in {mount})"
        )


def test_socket_path_too_long(workdir: Path) -> None:
    """A socket path over the 107 bytes a Unix socket holds: one line, exit 78, and the
    database never created (the socket is claimed before the database is opened)."""
    socket_path = workdir / ("s" * 110 + ".sock")
    line = refused(configured(workdir, socket=str(socket_path)))
    size = len(str(socket_path).encode())
    assert line == (
        f"musiqued: socket {socket_path}: the path is {size} bytes; a Unix socket path holds "
        "at most 107: set a shorter [daemon] socket"
    )
    assert not (workdir / "musique.db").exists()


def test_socket_in_a_missing_directory(workdir: Path) -> None:
    """The socket's directory is created if only it is missing (as systemd's
    RuntimeDirectory would be); two levels missing is one line and exit 78."""
    deep = workdir / "no" / "such" / "d.sock"
    line = refused(configured(workdir, socket=str(deep)))
    assert line == (
        f"musiqued: socket {deep}: its directory {deep.parent} does not exist, nor "
        f"{deep.parent.parent}: create it, or set another [daemon] socket"
    )
    shallow = workdir / "run" / "d.sock"
    daemon = configured(workdir, socket=str(shallow)).start()
    try:
        assert daemon.call("daemon.status")["socket"] == str(shallow)
    finally:
        daemon.stop()


def test_a_zero_byte_database_is_initialised(workdir: Path) -> None:
    """An empty file where the database should be is made a new database, and the log says
    so."""
    database = workdir / "musique.db"
    database.touch()
    daemon = configured(workdir).start()
    try:
        assert daemon.call("daemon.status")["listens"] == 0
        (said,) = [
            r
            for r in daemon.log_records()
            if r.get("event") == "database file was empty; initialising it"
        ]
        assert said["database"] == str(database)
    finally:
        daemon.stop()


@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_files_are_private_whatever_the_umask(workdir: Path, umask: int) -> None:
    """Started by hand with a permissive umask, the daemon creates its database directory
    0700 and the database, its WAL and SHM files and both lock files 0600 (the database holds
    the Last.fm session key)."""
    state = workdir / "state"
    database = state / "musique.db"
    daemon = configured(workdir, database=str(database))
    with daemon.log_path.open("ab") as log:
        daemon.launch(
            [
                "/bin/sh",
                "-c",
                f'umask {umask:03o} && exec "$@"',
                "sh",
                str(VENV_BIN / "musiqued"),
                "--config",
                str(daemon.config_path),
                "--log-target",
                "json",
            ],
            stdout=log,
        )
    try:
        daemon.wait_ready()
        daemon.call("tracker.stop")  # one write, so the WAL is in use
        assert state.stat().st_mode & 0o777 == 0o700
        for name in ("musique.db", "musique.db-wal", "musique.db-shm", "musique.db.lock"):
            assert (state / name).stat().st_mode & 0o777 == 0o600, name
        assert (workdir / "d.sock.lock").stat().st_mode & 0o777 == 0o600
    finally:
        daemon.stop()
