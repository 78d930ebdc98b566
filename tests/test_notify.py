"""sd_notify as systemd sees it: a datagram socket of the test's own as ``$NOTIFY_SOCKET``.

READY=1 once the socket serves, STATUS= lines that follow what the daemon does, WATCHDOG=1
every half ``WATCHDOG_USEC`` from the event loop (and none while the loop is stuck),
RELOADING=1 with MONOTONIC_USEC then READY=1 on SIGHUP, STOPPING=1 on SIGTERM.
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from musiqued.app.systemd import Notifier, _watchdog_interval
from tests.fixtures.whole_daemon import daemon_in_thread
from tests.support import DaemonProcess, base_sections, write_config


class NotifyListener:
    """Collects every datagram sent to it, with the monotonic time it arrived."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(path))
        self._sock.settimeout(0.1)
        self.messages: list[tuple[float, dict[str, str]]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self.on_ready: Any = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self._sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            if fields.get("READY") == "1" and self.on_ready is not None:
                self.on_ready()
            with self._lock:
                self.messages.append((time.monotonic(), fields))

    def snapshot(self) -> list[tuple[float, dict[str, str]]]:
        with self._lock:
            return list(self.messages)

    def wait_for(
        self, key: str, value: str | None = None, *, after: int = 0, timeout: float = 10.0
    ) -> int:
        """Index of the first message at or after ``after`` that carries ``key`` (= ``value``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for index, (_, fields) in enumerate(self.snapshot()[after:], start=after):
                if key in fields and (value is None or fields[key] == value):
                    return index
            time.sleep(0.02)
        raise AssertionError(f"no {key}={value} after message {after}: {self.snapshot()[after:]}")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()


@pytest.fixture
def notify(workdir: Path) -> Iterator[NotifyListener]:
    listener = NotifyListener(workdir / "notify.sock")
    yield listener
    listener.close()


@pytest.fixture
def notified_daemon(workdir: Path, notify: NotifyListener) -> Iterator[Any]:
    """``start(env=..., **sections)``: musiqued with NOTIFY_SOCKET pointing at ``notify``."""
    started: list[DaemonProcess] = []

    def start(env: dict[str, str] | None = None, **sections: Any) -> DaemonProcess:
        config = write_config(workdir / "musiqued.toml", base_sections(workdir, **sections))
        daemon = DaemonProcess(workdir, config, workdir / "d.sock")
        started.append(daemon)
        return daemon.start(
            env={"NOTIFY_SOCKET": str(notify.path), **(env or {})},
            wait=False,
            hooks=True,
        )

    yield start
    for daemon in started:
        daemon.stop()
        daemon.kill()


def test_what_systemd_sees_from_start_to_stop(
    notify: NotifyListener, notified_daemon: Any, workdir: Path
) -> None:
    """The real process, as systemd sees it. At start only STATUS= lines (opening the
    database), then READY=1 at a moment when a client already gets answers. SIGHUP:
    RELOADING=1 with the current CLOCK_MONOTONIC in MONOTONIC_USEC, then READY=1, also when
    the new file is invalid (the old configuration stays). SIGTERM: STOPPING=1."""
    answers: list[Any] = []
    daemon: DaemonProcess | None = None

    def probe() -> None:
        assert daemon is not None
        try:
            answers.append(daemon.call("daemon.status"))
        except Exception as exc:
            answers.append(exc)

    notify.on_ready = probe
    daemon = notified_daemon()
    ready = notify.wait_for("READY", "1")
    before = [fields for _, fields in notify.snapshot()[:ready]]
    assert {"STATUS": "opening database"} in before
    assert all("READY" not in fields for fields in before)
    assert isinstance(answers[0], dict), answers
    assert daemon.proc is not None
    assert answers[0]["pid"] == daemon.proc.pid
    assert notify.snapshot()[ready][1]["STATUS"] == answers[0]["status"]
    notify.on_ready = None

    before_usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    daemon.signal(signal.SIGHUP)
    reloading = notify.wait_for("RELOADING", "1", after=ready + 1)
    after_usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    usec = int(notify.snapshot()[reloading][1]["MONOTONIC_USEC"])
    assert before_usec <= usec <= after_usec
    ready_again = notify.wait_for("READY", "1", after=reloading + 1)

    daemon.config_path.write_text("[daemon]\nbogus = 1\n", encoding="utf-8")
    daemon.signal(signal.SIGHUP)
    reloading = notify.wait_for("RELOADING", "1", after=ready_again + 1)
    notify.wait_for("READY", "1", after=reloading + 1)
    assert daemon.call("daemon.status")["pid"] == daemon.proc.pid

    assert daemon.stop() == 0
    notify.wait_for("STOPPING", "1", after=reloading + 1, timeout=2)


def test_status_lines_follow_the_tracker(
    notify: NotifyListener, workdir: Path, lastfm_sim: Any
) -> None:
    """STATUS= says what the daemon does: idle at READY=1, tracking every N s while the
    tracker runs, idle once it stops. (The daemon runs in the test's process.)"""
    lastfm_sim.reset(size=20, seed=4)
    with daemon_in_thread(
        workdir, notify_environ={"NOTIFY_SOCKET": str(notify.path)}, **lastfm_sim.sections()
    ) as daemon:
        ready = notify.wait_for("READY", "1")
        assert notify.snapshot()[ready][1]["STATUS"] == "idle"
        daemon.call("tracker.start", {"interval_seconds": 30})
        tracking = notify.wait_for("STATUS", "tracking every 30 s", after=ready)
        daemon.call("tracker.stop")
        notify.wait_for("STATUS", "idle", after=tracking)


def watchdog_pings(notify: NotifyListener, start: int = 0) -> list[float]:
    """When each WATCHDOG=1 from message ``start`` on arrived."""
    return [at for at, fields in notify.snapshot()[start:] if fields.get("WATCHDOG") == "1"]


def test_watchdog_pings_at_half_the_interval_and_never_from_a_blocked_loop(
    notify: NotifyListener, workdir: Path
) -> None:
    """WATCHDOG_USEC=1 s: WATCHDOG=1 about every 0.5 s. The pings come from the event loop:
    while it is stuck (test.block), none is sent, so systemd would restart a hung daemon;
    they resume once it runs again. (The daemon runs in the test's process, its event loop
    on a thread of its own.)"""
    environ = {"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "1000000"}
    with daemon_in_thread(workdir, notify_environ=environ, hooks=True) as daemon:
        first = notify.wait_for("WATCHDOG", "1")
        daemon.wait_until(lambda: len(watchdog_pings(notify, first)) >= 5, timeout=30)
        gaps = [b - a for a, b in itertools.pairwise(watchdog_pings(notify, first)[:5])]
        assert max(gaps) < 0.9, gaps
        assert min(gaps) > 0.3, gaps

        started = time.monotonic()
        daemon.call("test.block", {"seconds": 1.5})
        ended = time.monotonic()
        resumed = notify.wait_for("WATCHDOG", "1", after=len(notify.snapshot()))
        during = [at for at in watchdog_pings(notify)[:resumed] if started + 0.3 < at < ended - 0.1]
        assert during == []
        assert ended - started >= 1.5


def test_watchdog_interval_honours_watchdog_pid() -> None:
    """WATCHDOG_USEC counts only when WATCHDOG_PID is unset, empty or ours; half of it."""
    mine = str(os.getpid())
    assert _watchdog_interval({"WATCHDOG_USEC": "4000000"}) == 2.0
    assert _watchdog_interval({"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": mine}) == 2.0
    assert _watchdog_interval({"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": "1"}) is None
    assert _watchdog_interval({"WATCHDOG_USEC": "0"}) is None
    assert _watchdog_interval({"WATCHDOG_USEC": "soon"}) is None
    assert _watchdog_interval({}) is None


def test_notifier_without_systemd_and_with_an_abstract_socket() -> None:
    """No NOTIFY_SOCKET: every call is a no-op. ``@name``: the abstract namespace."""
    silent = Notifier({})
    silent.ready("idle")
    silent.watchdog()

    name = f"musique-test-{os.getpid()}-{time.monotonic_ns()}"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind("\0" + name)
    receiver.settimeout(2)
    try:
        notifier = Notifier({"NOTIFY_SOCKET": "@" + name})
        notifier.ready("idle")
        assert receiver.recv(1024) == b"READY=1\nSTATUS=idle"
        notifier.status("idle")  # unchanged: not sent again
        notifier.status("importing job 3: 34%")
        assert receiver.recv(1024) == b"STATUS=importing job 3: 34%"
        notifier.close()
    finally:
        receiver.close()
