"""systemd glue: sd_notify messages, the watchdog cadence, and socket activation.

The notify protocol is a datagram of ``KEY=VALUE`` lines to ``$NOTIFY_SOCKET`` (a path, or an
abstract socket when it starts with ``@``); small enough to own rather than depend on.
"""

from __future__ import annotations

import os
import socket
import time

import structlog

log = structlog.get_logger("musiqued.systemd")

SD_LISTEN_FDS_START = 3


class Notifier:
    """Sends state changes to the service manager; does nothing when not under systemd."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        self._address = "\0" + address[1:] if address.startswith("@") else address
        self._socket: socket.socket | None = None
        self._last_status: str | None = None
        self._failing = False
        if self._address:
            # Non-blocking: a service manager that stops reading must not stall the loop
            # (a lost WATCHDOG=1 is what a stalled manager would get anyway).
            self._socket = socket.socket(
                socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK
            )
        self.watchdog_interval = _watchdog_interval(env)

    def notify(self, *lines: str) -> None:
        if self._socket is None:
            return
        try:
            self._socket.sendto("\n".join(lines).encode(), self._address)
        except OSError as exc:
            if not self._failing:
                self._failing = True
                log.warning("sd_notify failing", error=str(exc), notify_socket=self._address)
            return
        if self._failing:
            self._failing = False
            log.info("sd_notify working again")

    def ready(self, status: str) -> None:
        self._last_status = status
        self.notify("READY=1", f"STATUS={status}")

    def status(self, text: str) -> None:
        if text != self._last_status:
            self._last_status = text
            self.notify(f"STATUS={text}")

    def reloading(self) -> None:
        monotonic_usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.notify("RELOADING=1", f"MONOTONIC_USEC={monotonic_usec}", "STATUS=reloading")

    def stopping(self) -> None:
        self.notify("STOPPING=1", "STATUS=stopping")

    def watchdog(self) -> None:
        self.notify("WATCHDOG=1")

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def _watchdog_interval(env: os._Environ[str] | dict[str, str]) -> float | None:
    """Half of ``WATCHDOG_USEC`` when the watchdog is meant for this process, else None."""
    usec = env.get("WATCHDOG_USEC")
    if not usec:
        return None
    pid = env.get("WATCHDOG_PID")
    if pid and pid != str(os.getpid()):
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 1_000_000 / 2 if value > 0 else None


def listen_sockets(environ: dict[str, str] | None = None) -> list[socket.socket]:
    """Sockets passed by systemd (``LISTEN_FDS``), when meant for this process."""
    env = os.environ if environ is None else environ
    if env.get("LISTEN_PID") != str(os.getpid()):
        return []
    try:
        count = int(env.get("LISTEN_FDS", "0"))
    except ValueError:
        return []
    found = []
    for index in range(count):
        fd = SD_LISTEN_FDS_START + index
        try:
            os.set_inheritable(fd, False)
            found.append(socket.socket(fileno=fd))
        except OSError as exc:
            log.warning("ignoring a passed fd that is not a socket", fd=fd, error=str(exc))
    for key in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(key, None)
    return found


def unix_stream_socket(sockets: list[socket.socket]) -> socket.socket | None:
    for sock in sockets:
        if sock.family == socket.AF_UNIX and sock.type == socket.SOCK_STREAM:
            return sock
    return None
