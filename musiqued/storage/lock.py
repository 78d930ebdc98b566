"""Exclusive advisory locks held for the daemon's life: one daemon per database, per socket.

``fcntl.flock`` on a small file beside the thing it guards (``musique.db.lock``,
``musiqued.sock.lock``). The kernel releases the lock when the process ends, however it
ends, so a crash never leaves a stale lock behind; the file itself stays (removing it would
let a waiting daemon lock an inode nobody else sees). The holder writes its pid into the
file, so a second daemon can say who is in the way.

A lock file can still be deleted or replaced by hand while its holder runs, which would let
a second daemon lock a new file. So the database file itself is locked too, once it exists
(``hold_file``): it cannot be replaced under a running daemon without that daemon noticing
(``Database.check_file``). SQLite locks the same file with POSIX locks, which ``flock``
does not touch on a local file system.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Callable
from pathlib import Path

from musiqued.errors import AlreadyRunningError, StoreError

FILE_MODE = 0o600
DIR_MODE = 0o700
"""The database's directory, when the daemon creates it: the database holds the Last.fm
session key."""
_PID_WAIT_S = 1.0
"""How long a loser waits for the winner of a simultaneous start to write its pid."""


def lock_path(path: Path) -> Path:
    """The lock file that guards ``path``."""
    return path.with_name(f"{path.name}.lock")


class ExclusiveLock:
    """``acquire()`` or fail at once with who holds it; ``release()`` at the end."""

    def __init__(self, guarded: Path, *, in_use: str) -> None:
        """``in_use``: the message when another process holds the lock; ``{pid}`` is
        replaced by that process's pid (or "unknown")."""
        self.guarded = guarded
        self.path = lock_path(guarded)
        self._in_use = in_use
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
        except OSError as exc:
            hint = (
                f" (musiqued must be able to write in {self.path.parent})"
                if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM)
                else ""
            )
            raise StoreError(
                f"cannot lock {self.guarded}: cannot open {self.path}: {exc.strerror}{hint}"
            ) from None
        _flock(fd, self.path, self._in_use, _holder)
        if not _names(self.path, fd):
            # Deleted or replaced between the open and the lock: what is locked is not the
            # file another daemon would open. Lock the file the path names now.
            os.close(fd)
            self.acquire()
            return
        # Exactly 0600 whatever the umask (it only ever removes bits) or an older file's mode.
        with contextlib.suppress(OSError):
            os.fchmod(fd, FILE_MODE)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the last descriptor releases the lock


def _names(path: Path, fd: int) -> bool:
    """True if ``path`` still names the file open as ``fd``."""
    try:
        info = os.stat(path)
    except OSError:
        return False
    held = os.fstat(fd)
    return (info.st_dev, info.st_ino) == (held.st_dev, held.st_ino)


def hold_file(path: Path, *, in_use: str) -> int:
    """An exclusive ``flock`` on ``path`` itself (which exists), held until the returned
    descriptor is closed; else ``AlreadyRunningError`` with ``in_use`` (``{pid}``: the
    holder's pid, or "unknown")."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise StoreError(f"cannot lock {path}: {exc.strerror}") from None
    _flock(fd, path, in_use, _flock_holder)
    return fd


def _flock(fd: int, path: Path, in_use: str, holder_of: Callable[[int], int | None]) -> None:
    """Lock ``fd`` (open on ``path``) exclusively, or close it and raise: taken by another
    process, ``AlreadyRunningError`` with ``in_use`` naming ``holder_of(fd)``."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        taken = exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN)
        holder = holder_of(fd) if taken else None
        os.close(fd)
        if not taken:
            raise StoreError(f"cannot lock {path}: {exc.strerror}") from None
        raise AlreadyRunningError(in_use.format(pid=holder or "unknown")) from None


def _flock_holder(fd: int) -> int | None:
    """The pid holding a ``flock`` on the file open as ``fd``, as ``/proc/locks`` tells it."""
    info = os.fstat(fd)
    # /proc/locks names a file as "MAJOR:MINOR:INODE", the device numbers in hex.
    wanted = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
    try:
        lines = Path("/proc/locks").read_text(encoding="ascii", errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 1234 fe:00:2181872 0 EOF"
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == wanted:
            return int(fields[4]) if fields[4].isdecimal() else None
    return None


def _holder(fd: int) -> int | None:
    """The pid the lock's holder wrote; a holder that has just locked may not have yet."""
    deadline = time.monotonic() + _PID_WAIT_S
    while True:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        if text.isdecimal():
            return int(text)
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.02)


def ensure_private_dir(directory: Path) -> None:
    """Create ``directory`` (0700; missing parents as ``mkdir -p`` would) if it is missing."""
    if directory.is_dir():
        return
    try:
        directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the directory {directory}: {exc.strerror}") from None


def in_use_message(database: Path) -> str:
    """What a second daemon on ``database`` says (``{pid}``: the first daemon's pid)."""
    return (
        f"database {database} is in use by another musiqued (pid {{pid}}); stop it first, "
        "or give this one another [daemon] database"
    )


class DatabaseLock:
    """One daemon per database: the lock beside it (a daemon component, opened first)."""

    def __init__(self, database: Path) -> None:
        self.database = database
        self._lock = ExclusiveLock(database, in_use=in_use_message(database))

    async def open(self) -> None:
        ensure_private_dir(self.database.parent)
        self._lock.acquire()

    async def close(self) -> None:
        self._lock.release()
