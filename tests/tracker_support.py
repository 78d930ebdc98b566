"""Helpers for the tracker tests: what the database holds, a daemon with the simulator."""

from __future__ import annotations

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


class Watch:
    """``musiquectl watch`` running in its own process; its lines are collected as they come."""

    def __init__(self, daemon: DaemonProcess, *args: str) -> None:
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "musiquectl"), "--socket", str(daemon.socket_path), *args, "watch"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if text in line:
                    return line
            time.sleep(0.05)
        raise TimeoutError(f"{text!r} not printed by watch; got {self.lines!r}")

    def interrupt(self) -> int:
        """Ctrl-C, as a user stops ``tail -f``; returns the exit status."""
        self.proc.send_signal(2)
        status = self.proc.wait(10)
        self._reader.join(5)
        return status

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self._reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
