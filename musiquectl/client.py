"""A blocking JSON-RPC client over the daemon's Unix socket (no asyncio: start-up stays fast)."""

from __future__ import annotations

import collections
import itertools
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from musiqued import wire


class ClientError(Exception):
    """Base of the client's errors."""


class Unreachable(ClientError):
    """The daemon's socket cannot be reached."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"cannot reach musiqued at {path}: {reason}")
        self.path = path
        self.reason = reason


class DaemonError(ClientError):
    """The daemon answered with a JSON-RPC error."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


class _Idle(Exception):
    """Nothing arrived within the idle time given to ``notifications``."""


class Client:
    def __init__(self, path: Path, timeout: float | None = 30.0) -> None:
        self.path = path
        self._timeout = timeout
        self._sock: socket.socket | None = None
        self._buffer = b""
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
            raise Unreachable(self.path, "connection refused (is musiqued running?)") from None
        except PermissionError:
            sock.close()
            raise Unreachable(
                self.path, "permission denied (are you in the musique group?)"
            ) from None
        except OSError as exc:
            sock.close()
            raise Unreachable(self.path, exc.strerror or str(exc)) from None
        self._sock = sock

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def call(self, method: str, params: dict[str, Any] | list[Any] | None = None) -> Any:
        request_id = f"cli:{method}#{os.getpid()}.{next(self._ids)}"
        request: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": request_id}
        if params is not None:
            request["params"] = params
        self._send(request)
        assert self._sock is not None
        self._sock.settimeout(self._timeout)  # events() may have changed it
        while True:
            message = self._receive()
            if message.get("id") == request_id or "method" not in message:
                break
            if message.get("method") == wire.EVENT_METHOD:
                self._pending.append(message.get("params") or {})
        if "error" in message:
            error = message["error"]
            raise DaemonError(error.get("code", 0), error.get("message", "?"), error.get("data"))
        return message.get("result")

    def notifications(self) -> Iterator[dict[str, Any]]:
        """Server-sent ``event`` notifications, as they arrive (blocks between them)."""
        for event in self.events(None):
            if event is not None:
                yield event

    def events(self, idle: float | None) -> Iterator[dict[str, Any] | None]:
        """Like ``notifications``, but yields None whenever nothing arrived for ``idle`` s,
        so a caller can poll something else (a job's state) between events."""
        assert self._sock is not None
        self._sock.settimeout(idle)
        while True:
            while self._pending:
                yield self._pending.popleft()
            try:
                message = self._receive(idle_ok=idle is not None)
            except _Idle:
                yield None
                continue
            if message.get("method") == wire.EVENT_METHOD:
                yield message.get("params") or {}

    def _send(self, message: dict[str, Any]) -> None:
        if self._sock is None:
            self.connect()
        assert self._sock is not None
        try:
            self._sock.sendall(json.dumps(message).encode() + b"\n")
        except OSError as exc:
            raise Unreachable(self.path, f"connection lost: {exc}") from None

    def _receive(self, *, idle_ok: bool = False) -> dict[str, Any]:
        assert self._sock is not None
        while b"\n" not in self._buffer:
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError:
                if idle_ok:
                    raise _Idle from None
                raise Unreachable(self.path, "the daemon did not answer in time") from None
            except OSError as exc:
                raise Unreachable(self.path, f"connection lost: {exc}") from None
            if not chunk:
                raise Unreachable(self.path, "the daemon closed the connection")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        try:
            message = json.loads(line)
        except ValueError:  # JSONDecodeError and UnicodeDecodeError
            raise ClientError(f"unreadable answer from the daemon: {line[:200]!r}") from None
        if isinstance(message, dict):
            return message
        raise ClientError(f"unexpected answer from the daemon: {line[:200]!r}")
