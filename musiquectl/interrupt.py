"""Ctrl-C that ends a wait at once, whenever it comes.

Python raises KeyboardInterrupt between two steps of the program, not inside a system call
that has not begun yet: a Ctrl-C that lands after the last such step but before the process
blocks (waiting for the daemon's next line, or between two tries to reconnect) is acted on
only when that wait ends; for ``watch`` on a quiet daemon, never. Once ``install`` has run,
the signal also writes a byte to a pipe that every wait watches beside what it waits for:
the wait returns, and the KeyboardInterrupt is raised there.
"""

from __future__ import annotations

import math
import os
import select
import signal
import socket
import time


class _Wakeup:
    fd: int | None = None
    """The read end of the pipe the signal writes to, once ``install`` has run."""


_WAKEUP = _Wakeup()


def install() -> None:
    """Have Ctrl-C wake every wait (musiquectl's ``main``; only the main thread can). A
    client used elsewhere (another program's thread) waits without it, as before."""
    if _WAKEUP.fd is not None:
        return
    read, write = os.pipe()
    os.set_blocking(read, False)
    os.set_blocking(write, False)
    try:
        signal.set_wakeup_fd(write, warn_on_full_buffer=False)
    except ValueError:  # not the main thread
        os.close(read)
        os.close(write)
        return
    _WAKEUP.fd = read


def wait_readable(sock: socket.socket, timeout: float | None) -> bool:
    """True once ``sock`` has something to read (or was closed), False after ``timeout``
    seconds (None: as long as it takes); Ctrl-C ends the wait with KeyboardInterrupt."""
    return _wait(sock.fileno(), timeout)


def sleep(seconds: float) -> None:
    """``time.sleep``, ended at once by Ctrl-C."""
    if _WAKEUP.fd is None:
        time.sleep(seconds)
    else:
        _wait(None, seconds)


def _wait(fd: int | None, timeout: float | None) -> bool:
    deadline = None if timeout is None else time.monotonic() + timeout
    wakeup = _WAKEUP.fd
    poller = select.poll()
    if fd is not None:
        poller.register(fd, select.POLLIN)
    if wakeup is not None:
        poller.register(wakeup, select.POLLIN)
    while True:
        remaining_ms = (
            None if deadline is None else math.ceil(max(0.0, deadline - time.monotonic()) * 1000)
        )
        ready = {ready_fd for ready_fd, _ in poller.poll(remaining_ms)}
        if fd is not None and fd in ready:
            return True
        if wakeup is None or wakeup not in ready:
            return False
        # Woken by a signal: its handler (KeyboardInterrupt for Ctrl-C) runs at the latest
        # as this loop goes round; a signal whose handler returns lets the wait go on.
        os.read(wakeup, 256)
