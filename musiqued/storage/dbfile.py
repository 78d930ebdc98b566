"""The database file before SQLite opens it: created private, or checked for what it is.

SQLite opens a file of random bytes, a zeroed header or a truncated database without
complaint and fails later, on some query, with "file is not a database" or "database disk
image is malformed". Reading the 100-byte header first turns those into one clear line at
start (exit 78): the path and what is wrong with it.
"""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path

from musiqued.errors import StoreError
from musiqued.storage.lock import ensure_private_dir

FILE_MODE = 0o600
"""The database holds the Last.fm session key: only the daemon's user may read it. SQLite
gives the WAL and SHM files the mode of the database file."""
MAGIC = b"SQLite format 3\x00"
HEADER_SIZE = 100


class Found(Enum):
    CREATED = "created"
    EMPTY = "empty"  # a 0-byte file: initialised like a new one
    EXISTING = "existing"


class CorruptDatabaseError(StoreError):
    """The file is not a SQLite database, or not a whole one."""

    kind = "database_corrupt"


def prepare(path: Path) -> Found:
    """Create the file 0600 (and its directory 0700) if missing; check an existing one."""
    ensure_private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        pass
    except OSError as exc:
        raise StoreError(f"cannot create database {path}: {exc.strerror}") from None
    else:
        try:
            os.fchmod(fd, FILE_MODE)  # exactly 0600, whatever the umask
        finally:
            os.close(fd)
        return Found.CREATED
    try:
        with path.open("rb") as file:
            size = os.fstat(file.fileno()).st_size
            header = file.read(HEADER_SIZE)
    except OSError as exc:
        raise StoreError(f"cannot read database {path}: {exc.strerror}") from None
    if size == 0:
        return Found.EMPTY
    problem = header_problem(header, size, wal=_has_wal(path))
    if problem is not None:
        raise CorruptDatabaseError(
            f"database {path} {problem}; restore it from a backup, or move it away to "
            "start a new history"
        )
    return Found.EXISTING


def _has_wal(path: Path) -> bool:
    try:
        return path.with_name(f"{path.name}-wal").stat().st_size > 0
    except OSError:
        return False


def header_problem(header: bytes, size: int, *, wal: bool = False) -> str | None:
    """What is wrong with a database file of ``size`` bytes starting with ``header``.

    ``wal``: a write-ahead log lies beside it. The file may then be shorter than its header
    says: a checkpoint cut short (by a full disk, a crash) wrote page 1 but not the pages
    after it, which the log still holds and SQLite replays.
    """
    if len(header) < HEADER_SIZE or not header.startswith(MAGIC):
        if not header.strip(b"\x00"):
            return "is not a SQLite database: its header is all zeros"
        return "is not a SQLite database: its header is wrong"
    raw_page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if raw_page_size == 1 else raw_page_size
    if page_size < 512 or page_size & (page_size - 1):
        return f"is damaged: its header gives an impossible page size ({raw_page_size})"
    pages = int.from_bytes(header[28:32], "big")
    # The page count is valid only when the change counter matches "version-valid-for".
    if not wal and pages and header[24:28] == header[92:96] and size < pages * page_size:
        return f"is truncated: {size} bytes where its header says {pages * page_size}"
    return None
