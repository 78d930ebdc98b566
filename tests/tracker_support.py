"""Helpers for the tracker tests: what the database holds, a daemon with the simulator."""

from __future__ import annotations

import queue
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.fixtures.lastfm import SimulatedLastfm
from tests.support import VENV_BIN, DaemonProcess


def stored(database: Path) -> list[tuple[int, str, str, str]]:
    """Every stored listen as (timestamp, artist casefold, title casefold, source)."""
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT l.timestamp, a.name_key, t.title_key, l.source FROM listening_history l "
            "JOIN tracks t ON t.id = l.track_id JOIN artists a ON a.id = l.artist_id"
        ).fetchall()
    finally:
        conn.close()
    return [(int(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in rows]


def identities(database: Path) -> set[tuple[int, str, str]]:
    return {(ts, artist, title) for ts, artist, title, _ in stored(database)}


def lastfm_sections(sim: SimulatedLastfm, **lastfm: Any) -> dict[str, dict[str, Any]]:
    return sim.sections(**lastfm)


def caught_up(daemon: DaemonProcess, sim: SimulatedLastfm) -> Callable[[], bool]:
    database = daemon.workdir / "musique.db"
    return lambda: identities(database) == sim.expected()


def wait_polls(daemon: DaemonProcess, count: int = 1, timeout: float = 20.0) -> None:
    """Until ``count`` tracker polls that began after this call have ended.

    ``last_poll_at`` is when the latest poll began: once it has changed, a poll began after
    the call; each change after that means the poll before it has ended.
    """

    def last_poll() -> float | None:
        moment: float | None = daemon.call("tracker.status")["last_poll_at"]
        return moment

    seen = [last_poll()]

    def ended() -> bool:
        current = last_poll()
        if current != seen[-1]:
            seen.append(current)
        return len(seen) >= count + 2

    daemon.wait_until(ended, timeout=timeout, interval=0.05)


class CtlProcess:
    """A long-running ``musiquectl`` command in its own process; its lines (with
    ``stderr_too``, its stderr's among them) are collected as they come (``click.echo``
    flushes each one)."""

    def __init__(self, daemon: DaemonProcess, *args: str, stderr_too: bool = False) -> None:
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "musiquectl"), "--socket", str(daemon.socket_path), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if stderr_too else subprocess.DEVNULL,
            text=True,
        )
        self.lines: list[str] = []
        self._arrived: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._arrived.put(line.rstrip("\n"))
        self._arrived.put(None)

    def wait_for(self, text: str, timeout: float = 15.0) -> str:
        """The first line printed so far, or from now on, that contains ``text``."""
        for line in self.lines:
            if text in line:
                return line
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = self._arrived.get(timeout=remaining)
            except queue.Empty:
                break
            if line is None:
                raise AssertionError(f"musiquectl ended before printing {text!r}: {self.lines!r}")
            self.lines.append(line)
            if text in line:
                return line
        raise TimeoutError(f"{text!r} not printed by musiquectl; got {self.lines!r}")

    def interrupt(self) -> int:
        """Ctrl-C, as a user stops ``tail -f``; returns the exit status."""
        self.proc.send_signal(signal.SIGINT)
        return self.finish()

    def finish(self, timeout: float = 10.0) -> int:
        """The exit status, once it has ended; what it printed last joins ``lines``."""
        status = self.proc.wait(timeout)
        self._reader.join(5)
        while not self._arrived.empty():  # what it printed last, kept for the assertions
            line = self._arrived.get_nowait()
            if line is not None:
                self.lines.append(line)
        return status

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self._reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


class Watch(CtlProcess):
    """``musiquectl [OPTIONS] watch``, returned once it has subscribed (the daemon's
    subscriber count went up): every event published after that is printed."""

    def __init__(
        self,
        daemon: DaemonProcess,
        *options: str,
        timeout: float = 15.0,
        stderr_too: bool = False,
    ) -> None:
        before = daemon.subscribers()
        super().__init__(daemon, *options, "watch", stderr_too=stderr_too)
        try:
            daemon.wait_until(lambda: daemon.subscribers() > before, timeout=timeout)
        except BaseException:
            self.close()
            raise
