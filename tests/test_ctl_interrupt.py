"""Ctrl-C ends musiquectl's following commands at once, whatever they wait for: the
daemon's answer, its next event, or its return after it went away."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.whole_daemon import StartWholeDaemon
from tests.support import VENV_BIN
from tests.tracker_support import Watch


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
