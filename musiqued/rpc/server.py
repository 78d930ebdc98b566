"""The Unix stream socket: framing, peer credentials, idle timeouts, event pushing.

Framing is one JSON text per ``\\n``. The reader's limit is the 1 MiB line limit, so a longer
line is answered with an error and that connection closed; everyone else keeps being served.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
import stat
import struct
from collections.abc import Iterable
from pathlib import Path

import structlog

from musiqued import wire
from musiqued.errors import MusiqueError
from musiqued.rpc import protocol
from musiqued.rpc.dispatch import Dispatcher
from musiqued.rpc.table import Peer
from musiqued.services.events import Subscription

log = structlog.get_logger("musiqued.rpc")

_PEERCRED = struct.Struct("3i")


class SocketInUseError(MusiqueError):
    kind = "socket_in_use"


def peer_of(sock: socket.socket) -> Peer:
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
    pid, uid, gid = _PEERCRED.unpack(raw)
    return Peer(pid=pid, uid=uid, gid=gid)


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
    """Root, the daemon's own uid, listed uids, and members of listed gids may connect."""

    def __init__(self, uids: Iterable[int] = (), gids: Iterable[int] = ()) -> None:
        self.uids = frozenset(uids) | {0, os.geteuid()}
        self.gids = frozenset(gids)

    def allows(self, peer: Peer) -> bool:
        if peer.uid in self.uids:
            return True
        if not self.gids:
            return False
        return peer.gid in self.gids or bool(_supplementary_gids(peer.pid) & self.gids)


class _Connection:
    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.subscriptions: list[Subscription] = []
        self.pushers: list[asyncio.Task[None]] = []
        self._write_lock = asyncio.Lock()

    def attach(self, subscription: Subscription) -> None:
        self.subscriptions.append(subscription)
        self.pushers.append(asyncio.create_task(self._push(subscription)))

    async def send(self, data: bytes) -> None:
        async with self._write_lock:
            self.writer.write(data)
            await self.writer.drain()

    async def _push(self, subscription: Subscription) -> None:
        while True:
            event = await subscription.get()
            await self.send(
                protocol.encode(protocol.notification(wire.EVENT_METHOD, event.as_params()))
            )

    async def close(self) -> None:
        for subscription in self.subscriptions:
            subscription.close()
        for task in self.pushers:
            task.cancel()
        for task in self.pushers:
            with contextlib.suppress(asyncio.CancelledError, OSError, ConnectionError):
                await task
        self.writer.close()
        with contextlib.suppress(OSError, ConnectionError):
            await self.writer.wait_closed()


class RpcServer:
    """Serves the dispatcher on a Unix socket it binds, or on one systemd handed over."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        *,
        path: Path,
        mode: int,
        policy: AccessPolicy,
        idle_timeout: float,
        inherited: socket.socket | None = None,
    ) -> None:
        self._dispatcher = dispatcher
        self.path = path
        self._mode = mode
        self.policy = policy
        self.idle_timeout = idle_timeout
        self._inherited = inherited
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._bound_inode: int | None = None

    @property
    def activated(self) -> bool:
        return self._inherited is not None

    async def start(self) -> None:
        if self._inherited is not None:
            self._server = await asyncio.start_unix_server(
                self._serve, sock=self._inherited, limit=wire.MAX_LINE_BYTES
            )
            return
        self._claim_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        old_umask = os.umask(0o777 & ~self._mode)
        try:
            self._server = await asyncio.start_unix_server(
                self._serve, path=str(self.path), limit=wire.MAX_LINE_BYTES
            )
        finally:
            os.umask(old_umask)
        os.chmod(self.path, self._mode)
        self._bound_inode = self.path.stat().st_ino

    def _claim_path(self) -> None:
        """Replace a stale socket file; refuse one that a live daemon answers on."""
        try:
            info = self.path.lstat()
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(info.st_mode):
            raise SocketInUseError(
                f"{self.path} exists and is not a socket; refusing to replace it"
            )
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(1.0)
        try:
            probe.connect(str(self.path))
        except OSError as exc:
            if exc.errno in (errno.ECONNREFUSED, errno.ENOENT):
                self.path.unlink(missing_ok=True)
                return
            raise SocketInUseError(f"cannot probe {self.path}: {exc.strerror}") from None
        finally:
            probe.close()
        raise SocketInUseError(f"another musiqued is already serving on {self.path}; stop it first")

    async def stop_accepting(self) -> None:
        if self._server is not None:
            self._server.close()

    async def close(self) -> None:
        """Stop accepting, end every connection, remove the socket file we created."""
        await self.stop_accepting()
        for task in tuple(self._connections):
            task.cancel()
        for task in tuple(self._connections):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None
        if self._bound_inode is not None:
            with contextlib.suppress(OSError):
                if self.path.stat().st_ino == self._bound_inode:
                    self.path.unlink()
            self._bound_inode = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        connection = _Connection(writer)
        try:
            sock = writer.get_extra_info("socket")
            peer = peer_of(sock) if sock is not None else Peer(0, -1, -1)
            if not self.policy.allows(peer):
                log.warning(
                    "rpc peer refused", peer_uid=peer.uid, peer_gid=peer.gid, peer_pid=peer.pid
                )
                refusal = protocol.Forbidden(
                    f"uid {peer.uid} may not use this daemon; ask an administrator to add it "
                    "to [daemon] allowed_uids or allowed_gids"
                )
                await connection.send(protocol.encode(protocol.failure(None, refusal)))
                return
            await self._converse(reader, connection, peer)
        except (ConnectionError, BrokenPipeError):
            pass
        finally:
            self._connections.discard(task)
            await connection.close()

    async def _converse(
        self, reader: asyncio.StreamReader, connection: _Connection, peer: Peer
    ) -> None:
        while True:
            timeout = None if connection.subscriptions else self.idle_timeout
            try:
                line = await asyncio.wait_for(reader.readline(), timeout)
            except TimeoutError:
                return
            except (ValueError, asyncio.LimitOverrunError):
                error = protocol.InvalidRequest(
                    f"line longer than {wire.MAX_LINE_BYTES} bytes; closing the connection",
                    kind="line_too_long",
                )
                await connection.send(protocol.encode(protocol.failure(None, error)))
                return
            if not line:
                return
            if not line.strip():
                continue
            answer = await self._dispatcher.handle_line(line, connection, peer)
            if answer is not None:
                await connection.send(answer)
