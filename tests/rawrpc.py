"""Raw JSON-RPC over a Unix socket for protocol tests: exact bytes in, decoded lines out."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


class RawConnection:
    """A blocking Unix socket connection that reads the daemon's answers line by line."""

    def __init__(self, path: Path, timeout: float = 10.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(str(path))
        self._buffer = b""

    def __enter__(self) -> RawConnection:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_line(self) -> bytes | None:
        """The next line, or None at end of stream."""
        while b"\n" not in self._buffer:
            try:
                chunk = self.sock.recv(1 << 16)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return None
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def read(self) -> Any:
        line = self.read_line()
        assert line is not None, "the daemon closed the connection without answering"
        return json.loads(line)

    def at_eof(self) -> bool:
        """True once the daemon has closed its side (after any remaining lines)."""
        while True:
            line = self.read_line()
            if line is None:
                return True


def request(method: str, params: Any = None, id: Any = 1) -> bytes:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": id}
    if params is not None:
        message["params"] = params
    return json.dumps(message).encode() + b"\n"


def exchange(path: Path, data: bytes, timeout: float = 10.0) -> Any:
    """Send ``data`` on a new connection and return the first answer, decoded."""
    with RawConnection(path, timeout) as conn:
        conn.send(data)
        return conn.read()


def assert_serving(path: Path) -> None:
    """A successful ``daemon.status`` on a brand-new connection."""
    started = time.monotonic()
    answer = exchange(path, request("daemon.status", id="probe"))
    assert answer["id"] == "probe"
    assert "result" in answer, answer
    assert answer["result"]["pid"] > 0
    assert time.monotonic() - started < 5.0


def error_code(answer: Any) -> int:
    assert isinstance(answer, dict), answer
    assert "error" in answer, answer
    code = answer["error"]["code"]
    assert isinstance(code, int)
    return code


NOBODY = 65534


def run_as(
    child: Callable[[int], int], uid: int | None = NOBODY, gid: int = NOBODY
) -> tuple[int, bytes]:
    """Run ``child(out)`` in a forked process as ``uid``/``gid`` (the tests run as root; uid
    None: as this process's user); ``out`` is a descriptor whose bytes are returned with the
    child's exit status."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        status = 70
        try:
            os.close(read_end)
            if uid is not None:
                os.setgroups([])
                os.setgid(gid)
                os.setuid(uid)
            status = child(write_end)
        except BaseException as exc:
            os.write(write_end, json.dumps({"child_error": repr(exc)}).encode())
            status = 1
        finally:
            os._exit(status)
    os.close(write_end)
    chunks = []
    while chunk := os.read(read_end, 65536):
        chunks.append(chunk)
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), b"".join(chunks)


def call_as(path: Path, uid: int = NOBODY, gid: int = NOBODY, method: str = "daemon.status") -> Any:
    """Call ``method`` from a forked child running as ``uid``/``gid``.

    Returns the decoded answer, or ``{"child_error": ...}`` if the child could not connect.
    """

    def child(out: int) -> int:
        with RawConnection(path, timeout=10) as conn:
            conn.send(request(method, id="as-uid"))
            line = conn.read_line() or b'{"child_error": "closed without answering"}'
        os.write(out, line)
        return 0

    return json.loads(run_as(child, uid, gid)[1])
