"""Helpers the tests share: short socket paths, free ports, configs, the daemon as a process,
and its live events.

Waiting: a test waits for what it expects to happen, never for a fixed time. A started
daemon is waited for through READY=1 on a NOTIFY_SOCKET the test owns (``ReadyWatch``), as
systemd waits for it. Events the
daemon publishes (a job's progress and end, a scrobble recorded, a reload) are awaited with
``EventStream``/``wait_for_event``, subscribed before the action that causes them; states
without an event (rows in the database) with ``DaemonProcess.wait_until``. A sleep is only
for proving a negative (nothing happens within a short while), and says so.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from musiquectl.client import Client, DaemonError
from musiqued import wire
from tests.rawrpc import RawConnection, request

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    """A free TCP port on 127.0.0.1 for a listener the test starts next.

    Taken below the kernel's ephemeral range: a port the kernel hands out (a bind to port 0)
    can go to another test's outgoing connection before the listener binds it."""
    ephemeral_low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    while True:
        port = random.randrange(10_000, max(ephemeral_low, 20_000))
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port


@contextmanager
def short_tmp() -> Iterator[Path]:
    """A directory under /tmp: Unix socket paths must stay under 108 bytes."""
    with tempfile.TemporaryDirectory(prefix="mq-", dir="/tmp") as name:
        yield Path(name)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))


def write_config(path: Path, sections: Mapping[str, Mapping[str, Any]]) -> Path:
    lines = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in values.items())
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


HTTP_TOKEN = "test-http-token-0123456789"
"""The ``[http] token`` tests configure when the token itself is not what they check."""


def bearer(token: str = HTTP_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def base_sections(workdir: Path, **extra: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    sections: dict[str, dict[str, Any]] = {
        "daemon": {"socket": str(workdir / "d.sock"), "database": str(workdir / "musique.db")}
    }
    for name, values in extra.items():
        sections.setdefault(name, {}).update(values)
    return sections


def run_ctl(
    *args: str,
    socket_path: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """``musiquectl`` as a user runs it, in its own process."""
    command = [str(VENV_BIN / "musiquectl")]
    if socket_path is not None:
        command += ["--socket", str(socket_path)]
    command += list(args)
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


READY_TIMEOUT_S = 60.0
"""How long a daemon may take to say READY=1: generous, for a loaded machine (the wait ends
at READY=1, not at the timeout)."""

STARTED: list[DaemonProcess] = []
"""Every daemon process the current test started (``tests/fixtures/daemon.py`` counts them)."""

_ready_serial = itertools.count()


class ReadyWatch:
    """A NOTIFY_SOCKET owned by the test, as systemd would own it: a datagram socket whose
    messages a thread reads as they come (the kernel queues only a few), until the process
    it watches exits. ``wait`` returns at READY=1 or at that exit, whichever comes first."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.unlink(missing_ok=True)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(path))
        self._settled = threading.Event()
        self.ready = False

    def watch(self, pid: int) -> None:
        """Read messages until process ``pid`` exits (a pidfd tells the thread when)."""
        pidfd = os.pidfd_open(pid)
        threading.Thread(target=self._read, args=(pidfd,), daemon=True).start()

    def wait(self, timeout: float) -> bool:
        """True once READY=1 came; False if the process exited first or ``timeout`` passed."""
        self._settled.wait(timeout)
        return self.ready

    def _read(self, pidfd: int) -> None:
        try:
            while True:
                readable, _, _ = select.select([self._sock, pidfd], [], [])
                if self._sock in readable:
                    message = self._sock.recv(65536).decode(errors="replace")
                    if "READY=1" in message.splitlines():
                        self.ready = True
                        self._settled.set()
                elif pidfd in readable:
                    return
        finally:
            self._settled.set()
            os.close(pidfd)
            self._sock.close()
            self.path.unlink(missing_ok=True)


class DaemonProcess:
    """``musiqued`` started as a real process with a config file; logs go to a file."""

    def __init__(self, workdir: Path, config_path: Path, socket_path: Path) -> None:
        self.workdir = workdir
        self.config_path = config_path
        self.socket_path = socket_path
        self.log_path = workdir / "musiqued.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._ready: ReadyWatch | None = None

    def start(
        self,
        *,
        env: Mapping[str, str | None] | None = None,
        extra_args: tuple[str, ...] = (),
        wait: bool = True,
        timeout: float = READY_TIMEOUT_S,
        hooks: bool = False,
    ) -> DaemonProcess:
        """``hooks``: run ``tests.hooked_musiqued``, musiqued with the test-only RPC methods.
        ``wait``: return once the daemon said READY=1 (see ``wait_ready``)."""
        program = (
            [sys.executable, "-m", "tests.hooked_musiqued"]
            if hooks
            else [str(VENV_BIN / "musiqued")]
        )
        log = self.log_path.open("ab")
        try:
            self.launch(
                [
                    *program,
                    "--config",
                    str(self.config_path),
                    "--log-target",
                    "json",
                    "--log-level",
                    "debug",
                    *extra_args,
                ],
                env=env,
                stdout=log,
            )
        finally:
            log.close()
        if wait:
            self.wait_ready(timeout)
        return self

    def launch(
        self,
        command: Sequence[str],
        *,
        env: Mapping[str, str | None] | None = None,
        stdout: IO[bytes] | int,
        stderr: IO[bytes] | int = subprocess.STDOUT,
    ) -> subprocess.Popen[bytes]:
        """Start ``command`` (a musiqued) as this daemon's process. Unless ``env`` names a NOTIFY_SOCKET of the test's own, the daemon's
        NOTIFY_SOCKET is one this object owns, so that ``wait_ready`` hears READY=1. A
        variable ``env`` maps to None is left out of the daemon's environment."""
        merged = {**os.environ, **(env or {})}
        environ = {name: value for name, value in merged.items() if value is not None}
        self._ready = None
        if env is None or "NOTIFY_SOCKET" not in env:
            self._ready = ReadyWatch(self.workdir / f"ready-{next(_ready_serial)}.sock")
            environ["NOTIFY_SOCKET"] = str(self._ready.path)
        self.proc = subprocess.Popen(
            list(command), stdout=stdout, stderr=stderr, env=environ, cwd=ROOT
        )
        if self._ready is not None:
            self._ready.watch(self.proc.pid)
        STARTED.append(self)
        return self.proc

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Wait for READY=1 on the daemon's NOTIFY_SOCKET (the socket then serves), or for
        the process to exit (RuntimeError, with its log)."""
        assert self.proc is not None
        assert self._ready is not None, "the test owns NOTIFY_SOCKET: wait on its own listener"
        if self._ready.wait(timeout):
            return
        if self.proc.poll() is not None:
            raise RuntimeError(
                f"musiqued exited with {self.proc.returncode}:\n{self.logs()[-4000:]}"
            )
        raise TimeoutError(f"musiqued not ready after {timeout}s:\n{self.logs()[-4000:]}")

    def call(self, method: str, params: dict[str, Any] | list[Any] | None = None) -> Any:
        with Client(self.socket_path, timeout=30) as client:
            return client.call(method, params)

    def http_token(self) -> str:
        """The token the daemon made beside its database (no ``[http] token`` set)."""
        return (self.workdir / "http-token").read_text(encoding="utf-8").strip()

    def http_login_url(self) -> str:
        """A one-time link to the web page, as ``musiquectl web`` gets it."""
        url: str = self.call("http.login_url")["url"]
        return url

    def call_error(self, method: str, params: dict[str, Any] | None = None) -> DaemonError:
        try:
            self.call(method, params)
        except DaemonError as exc:
            return exc
        raise AssertionError(f"{method} succeeded; an error was expected")

    def ctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return run_ctl(*args, socket_path=self.socket_path, timeout=timeout)

    def events(self, *topics: str) -> EventStream:
        """A connection subscribed to ``topics`` (every topic if none): ``with`` it."""
        return EventStream(self.socket_path, topics)

    def subscribers(self) -> int:
        """How many event subscriptions the daemon serves (``musiquectl watch`` is one)."""
        count: int = self.call("daemon.status")["subscribers"]
        return count

    def logs(self) -> str:
        return (
            self.log_path.read_text(encoding="utf-8", errors="replace")
            if self.log_path.exists()
            else ""
        )

    def log_records(self) -> list[dict[str, Any]]:
        records = []
        for line in self.logs().splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return records

    def refused(self, status: int, timeout: float = 30.0) -> str:
        """Wait for a daemon that could not start to exit with ``status``; the one line it
        printed (``musiqued: …``), with no traceback anywhere."""
        assert self.proc is not None
        assert self.proc.wait(timeout) == status, self.logs()
        lines = [line for line in self.logs().splitlines() if line.startswith("musiqued: ")]
        assert len(lines) == 1, self.logs()
        assert "Traceback" not in self.logs()
        return lines[0]

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def stop(self, timeout: float = 12.0) -> int:
        """SIGTERM and wait; returns the exit status."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def wait_until(self, predicate: Any, timeout: float = 20.0, interval: float = 0.1) -> Any:
        """Poll ``predicate()`` until it returns something truthy."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            last = predicate()
            if last:
                return last
            time.sleep(interval)
        raise TimeoutError(
            f"condition not met in {timeout}s (last value {last!r})\n{self.logs()[-3000:]}"
        )


class SimulatorProcess:
    """``musique-sim KIND`` as its own process on a free port, as a real service would be."""

    def __init__(self, kind: str, *args: str, workdir: Path, log_name: str | None = None) -> None:
        self.port = free_port()
        self.log = (workdir / (log_name or f"sim-{kind}.log")).open("ab")
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "musique-sim"), kind, "--port", str(self.port), *args],
            stdout=self.log,
            stderr=self.log,
        )
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/admin/stats", timeout=2):  # noqa: S310
                    return
            except OSError:
                time.sleep(0.2)
        raise TimeoutError(f"the {kind} simulator did not start")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)
        self.log.close()


EventMatch = Callable[[dict[str, Any]], object]


class EventStream:
    """``event`` notifications on a connection of its own, subscribed to some topics.

    Subscribe first, then cause what you wait for: an event published before the
    subscription answered is not seen::

        with daemon.events("job") as events:
            job_id = daemon.call("import.start", {"all": True})["job_id"]
            events.wait_for("job", job_id=job_id, state="done")
    """

    def __init__(self, socket_path: Path, topics: Sequence[str] = ()) -> None:
        self._conn = RawConnection(socket_path)
        self.seen: list[dict[str, Any]] = []
        """Every event received so far, as sent (``topic``, ``at``, ``data``)."""
        self._early: list[dict[str, Any]] = []
        try:
            params = {"topics": list(topics)} if topics else None
            self._conn.send(request("events.subscribe", params, id="events"))
            while (answer := self._conn.read()).get("id") != "events":
                # The subscription pushes at once: an event may come before its answer.
                self._early.append(answer)
            assert "result" in answer, answer
        except BaseException:
            self._conn.close()
            raise

    def __enter__(self) -> EventStream:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._conn.close()

    def wait_for(
        self,
        topic: str | None = None,
        match: EventMatch | None = None,
        *,
        timeout: float = 20.0,
        **fields: Any,
    ) -> dict[str, Any]:
        """The ``data`` of the next event of ``topic`` whose fields equal ``fields`` and
        for which ``match(data)`` is true; AssertionError after ``timeout`` seconds or if
        the daemon goes away."""
        deadline = time.monotonic() + timeout
        while True:
            message = self._next(deadline)
            if message is None:
                break
            if message.get("method") != wire.EVENT_METHOD:
                continue
            event: dict[str, Any] = message["params"]
            self.seen.append(event)
            data: dict[str, Any] = event["data"]
            if topic is not None and event["topic"] != topic:
                continue
            if any(data.get(key) != value for key, value in fields.items()):
                continue
            if match is None or match(data):
                return data
        wanted = f"{topic or 'any'} event with {fields!r}" + (" and a match" if match else "")
        raise AssertionError(f"no {wanted} within {timeout} s; seen {self.seen[-20:]!r}")

    def _next(self, deadline: float) -> dict[str, Any] | None:
        """The next message from the daemon, or None once ``deadline`` has passed."""
        if self._early:
            return self._early.pop(0)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        self._conn.sock.settimeout(remaining)
        try:
            line = self._conn.read_line()
        except TimeoutError:
            return None
        if line is None:
            raise AssertionError(f"the daemon closed the event stream; seen {self.seen!r}")
        message: dict[str, Any] = json.loads(line)
        return message


def wait_for_event(
    socket_path: Path,
    topic: str,
    cause: Callable[[], object],
    match: EventMatch | None = None,
    *,
    timeout: float = 20.0,
    **fields: Any,
) -> dict[str, Any]:
    """Subscribe to ``topic``, call ``cause()``, and return the ``data`` of the first event
    it brings that carries ``fields`` and satisfies ``match``."""
    with EventStream(socket_path, [topic]) as events:
        cause()
        return events.wait_for(topic, match, timeout=timeout, **fields)
