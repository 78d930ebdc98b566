"""Ctrl-C ends musiquectl's following commands at once, whatever they wait for: the
daemon's answer, its next event, or its return after it went away; and whenever it comes,
even just before the wait begins."""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.browser import missing_tool
from tests.fixtures.whole_daemon import StartWholeDaemon
from tests.support import VENV_BIN
from tests.tracker_support import CtlProcess, Watch

GDB_HINT = (
    "the Ctrl-C timing test needs gdb: `apt-get install gdb` (Debian/Ubuntu; `make test` "
    "does it as root)"
)
BLOCKING_CALLS = (
    "recv",
    "recvfrom",
    "recvmsg",
    "poll",
    "ppoll",
    "select",
    "pselect",
    "epoll_wait",
    "clock_nanosleep",
)
"""The C library's calls a process blocks in while it waits for a socket or for time."""


@pytest.mark.parametrize("args", [("watch",), ("--json", "watch"), ("status", "--watch")])
def test_ctrl_c_ends_a_follower_while_the_daemon_does_not_answer(
    workdir: Path, args: tuple[str, ...]
) -> None:
    """The daemon took the connection and the request but does not answer (its loop is
    stuck): Ctrl-C ends the command at once with status 0, and it prints nothing."""
    path = workdir / "d.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path))
        server.listen()
        server.settimeout(15)
        proc = subprocess.Popen(
            [str(VENV_BIN / "musiquectl"), "--socket", str(path), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            conn, _ = server.accept()
            conn.settimeout(15)
            with conn, conn.makefile("rb") as requests:
                assert json.loads(requests.readline())["method"] == "events.subscribe"
                proc.send_signal(signal.SIGINT)
                out, err = proc.communicate(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 0, err
    assert (out, err) == ("", "")


def test_ctrl_c_ends_watch_while_it_waits_for_the_daemon_to_come_back(
    start_in_thread: StartWholeDaemon,
) -> None:
    """The daemon went away: ``watch`` says so and tries again and again to reach it;
    Ctrl-C then ends it at once with status 0, and nothing follows the notice."""
    daemon = start_in_thread()
    watch = Watch(daemon, stderr_too=True)
    try:
        daemon.stop()
        notice = watch.wait_for("lost musiqued")
        assert watch.interrupt() == 0
    finally:
        watch.close()
    assert notice.startswith(f"musiquectl: lost musiqued at {daemon.socket_path} (")
    assert notice.endswith("); waiting for it to come back")
    assert watch.lines == [notice]


def test_ctrl_c_just_before_watch_waits_again_ends_it(start_in_thread: StartWholeDaemon) -> None:
    """A Ctrl-C that lands after ``watch`` printed an event and before it blocks waiting
    for the next one (gdb holds it at the entry of that call, where the signal's handler
    runs) ends it at once with status 0, the event printed. (It used to wait for one more
    event first: for ever on a quiet daemon.)"""
    gdb = shutil.which("gdb")
    if gdb is None:
        missing_tool(GDB_HINT)
        raise AssertionError("unreachable")
    daemon = start_in_thread()
    before = daemon.subscribers()
    watch = CtlProcess(daemon, "--json", "watch", "--topic", "daemon")
    script = [
        "break write",  # the event's line, once the daemon sends one
        "echo ARMED\\n",
        "continue",
        "delete",
        *(f"break {call}" for call in BLOCKING_CALLS),
        "continue",  # to the wait for the next event
        "signal SIGINT",  # Ctrl-C, handled right there
        "detach",
    ]
    try:
        daemon.wait_until(lambda: daemon.subscribers() > before)
        with subprocess.Popen(
            [gdb, "-p", str(watch.proc.pid), "-batch", "-nx"]
            + [arg for command in script for arg in ("-ex", command)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        ) as debugger:
            try:
                said = _read_until(debugger, "ARMED\n")  # attached, the first breakpoint set
                assert daemon.ctl("reload").returncode == 0
                debugger.wait(60)  # its few lines fit in the pipe
                said += _read_until(debugger, "")
            finally:
                if debugger.poll() is None:
                    debugger.kill()
        status = watch.finish()
    finally:
        watch.close()
    stops = re.findall(r"^Breakpoint (\d+), ", said, re.MULTILINE)
    assert stops[:1] == ["1"], said  # the event's line
    assert stops[1:2] != ["1"], said  # then one of the blocking calls, and the signal
    assert "detached" in said, said
    assert status == 0
    assert [json.loads(line)["data"]["event"] for line in watch.lines] == ["reloaded"]


def _read_until(debugger: subprocess.Popen[str], end: str) -> str:
    """What gdb printed, up to a line that ends with ``end`` ("": up to its end)."""
    assert debugger.stdout is not None
    said = ""
    while line := debugger.stdout.readline():
        said += line
        if end and said.endswith(end):
            return said
    assert not end, said
    return said
