"""A blocking JSON-RPC client over the daemon's Unix socket (no asyncio: start-up stays fast)."""

from __future__ import annotations

import collections
import itertools
import json
import os
import socket
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from musiquectl import interrupt
from musiqued import wire


class ClientError(Exception):
    """Base of the client's errors."""


START_ADVICE = (
    "Start it with `systemctl start musiqued` (or `systemctl --user start musiqued`), "
    "or point at another socket with --socket or $MUSIQUED_SOCKET."
)
OTHER_SOCKET_ADVICE = (
    "Point --socket or $MUSIQUED_SOCKET at the daemon's socket ([daemon] socket in its "
    "configuration)."
)


class Unreachable(ClientError):
    """The daemon's socket cannot be reached; ``advice`` says what to do about it."""

    def __init__(self, path: Path, reason: str, advice: str = START_ADVICE) -> None:
        super().__init__(f"cannot reach musiqued at {path}: {reason}")
        self.path = path
        self.reason = reason
        self.advice = advice


class DaemonError(ClientError):
    """The daemon answered with a JSON-RPC error."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


RECEIVE_BYTES = 256 * 1024


class _Idle(Exception):
    """Nothing arrived within the idle time given to ``notifications``."""


class Client:
    def __init__(self, path: Path, timeout: float | None = 30.0) -> None:
        self.path = path
        self._timeout = timeout
        self._sock: socket.socket | None = None
        self._buffer = bytearray()
        self._scanned = 0  # how much of _buffer holds no newline
        self._ids = itertools.count(1)
        # Events that arrive while a call waits for its answer are kept for notifications().
        self._pending: collections.deque[dict[str, Any]] = collections.deque()

    def __enter__(self) -> Client:
        self.connect()
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self._timeout)
        try:
            sock.connect(str(self.path))
        except FileNotFoundError:
            sock.close()
            raise Unreachable(self.path, "no such socket") from None
        except ConnectionRefusedError:
            sock.close()
            raise _refused(self.path) from None
        except PermissionError:
            sock.close()
            raise _denied(self.path) from None
        except OSError as exc:
            sock.close()
            raise Unreachable(self.path, exc.strerror or str(exc)) from None
        self._sock = sock

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def call(
        self,
        method: str,
        params: dict[str, Any] | list[Any] | None = None,
        *,
        stream: Callable[[str], object] | None = None,
        hand_over: Callable[[socket.socket], object] | None = None,
    ) -> Any:
        """The result of ``method``; for a streamed method, ``stream`` is given each part of
        the answer (``wire.STREAM_METHOD`` notifications) as it arrives, before the result.
        ``hand_over`` sends the files the daemon's go-ahead (``wire.FILES_METHOD``) asks for
        (``musiquectl.files``)."""
        request_id = f"cli:{method}#{os.getpid()}.{next(self._ids)}"
        request: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": request_id}
        if params is not None:
            request["params"] = params
        self._send(request)
        assert self._sock is not None
        self._sock.settimeout(self._timeout)  # events() may have changed it
        loads = _stream_loads() if stream is not None else json.loads
        while True:
            message = self._receive(loads)
            if message.get("id") == request_id or "method" not in message:
                break
            if message.get("method") == wire.EVENT_METHOD:
                self._pending.append(message.get("params") or {})
            elif message.get("method") == wire.FILES_METHOD and hand_over is not None:
                asked = message.get("params")
                if isinstance(asked, dict) and asked.get("id") == request_id:
                    try:
                        hand_over(self._sock)
                    except OSError as exc:
                        raise Unreachable(self.path, f"connection lost: {exc}") from None
            elif message.get("method") == wire.STREAM_METHOD and stream is not None:
                part = message.get("params")
                if not isinstance(part, dict) or part.get("id") != request_id:
                    continue
                data = part.get("data")
                if not isinstance(data, str):
                    raise ClientError(f"unexpected part of an answer: {str(part)[:200]}")
                stream(data)
        if "error" in message:
            error = message["error"]
            raise DaemonError(error.get("code", 0), error.get("message", "?"), error.get("data"))
        return message.get("result")

    def notifications(self) -> Iterator[dict[str, Any]]:
        """Server-sent ``event`` notifications, as they arrive (blocks between them)."""
        while True:
            event = self.next_event(None)
            if event is not None:
                yield event

    def next_event(self, idle: float | None) -> dict[str, Any] | None:
        """The next server-sent ``event`` notification (after ``events.subscribe``); None
        when nothing arrived for ``idle`` seconds (None: wait for as long as it takes)."""
        if self._pending:
            return self._pending.popleft()
        assert self._sock is not None
        self._sock.settimeout(idle)
        while True:
            try:
                message = self._receive(idle_ok=idle is not None)
            except _Idle:
                return None
            if message.get("method") == wire.EVENT_METHOD:
                params: dict[str, Any] = message.get("params") or {}
                return params

    def _send(self, message: dict[str, Any]) -> None:
        if self._sock is None:
            self.connect()
        assert self._sock is not None
        try:
            self._sock.sendall(json.dumps(message).encode() + b"\n")
        except OSError as exc:
            raise Unreachable(self.path, f"connection lost: {exc}") from None

    def _receive(
        self, loads: Callable[[bytearray], Any] = json.loads, *, idle_ok: bool = False
    ) -> dict[str, Any]:
        assert self._sock is not None
        # Streamed answers come in lines of up to 1 MiB, back to back: each byte is looked
        # at once for the newline, and taking a line off the front copies nothing else.
        while (end := self._buffer.find(b"\n", self._scanned)) < 0:
            self._scanned = len(self._buffer)
            if not interrupt.wait_readable(self._sock, self._sock.gettimeout()):
                if idle_ok:
                    raise _Idle
                raise Unreachable(self.path, "the daemon did not answer in time")
            try:
                chunk = self._sock.recv(RECEIVE_BYTES)
            except OSError as exc:
                raise Unreachable(self.path, f"connection lost: {exc}") from None
            if not chunk:
                raise Unreachable(self.path, "the daemon closed the connection")
            self._buffer += chunk
        line = self._buffer[:end]
        del self._buffer[: end + 1]
        self._scanned = 0
        try:
            message = loads(line)
        except ValueError:  # JSONDecodeError (json's, orjson's) and UnicodeDecodeError
            raise ClientError(f"unreadable answer from the daemon: {bytes(line[:200])!r}") from None
        if isinstance(message, dict):
            return message
        raise ClientError(f"unexpected answer from the daemon: {bytes(line[:200])!r}")


def _stream_loads() -> Callable[[bytearray], Any]:
    """The JSON decoder for a streamed answer: orjson (a dependency of the daemon, loaded
    only here to keep start-up light) reads its megabytes of escaped text 3x faster."""
    import orjson

    return orjson.loads


def _refused(path: Path) -> Unreachable:
    """Nothing listens at ``path``: a stale socket, or something that is not a socket."""
    try:
        mode = path.stat().st_mode
    except OSError:
        mode = stat.S_IFSOCK
    if not stat.S_ISSOCK(mode):
        kind = "a directory" if stat.S_ISDIR(mode) else "a regular file"
        if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
            kind = "not a socket file"
        return Unreachable(path, f"{path} is {kind}, not a socket", OTHER_SOCKET_ADVICE)
    return Unreachable(
        path, "connection refused: no daemon listens on this socket (a stale socket file?)"
    )


def _denied(path: Path) -> Unreachable:
    """The socket's (or its directory's) permissions keep us out: say who may connect."""
    import grp
    import pwd

    shown = path
    try:
        info = path.stat()
    except OSError:
        shown = path.parent  # the directory itself is closed to us
        try:
            info = path.parent.stat()
        except OSError:
            return Unreachable(path, "permission denied", _join_advice(None))
    try:
        owner = pwd.getpwuid(info.st_uid).pw_name
    except KeyError:
        owner = str(info.st_uid)
    try:
        group: str | None = grp.getgrgid(info.st_gid).gr_name
    except KeyError:
        group = str(info.st_gid)
    return Unreachable(
        path,
        f"permission denied by {shown} (owner {owner}, group {group}, "
        f"mode {stat.S_IMODE(info.st_mode):04o})",
        _join_advice(group),
    )


def _join_advice(group: str | None) -> str:
    joined = (
        f"members of group {group}: join it (`sudo usermod -aG {group} $USER`, then log in again)"
        if group
        else "members of the socket's group: join it"
    )
    return (
        f"Only root, the daemon's user and {joined}, or have an administrator add your uid "
        f"{os.getuid()} to [daemon] allowed_uids (with a [daemon] socket_mode that lets you in)."
    )
