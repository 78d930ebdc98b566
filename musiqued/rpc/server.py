"""The Unix stream socket: framing, peer credentials, idle timeouts, event pushing.

Framing is one JSON text per ``\\n``. The reader's limit is the 1 MiB line limit, so a longer
line is answered with an error and that connection closed; everyone else keeps being served.

What clients can hold is bounded: ``MAX_CONNECTIONS`` at once, ``MAX_CONNECTIONS_PER_UID``
of them for one uid (one more is answered ``too_many_connections`` and closed). A
connection's next line is read only once its previous answer has been taken: a client that
does not read its answers stops being read. Every answer counts against what all clients
together may hold (``services.answers``) until it is taken; while that is full and others
wait, the connection whose answer has gone unread the longest (``STALLED_S`` at least) is
dropped, one a second.

File handover (``import.file``): the stream transport's reads would drop the descriptors a
peer attaches, so the handler asks for them (``receive_fds``): reading from the transport
pauses, the daemon sends its go-ahead (``wire.FILES_METHOD``), and the peer's next message,
one byte, is read with ``recvmsg``, its descriptors with it (at most the count asked for: the
kernel closes any more). Then the transport reads on.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import socket
from pathlib import Path
from typing import cast

import structlog

from musiqued import wire
from musiqued.aio import cancel_and_wait
from musiqued.contract.shapes import event_params
from musiqued.rpc import protocol
from musiqued.rpc.dispatch import Dispatcher
from musiqued.rpc.listener import BACKLOG, SocketListener
from musiqued.rpc.peers import AccessPolicy, RefusalLog, peer_groups, peer_of
from musiqued.rpc.protocol import Id
from musiqued.rpc.table import Peer
from musiqued.services.answers import AnswerBudget
from musiqued.services.events import Subscription

log = structlog.get_logger("musiqued.rpc")

MAX_CONNECTIONS = 512
MAX_CONNECTIONS_PER_UID = 256
STALLED_S = 5.0
LIMITS_LOG_S = 10.0


class _Connection:
    """One client: its writer, its event subscriptions, and whether a request is in flight."""

    def __init__(
        self, writer: asyncio.StreamWriter, write_timeout: float, answers: AnswerBudget
    ) -> None:
        self.writer = writer
        self.answers = answers
        self.stalled_since: float | None = None
        self.peer: Peer | None = None
        self.groups: frozenset[int] | None = None
        self.write_timeout = write_timeout
        self.subscriptions: list[Subscription] = []
        self.pushers: list[asyncio.Task[None]] = []
        self.busy = False
        self.last_active = asyncio.get_running_loop().time()
        self._write_lock = asyncio.Lock()

    def gone(self) -> bool:
        transport = self.writer.transport
        if transport.is_closing():
            return True
        sock = transport.get_extra_info("socket")
        if sock is None:
            return False
        # POLLHUP: both directions are shut, so no answer can reach the peer any more.
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLHUP)
        return any(events & select.POLLHUP for _, events in poller.poll(0))

    def attach(self, subscription: Subscription) -> None:
        self.subscriptions.append(subscription)
        self.pushers.append(asyncio.create_task(self._push(subscription)))

    async def send(self, data: bytes) -> None:
        """Write ``data``; a peer that stops reading for ``write_timeout`` is cut off."""
        async with self._write_lock:
            transport = self.writer.transport
            if transport.is_closing():
                raise ConnectionResetError("connection closed")
            self.writer.write(data)
            # Fast path: the kernel took everything, nothing to wait for.
            if transport.get_write_buffer_size() == 0:
                return
            size = len(data)
            self.answers.hold(size)
            self.stalled_since = asyncio.get_running_loop().time()
            try:
                async with asyncio.timeout(self.write_timeout):
                    await self.writer.drain()
            except TimeoutError:
                log.info("rpc peer stopped reading; closing its connection")
                transport.abort()
                raise ConnectionAbortedError("peer stopped reading") from None
            finally:
                self.stalled_since = None
                self.answers.release(size)

    async def receive_fds(self, request_id: Id, count: int) -> list[int]:
        """The ``count`` descriptors the peer hands over after the go-ahead (see the module's
        docstring); ``InvalidParams`` if it sends something else or nothing in time."""
        # A socket's transport reads too (asyncio's or uvloop's, not asyncio's class).
        transport = cast("asyncio.Transport", self.writer.transport)
        # Paused already while the request is handled (``_converse``); paused here too for
        # a caller that is not, and then resumed here.
        was_reading = transport.is_reading()
        if was_reading:
            transport.pause_reading()
        try:
            await self.send(
                protocol.encode(
                    protocol.notification(wire.FILES_METHOD, {"id": request_id, "count": count})
                )
            )
            sock = self.writer.get_extra_info("socket")
            return await asyncio.to_thread(_receive_fds, sock.fileno(), count)
        finally:
            if was_reading and not transport.is_closing():
                transport.resume_reading()

    async def _push(self, subscription: Subscription) -> None:
        try:
            while True:
                event = await subscription.get()
                await self.send(
                    protocol.encode(protocol.notification(wire.EVENT_METHOD, event_params(event)))
                )
        except (ConnectionError, OSError):
            # The reading side notices the closed transport and ends the conversation.
            self.writer.transport.abort()

    async def close(self) -> None:
        for subscription in self.subscriptions:
            subscription.close()
        for task in self.pushers:
            with contextlib.suppress(OSError, ConnectionError):
                await cancel_and_wait(task)
        transport = self.writer.transport
        if transport.get_write_buffer_size():
            # Unsent answers to a peer that is not reading: do not wait for it.
            transport.abort()
        self.writer.close()
        with contextlib.suppress(OSError, ConnectionError):
            async with asyncio.timeout(1.0):
                await self.writer.wait_closed()


def _receive_fds(fd: int, count: int) -> list[int]:
    """Read the one byte carrying the peer's descriptors from the socket ``fd`` (its transport
    paused), through a duplicate: asyncio keeps the socket's own descriptor to itself."""
    with socket.socket(fileno=os.dup(fd)) as sock:
        sock.settimeout(wire.FILES_WAIT_S)
        try:
            data, fds, flags, _ = socket.recv_fds(sock, 1, count)
        except TimeoutError:
            raise protocol.InvalidParams(
                f"the files were not handed over within {wire.FILES_WAIT_S:g} s",
                kind="no_files",
            ) from None
    if len(data) != 1 or len(fds) != count or flags & socket.MSG_CTRUNC:
        for received in fds:
            os.close(received)
        raise protocol.InvalidParams(
            f"expected {count} file descriptors in one message, got {len(fds)}",
            kind="no_files",
        )
    return fds


async def _last_word(
    reader: asyncio.StreamReader, connection: _Connection, error: protocol.RpcError
) -> None:
    """Send ``error`` before closing, then swallow what the peer is still sending (up to a
    newline, EOF or a second).

    Closing a Unix socket with unread input resets the peer, which may then lose the
    error we just sent; reading the rest of its line first lets the error arrive.
    """
    await connection.send(protocol.encode(protocol.failure(None, error)))
    with contextlib.suppress(TimeoutError, ConnectionError, OSError):
        async with asyncio.timeout(1.0):
            while chunk := await reader.read(65536):
                if b"\n" in chunk:
                    return


class RpcServer:
    """Serves the dispatcher on a Unix socket it binds, or on one systemd handed over."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        *,
        listener: SocketListener,
        policy: AccessPolicy,
        idle_timeout: float,
    ) -> None:
        self._dispatcher = dispatcher
        self._listener = listener
        self._policy = policy
        self._refusals = RefusalLog()
        self.idle_timeout = idle_timeout
        self._server: asyncio.AbstractServer | None = None
        self._connections: dict[asyncio.Task[None], _Connection] = {}
        self._closing = False
        self._sweeper: asyncio.Task[None] | None = None
        self._turned_away = 0
        self._dropped_stalled = 0
        self._limits_logged = float("-inf")

    def set_policy(self, policy: AccessPolicy) -> None:
        """A new access policy (reload): open connections it no longer allows are closed."""
        self._policy = policy
        for connection in tuple(self._connections.values()):
            if connection.peer is not None and not policy.allows(
                connection.peer, connection.groups
            ):
                log.warning(
                    "rpc peer no longer allowed; closing its connection",
                    peer_uid=connection.peer.uid,
                    peer_pid=connection.peer.pid,
                )
                connection.writer.transport.abort()

    @property
    def activated(self) -> bool:
        return self._listener.activated

    @property
    def path(self) -> Path:
        return self._listener.served_path

    async def open(self) -> None:
        """Serve on the listener's socket (claimed earlier, see ``rpc/listener.py``)."""
        self._sweeper = asyncio.create_task(self._sweep_idle(), name="rpc idle sweeper")
        self._server = await asyncio.start_unix_server(
            self._serve, sock=self._listener.sock, limit=wire.MAX_LINE_BYTES, backlog=BACKLOG
        )

    async def stop_accepting(self) -> None:
        if self._server is not None:
            self._server.close()

    async def close(self, grace: float = 5.0) -> None:
        """Stop accepting, answer requests in flight (up to ``grace`` s), end every connection.

        The listener (closed after this) removes the socket file.
        """
        await self.stop_accepting()
        self._closing = True
        if self._sweeper is not None:
            await cancel_and_wait(self._sweeper)
            self._sweeper = None
        for task, connection in tuple(self._connections.items()):
            if not connection.busy:
                task.cancel()
        pending = tuple(self._connections)
        if pending:
            _, late = await asyncio.wait(pending, timeout=grace)
            for task in late:
                log.warning("rpc request still running at shutdown; cancelling it")
                await cancel_and_wait(task)
        if self._server is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2.0):
                    await self._server.wait_closed()
            self._server = None

    async def _sweep_idle(self) -> None:
        """Close connections silent for ``idle_timeout``; event subscribers are exempt. One
        sweep a second, rather than a timer re-armed on every request."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(min(1.0, self.idle_timeout / 4))
            for uid, count in self._refusals.flush():
                log.warning("rpc peer refused", peer_uid=uid, refusals=count)
            self._drop_a_stalled_one(loop.time())
            self._log_limits(loop.time())
            deadline = loop.time() - self.idle_timeout
            for connection in tuple(self._connections.values()):
                if (
                    connection.last_active < deadline
                    and not connection.busy
                    and not connection.subscriptions
                ):
                    log.debug("rpc connection idle; closing it")
                    connection.writer.transport.close()  # the reader sees EOF

    def _drop_a_stalled_one(self, now: float) -> None:
        """While the answers budget keeps others waiting, the client that has left its
        answer unread the longest goes (after ``STALLED_S``): it holds what they need."""
        if not self._dispatcher.answers.full:
            return
        stalled = [c for c in self._connections.values() if c.stalled_since is not None]
        if not stalled:
            return
        oldest = min(stalled, key=lambda c: c.stalled_since or now)
        if oldest.stalled_since is not None and now - oldest.stalled_since >= STALLED_S:
            self._dropped_stalled += 1
            oldest.writer.transport.abort()

    def _log_limits(self, now: float) -> None:
        """One line per ``LIMITS_LOG_S`` at most, with the counts since the last."""
        if now - self._limits_logged < LIMITS_LOG_S:
            return
        if self._turned_away or self._dropped_stalled:
            self._limits_logged = now
            log.warning(
                "rpc clients over the limits",
                turned_away=self._turned_away,
                dropped_unread=self._dropped_stalled,
                connections=len(self._connections),
                answers_held_bytes=self._dispatcher.answers.held,
            )
            self._turned_away = self._dropped_stalled = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        connection = _Connection(
            writer, write_timeout=self.idle_timeout, answers=self._dispatcher.answers
        )
        self._connections[task] = connection
        try:
            sock = writer.get_extra_info("socket")
            peer = peer_of(sock) if sock is not None else Peer(0, -1, -1)
            groups = peer_groups(sock) if sock is not None else None
            if not self._policy.allows(peer, groups):
                await self._refuse(reader, connection, peer)
                return
            too_many = self._too_many(peer)
            if too_many is not None:
                await self._turn_away(reader, connection, too_many)
                return
            connection.peer, connection.groups = peer, groups
            await self._converse(reader, connection, peer)
        except (ConnectionError, OSError):
            pass  # the peer went away; nothing to answer
        except asyncio.CancelledError:
            if not self._closing:
                raise
            # The stop asked for this end: handled, so the connection's own clean-up below
            # (its event pushers cancelled) runs to the end, and the task ends normally.
            # asyncio's stream protocol asks a cancelled task for its exception and logs
            # the CancelledError as an error otherwise.
            while task.cancelling():
                task.uncancel()
        except Exception:
            log.exception("rpc connection failed")
        finally:
            del self._connections[task]
            await connection.close()

    def _too_many(self, peer: Peer) -> str | None:
        """Why one more connection from ``peer`` is too many, or None."""
        if len(self._connections) > MAX_CONNECTIONS:
            return f"the daemon holds {MAX_CONNECTIONS} connections, its most"
        same_uid = sum(
            1 for c in self._connections.values() if c.peer is not None and c.peer.uid == peer.uid
        )
        if same_uid >= MAX_CONNECTIONS_PER_UID:
            return f"uid {peer.uid} holds {same_uid} connections, the most one uid may"
        return None

    async def _turn_away(
        self, reader: asyncio.StreamReader, connection: _Connection, why: str
    ) -> None:
        self._turned_away += 1
        error = protocol.RpcError(
            f"too many connections: {why}; close some and try again", kind="too_many_connections"
        )
        await _last_word(reader, connection, error)

    async def _refuse(
        self, reader: asyncio.StreamReader, connection: _Connection, peer: Peer
    ) -> None:
        count = self._refusals.refused(peer.uid)
        if count is not None:
            log.warning(
                "rpc peer refused",
                peer_uid=peer.uid,
                peer_gid=peer.gid,
                peer_pid=peer.pid,
                refusals=count,
            )
        refusal = protocol.Forbidden(
            f"uid {peer.uid} may not use this daemon; ask an administrator to add it "
            "to [daemon] allowed_uids or allowed_gids",
            kind="forbidden",
        )
        await _last_word(reader, connection, refusal)

    async def _converse(
        self, reader: asyncio.StreamReader, connection: _Connection, peer: Peer
    ) -> None:
        loop = asyncio.get_running_loop()
        while not self._closing:
            try:
                line = await reader.readline()
            except ValueError:  # the line is over the limit (asyncio's LimitOverrunError)
                error = protocol.InvalidRequest(
                    f"line longer than {wire.MAX_LINE_BYTES} bytes; closing the connection",
                    kind="line_too_long",
                )
                log.warning("rpc line too long; closing the connection", peer_pid=peer.pid)
                await _last_word(reader, connection, error)
                return
            if not line:
                return
            if not line.strip(b" \t\r\n"):
                continue  # blank lines are keep-alives, not requests
            connection.busy = True
            # Not read while its line is handled and its answer taken: what it sends
            # meanwhile waits in the kernel, not here. (Left alone when the reader paused it
            # itself, its buffer full: the reader resumes it.)
            transport = cast(asyncio.Transport, connection.writer.transport)
            paused = transport.is_reading()
            if paused:
                transport.pause_reading()
            try:
                answer = await self._dispatcher.handle_line(line, connection, peer)
                if answer is not None:
                    await connection.send(answer)
            finally:
                if paused and not transport.is_closing():
                    transport.resume_reading()
                connection.busy = False
                connection.last_active = loop.time()
