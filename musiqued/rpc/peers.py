"""Who may use the control socket: the peer's credentials, and the access policy.

The kernel tells who is on the other end (``SO_PEERCRED``: pid, uid, gid;
``SO_PEERGROUPS``: supplementary groups); ``AccessPolicy`` decides from that alone.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Iterable

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
        if peer.uid in self.uids:
            return True
        if peer.gid in self.gids:
            return True
        supplementary = _supplementary_gids(peer.pid) if groups is None else groups
        return bool(supplementary & self.gids)
