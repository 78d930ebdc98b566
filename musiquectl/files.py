"""Handing files to the daemon: musiquectl opens them, the daemon gets the open descriptors.

Under systemd the daemon runs as a user of its own and cannot read the person's files, and
it never opens a path a client names. So ``musiquectl`` opens each PATH itself (read only)
and passes the descriptors over the control socket (``SCM_RIGHTS``), with the request.

The wire shape: the request is an ordinary JSON-RPC request line, for instance::

    {"jsonrpc": "2.0", "method": "import.file", "id": "cli:import.file#4242.1",
     "params": {"files": [{"name": "~/Downloads/Streaming_History_Audio_2022.json",
                           "fd": 0, "size": 12845120}, ...],
                "format": "auto", "dry_run": false, "zone": "Europe/Zurich"}}

``zone`` is the caller's time zone, if it can tell (a ``.scrobbler.log`` marked
``#TZ/UNKNOWN`` is in the caller's local time). ``fd`` is the file's index among the descriptors, ``name`` the path as the user gave it
(for detection by its base name and for messages only), ``size`` its size when opened. The
daemon answers a valid request with its go-ahead, the notification
``{"method": "files.send", "params": {"id": <the request's id>, "count": n}}`` (it has
stopped reading the socket as a stream, which would drop descriptors); the client then sends
one byte with the ``n`` descriptors attached (``SCM_RIGHTS``, one ``sendmsg``:
``hand_over``) and nothing else until the answer. A request whose ``files`` do not name each
descriptor exactly once is refused before the go-ahead; descriptors beyond ``count`` are
closed by the kernel. ``musiquectl`` closes its own copies once sent. Linux passes at most
``MAX_FILES`` descriptors in one message.

Standard library only: ``musiquectl`` imports this on its start-up path.
"""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from musiquectl.client import ClientError
from musiqued.wire import MAX_HANDED_FILES

MAX_FILES = MAX_HANDED_FILES
"""Linux's ``SCM_MAX_FD``: the most descriptors one message carries."""


class FileRefused(ClientError):
    """A PATH cannot be handed over; the message names it and says why, in one line."""


@dataclass
class OpenedFiles:
    """Files opened for handing over: their names as given, descriptors and sizes."""

    names: list[str] = field(default_factory=list)
    fds: list[int] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)

    def params(self) -> list[dict[str, Any]]:
        """The request's ``files``: each file's name, index among the descriptors, size."""
        return [
            {"name": name, "fd": index, "size": size}
            for index, (name, size) in enumerate(zip(self.names, self.sizes, strict=True))
        ]

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds.clear()

    def __enter__(self) -> OpenedFiles:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def open_files(paths: Sequence[str]) -> OpenedFiles:
    """Each of ``paths`` opened read only; ``FileRefused`` (none left open) for a path that
    cannot be opened or is not a regular file, or for more than ``MAX_FILES`` of them."""
    if len(paths) > MAX_FILES:
        raise FileRefused(f"{len(paths)} files at once; hand over at most {MAX_FILES} per call")
    opened = OpenedFiles()
    try:
        for path in paths:
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK)
            except OSError as exc:
                raise FileRefused(f"{_shown(path)}: cannot open: {exc.strerror}") from None
            opened.fds.append(fd)
            status = os.fstat(fd)
            if not stat.S_ISREG(status.st_mode):
                raise FileRefused(f"{_shown(path)}: not a regular file")
            # Opened without blocking (a FIFO would wait for a writer); a regular file's
            # reads never block, so the daemon gets it as an ordinary blocking descriptor.
            os.set_blocking(fd, True)
            opened.names.append(path)
            opened.sizes.append(status.st_size)
    except BaseException:
        opened.close()
        raise
    return opened


def hand_over(sock: socket.socket, opened: OpenedFiles) -> None:
    """After the daemon's go-ahead: one byte on ``sock`` with ``opened``'s descriptors
    attached; they are closed here once sent (the daemon holds its own)."""
    try:
        socket.send_fds(sock, [b"F"], opened.fds)
    finally:
        opened.close()


def import_params(
    opened: OpenedFiles, *, fmt: str = "auto", dry_run: bool = False
) -> dict[str, Any]:
    """The ``import.file`` request's params for ``opened`` (see the module's docstring), with
    the caller's time zone: a ``.scrobbler.log`` marked ``#TZ/UNKNOWN`` is in local time,
    the caller's, which the daemon (another user, perhaps another zone) cannot know."""
    params: dict[str, Any] = {"files": opened.params(), "format": fmt, "dry_run": dry_run}
    zone = local_zone_name()
    if zone is not None:
        params["zone"] = zone
    return params


def local_zone_name() -> str | None:
    """The IANA name of this process's time zone: ``$TZ`` (``:Area/City`` or ``Area/City``),
    else what ``/etc/localtime`` links to; None if neither names one."""
    name = os.environ.get("TZ", "").removeprefix(":")
    if not name:
        try:
            target = os.readlink("/etc/localtime")
        except OSError:
            return None
        _, found, name = target.rpartition("zoneinfo/")
        if not found:
            return None
    return name if name and not name.startswith("/") else None


def _shown(path: str) -> str:
    """A path for a one-line message: control characters made visible."""
    return path if path.isprintable() else repr(path)[1:-1]
