"""What musiqued does at start with a database or socket it cannot use: one line naming the
path and the problem, and exit 78 (which systemd's units do not restart on), never a
traceback. And the files it creates are its own user's only, whatever the umask.

The daemon is started in the test's process (``tests/fixtures/whole_daemon.py``): the error
that stops it is the one ``musiqued``'s entry prints as ``musiqued: <message>`` and exits
with ``exit_status`` of. One test starts the real process, to show that it does exactly that.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from musiqued.app.cli import exit_status
from musiqued.errors import MusiqueError
from musiqued.storage.migrations import LATEST_VERSION
from tests.fixtures.whole_daemon import whole_daemons
from tests.support import DaemonProcess, base_sections, write_config
from tests.test_storage_faults import small_filesystem

EX_CONFIG = 78


def configured(workdir: Path, **daemon: str) -> Path:
    """The config file of a daemon in ``workdir`` with these ``[daemon]`` settings."""
    sections = base_sections(workdir)
    sections["daemon"].update(daemon)
    return write_config(workdir / "musiqued.toml", sections)


def refused(workdir: Path, **daemon: str) -> str:
    """Start a daemon configured so; it must stop with an error whose exit status is 78:
    the line ``musiqued`` prints for it."""
    with whole_daemons(workdir) as start, pytest.raises(MusiqueError) as stopped:
        start(config_path=configured(workdir, **daemon))
    assert exit_status(stopped.value) == EX_CONFIG, stopped.value
    return f"musiqued: {stopped.value.message}"


def a_real_database(workdir: Path, **daemon: str) -> Path:
    """A database as musiqued leaves it after a clean stop (no write-ahead log beside it)."""
    with whole_daemons(workdir) as start:
        start(config_path=configured(workdir, **daemon)).stop()
    database = Path(daemon.get("database", workdir / "musique.db"))
    assert database.exists()
    assert not Path(f"{database}-wal").exists()
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
    line = refused(workdir)
    assert line.startswith(f"musiqued: database {database} {said}")
    assert line.endswith("restore it from a backup, or move it away to start a new history")
    assert database.read_bytes() == before


def newer_database(workdir: Path) -> Path:
    database = a_real_database(workdir)
    with sqlite3.connect(database) as conn:
        conn.execute(f"PRAGMA user_version = {LATEST_VERSION + 5}")
    conn.close()
    return database


def newer_refusal(database: Path) -> str:
    return (
        f"musiqued: database {database} has schema version {LATEST_VERSION + 5}, newer than "
        f"this musiqued understands ({LATEST_VERSION}); upgrade musiqued"
    )


def test_database_from_a_newer_musiqued_is_refused(workdir: Path) -> None:
    """A database whose schema is newer than this musiqued's: exit 78, upgrade musiqued."""
    database = newer_database(workdir)
    assert refused(workdir) == newer_refusal(database)


def test_a_refused_start_is_one_line_on_stderr_and_exit_78(workdir: Path) -> None:
    """The real ``musiqued`` process refused at start (a database from a newer musiqued):
    it exits 78 with that one line as its only ``musiqued:`` output, and no traceback."""
    database = newer_database(workdir)
    daemon = DaemonProcess(workdir, configured(workdir), workdir / "d.sock")
    assert daemon.start(wait=False).refused(EX_CONFIG) == newer_refusal(database)


def test_read_only_directory_is_one_line_and_exit_78(workdir: Path) -> None:
    """An existing database in a directory that became read-only (a read-only mount: root
    ignores permission bits): one line naming the path and the problem, exit 78."""
    with small_filesystem("8m") as mount:
        database = a_real_database(workdir, database=str(mount / "musique.db"))
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        line = refused(workdir, database=str(database))
        assert line == (
            f"musiqued: cannot lock {database}: cannot open {database}.lock: Read-only file "
            f"system (musiqued must be able to write in {mount})"
        )


def test_socket_path_too_long(workdir: Path) -> None:
    """A socket path over the 107 bytes a Unix socket holds: one line, exit 78, and the
    database never created (the socket is claimed before the database is opened)."""
    socket_path = workdir / ("s" * 110 + ".sock")
    line = refused(workdir, socket=str(socket_path))
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
    line = refused(workdir, socket=str(deep))
    assert line == (
        f"musiqued: socket {deep}: its directory {deep.parent} does not exist, nor "
        f"{deep.parent.parent}: create it, or set another [daemon] socket"
    )
    shallow = workdir / "run" / "d.sock"
    with whole_daemons(workdir) as start:
        daemon = start(config_path=configured(workdir, socket=str(shallow)))
        assert daemon.call("daemon.status")["socket"] == str(shallow)


def test_a_zero_byte_database_is_initialised(workdir: Path) -> None:
    """An empty file where the database should be is made a new database, and the log says
    so."""
    database = workdir / "musique.db"
    database.touch()
    with whole_daemons(workdir) as start:
        daemon = start(config_path=configured(workdir))
        assert daemon.call("daemon.status")["listens"] == 0
        (said,) = [
            r
            for r in daemon.log_records()
            if r.get("event") == "database file was empty; initialising it"
        ]
        assert said["database"] == str(database)


@pytest.fixture
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    """The process's umask set to the parameter for the test, restored after it."""
    value: int = request.param
    old = os.umask(value)
    try:
        yield value
    finally:
        os.umask(old)


@pytest.mark.parametrize("umask", [0o022, 0o000], indirect=True)
def test_files_are_private_whatever_the_umask(workdir: Path, umask: int) -> None:
    """Started by hand with a permissive umask, the daemon creates its database directory
    0700 and the database, its WAL and SHM files and both lock files 0600 (the database holds
    the Last.fm session key)."""
    state = workdir / "state"
    with whole_daemons(workdir) as start:
        daemon = start(config_path=configured(workdir, database=str(state / "musique.db")))
        daemon.call("tracker.stop")  # one write, so the WAL is in use
        assert state.stat().st_mode & 0o777 == 0o700
        for name in ("musique.db", "musique.db-wal", "musique.db-shm", "musique.db.lock"):
            assert (state / name).stat().st_mode & 0o777 == 0o600, name
        assert (workdir / "d.sock.lock").stat().st_mode & 0o777 == 0o600
