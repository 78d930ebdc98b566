"""``musiquectl`` on a pseudo-terminal: the exact bytes a person's terminal would receive."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.support import VENV_BIN

SGR = re.compile(rb"\x1b\[[0-9;]*m")
"""Select Graphic Rendition: the only sequence musiquectl writes for a table (a bold header)."""


@dataclass(frozen=True)
class TtyRun:
    returncode: int
    output: bytes
    """stdout and stderr as the terminal got them (no newline translation)."""

    @property
    def text(self) -> str:
        return self.output.decode("utf-8")

    @property
    def plain(self) -> str:
        """The output without musiquectl's own styling (bold): what the person reads."""
        return SGR.sub(b"", self.output).decode("utf-8")


def _terminal(columns: int) -> tuple[int, int]:
    """A pty pair ``columns`` wide that passes bytes through as written (no \n → \r\n)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    attributes = termios.tcgetattr(slave)
    attributes[1] &= ~termios.OPOST
    termios.tcsetattr(slave, termios.TCSANOW, attributes)
    return master, slave


def run_on_tty(
    *args: str,
    socket_path: Path | None = None,
    columns: int = 120,
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
) -> TtyRun:
    """``musiquectl ARGS`` with stdin, stdout and stderr on a pty ``columns`` wide."""
    command = [str(VENV_BIN / "musiquectl")]
    if socket_path is not None:
        command += ["--socket", str(socket_path)]
    command += list(args)
    master, slave = _terminal(columns)
    environment = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    environment.update({"TERM": "xterm-256color", **(env or {})})
    proc = subprocess.Popen(
        command, stdin=slave, stdout=slave, stderr=slave, env=environment, close_fds=True
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every writer of the terminal has closed it
                break
            if not chunk:
                break
            chunks.append(chunk)
        else:
            proc.kill()
            raise TimeoutError(f"{command} still running after {timeout}s")
        returncode = proc.wait(timeout)
    finally:
        os.close(master)
        with contextlib.suppress(ProcessLookupError):
            if proc.poll() is None:
                proc.kill()
    return TtyRun(returncode, b"".join(chunks))


class TtyProcess:
    """``musiquectl ARGS`` left running on a pty (``watch``, ``status --watch``); what it
    writes is collected as it comes."""

    def __init__(
        self,
        *args: str,
        socket_path: Path,
        columns: int = 200,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self._master, slave = _terminal(columns)
        environment = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        environment.update({"TERM": "xterm-256color", **(env or {})})
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "musiquectl"), "--socket", str(socket_path), *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=environment,
            close_fds=True,
        )
        os.close(slave)
        self._chunks: list[bytes] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self._master, 65536)
            except OSError:  # EIO once the process closed the terminal
                return
            if not chunk:
                return
            with self._lock:
                self._chunks.append(chunk)

    @property
    def output(self) -> bytes:
        with self._lock:
            return b"".join(self._chunks)

    def wait_for(self, text: str, timeout: float = 20.0) -> None:
        wanted = text.encode()
        deadline = time.monotonic() + timeout
        while wanted not in SGR.sub(b"", self.output):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{text!r} not shown; got {self.output!r}")
            time.sleep(0.05)

    def interrupt(self) -> int:
        """Ctrl-C, as a person ends it; returns the exit status."""
        self.proc.send_signal(signal.SIGINT)
        status = self.proc.wait(10)
        self._reader.join(5)
        return status

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self._reader.join(5)
        os.close(self._master)
