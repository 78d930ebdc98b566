"""Who may use the control socket: the peer's credentials, and the access policy.

The kernel tells who is on the other end (``SO_PEERCRED``: pid, uid, gid;
``SO_PEERGROUPS``: supplementary groups); ``AccessPolicy`` decides from that alone.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from musiqued.rpc.table import Peer

_PEERCRED = struct.Struct("3i")


def peer_of(sock: socket.socket) -> Peer:
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
    pid, uid, gid = _PEERCRED.unpack(raw)
    return Peer(pid=pid, uid=uid, gid=gid)


# Not in every Python's socket module; the value is Linux's.
_SO_PEERGROUPS = getattr(socket, "SO_PEERGROUPS", 59)


def peer_groups(sock: socket.socket) -> frozenset[int] | None:
    """The peer's supplementary groups from the socket itself (``SO_PEERGROUPS``).

    Preferred to ``/proc/<pid>/status``, which ``ProtectProc=invisible`` hides from the
    daemon and which may already belong to another process. None: not available here.
    """
    size = 256
    while size <= 65536 * 4:
        try:
            raw = sock.getsockopt(socket.SOL_SOCKET, _SO_PEERGROUPS, size)
        except OSError as exc:
            if exc.errno == errno.ERANGE:
                size *= 4
                continue
            return None
        return frozenset(struct.unpack(f"{len(raw) // 4}I", raw[: len(raw) // 4 * 4]))
    return None


def _supplementary_gids(pid: int) -> set[int]:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Groups:"):
                    return {int(g) for g in line.split()[1:]}
    except OSError:
        pass
    return set()


class AccessPolicy:
    """Root, the daemon's own uid, listed uids, members of listed gids and of the daemon's
    own group (the system unit's ``musique`` group, which owns the socket) may connect."""

    def __init__(self, uids: Iterable[int] = (), gids: Iterable[int] = ()) -> None:
        self.uids = frozenset(uids) | {0, os.geteuid()}
        self.gids = frozenset(gids) | {os.getegid()}

    def allows(self, peer: Peer, groups: frozenset[int] | None = None) -> bool:
        if peer.uid in self.uids or peer.gid in self.gids:
            return True
        supplementary = _supplementary_gids(peer.pid) if groups is None else groups
        return bool(supplementary & self.gids)


@dataclass(slots=True)
class _Window:
    started: float
    suppressed: int = 0


class RefusalLog:
    """Says when a refused peer is worth a log line: the first refusal of a uid, then at
    most one line per uid per ``interval`` carrying how many refusals it stood for, so a
    flood of refused connections cannot flood the log."""

    def __init__(self, interval: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._windows: dict[int, _Window] = {}

    def refused(self, uid: int) -> int | None:
        """A refusal of ``uid``: the count to log now (1, or 1 + those held back), or None."""
        now = self._clock()
        window = self._windows.get(uid)
        if window is None or now - window.started >= self.interval:
            held = window.suppressed if window is not None else 0
            self._windows[uid] = _Window(now)
            return 1 + held
        window.suppressed += 1
        return None

    def flush(self) -> list[tuple[int, int]]:
        """``(uid, count)`` for every window that ended with refusals still unlogged."""
        now = self._clock()
        due = [
            (uid, w.suppressed)
            for uid, w in self._windows.items()
            if now - w.started >= self.interval
        ]
        for uid, _ in due:
            del self._windows[uid]
        return [(uid, count) for uid, count in due if count]
