"""The control socket: claimed atomically at start, before the database is opened.

Claiming takes an exclusive lock on ``<socket>.lock`` first (held for the daemon's life):
looking at the path, removing a stale socket file and binding are then one step that no
other musiqued can interleave with, so two daemons started together never both believe
they own the path. The socket listens from the claim on: a client that connects while the
database opens waits in the backlog and is answered once the daemon serves (as with
systemd's socket activation). A socket systemd handed over (``LISTEN_FDS``) is used as is.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
import stat
from pathlib import Path

import structlog

from musiqued.errors import AlreadyRunningError, ConfigError
from musiqued.storage.lock import ExclusiveLock

log = structlog.get_logger("musiqued.rpc")

MAX_PATH_BYTES = 107
"""``sun_path`` holds 108 bytes with the terminating NUL."""
BACKLOG = 512
DIR_MODE = 0o755
"""A socket directory the daemon creates itself: peers in ``allowed_gids`` must reach it
(the socket file's own mode decides who may connect)."""


class SocketPathError(ConfigError):
    """The socket path cannot be used; the message names it and says why."""

    kind = "socket_path"


class SocketListener:
    """Owns the listening socket (and its file, and the lock beside it)."""

    def __init__(self, path: Path, *, mode: int, inherited: socket.socket | None = None) -> None:
        self.path = path
        self._mode = mode
        self._inherited = inherited
        self._sock: socket.socket | None = inherited
        self._lock = ExclusiveLock(
            path,
            in_use=f"another musiqued (pid {{pid}}) is already serving on {path}; stop it "
            "first, or give this one another [daemon] socket",
        )
        self._bound_inode: int | None = None

    @property
    def activated(self) -> bool:
        return self._inherited is not None

    @property
    def sock(self) -> socket.socket:
        if self._sock is None:
            raise RuntimeError("SocketListener.open() was not called")
        return self._sock

    @property
    def served_path(self) -> Path:
        """The path clients use: the one systemd bound when activated."""
        if self._inherited is not None:
            with contextlib.suppress(OSError):
                name = self._inherited.getsockname()
                if isinstance(name, str) and name:
                    return Path(name)
        return self.path

    async def open(self) -> None:
        if self._inherited is None:
            await asyncio.to_thread(self._claim)

    async def close(self) -> None:
        """Close the socket; remove the file we bound (never one systemd owns); unlock."""
        if self._inherited is None and self._sock is not None:
            self._sock.close()
        self._sock = None if self._inherited is None else self._inherited
        if self._bound_inode is not None:
            with contextlib.suppress(OSError):
                if self.path.stat().st_ino == self._bound_inode:
                    self.path.unlink()
            self._bound_inode = None
        self._lock.release()

    # -- claiming ------------------------------------------------------------------------

    def _claim(self) -> None:
        self._check_path()
        self._lock.acquire()
        try:
            self._remove_stale()
            self._sock = self._bind()
        except BaseException:
            self._lock.release()
            raise

    def _check_path(self) -> None:
        size = len(os.fsencode(self.path))
        if size > MAX_PATH_BYTES:
            raise SocketPathError(
                f"socket {self.path}: the path is {size} bytes; a Unix socket path holds at "
                f"most {MAX_PATH_BYTES}: set a shorter [daemon] socket"
            )
        directory = self.path.parent
        if directory.is_dir():
            return
        if not directory.parent.is_dir():
            raise SocketPathError(
                f"socket {self.path}: its directory {directory} does not exist, nor "
                f"{directory.parent}: create it, or set another [daemon] socket"
            )
        try:
            directory.mkdir(mode=DIR_MODE)
        except FileExistsError:
            pass  # another daemon made it meanwhile
        except OSError as exc:
            raise SocketPathError(
                f"socket {self.path}: cannot create its directory {directory}: {exc.strerror}"
            ) from None

    def _remove_stale(self) -> None:
        """Replace a socket file nobody answers on; refuse anything else."""
        try:
            info = self.path.lstat()
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(info.st_mode):
            raise SocketPathError(
                f"socket {self.path}: it exists and is not a socket; refusing to replace it"
            )
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(1.0)
        try:
            probe.connect(str(self.path))
        except OSError as exc:
            if exc.errno in (errno.ECONNREFUSED, errno.ENOENT):
                log.info("replacing stale socket file", socket=str(self.path))
                self.path.unlink(missing_ok=True)
                return
            raise SocketPathError(f"socket {self.path}: cannot probe it: {exc.strerror}") from None
        finally:
            probe.close()
        # Someone answers without holding our lock: systemd's socket, or another server.
        raise AlreadyRunningError(
            f"another server is already serving on {self.path}; stop it first, or give this "
            "one another [daemon] socket"
        )

    def _bind(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        # The umask makes the socket born with its final mode: no window where it is wider.
        old_umask = os.umask(0o777 & ~self._mode)
        try:
            sock.bind(str(self.path))
        except OSError as exc:
            sock.close()
            raise SocketPathError(f"socket {self.path}: cannot bind it: {exc.strerror}") from None
        finally:
            os.umask(old_umask)
        try:
            os.chmod(self.path, self._mode)
            self._bound_inode = self.path.stat().st_ino
            sock.listen(BACKLOG)
        except BaseException:
            sock.close()
            raise
        sock.setblocking(False)
        return sock
