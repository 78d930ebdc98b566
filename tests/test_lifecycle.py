"""Daemon lifecycle: a graceful stop on SIGTERM or SIGINT (the real process), and a reload
with a good and a broken configuration (the whole daemon in the test's process: SIGHUP's
own path, RELOADING=1 then READY=1, is ``tests/test_notify.py``'s)."""

from __future__ import annotations

import json
import signal
import socket
import time
from pathlib import Path

import pytest

from musiqued import wire
from tests.fixtures.daemon import StartDaemon
from tests.fixtures.whole_daemon import daemon_in_thread
from tests.rawrpc import NOBODY, RawConnection, assert_serving, call_as, exchange, request
from tests.support import base_sections, write_config

BLOCK_S = 1.0
"""How long the request in flight holds the daemon's loop (test.block)."""


def test_a_stop_signal_answers_the_request_in_flight_and_drops_idle_clients(
    start_daemon: StartDaemon,
) -> None:
    """SIGTERM, and SIGINT on a second start, while a request is being worked on and idle
    clients and a subscriber are connected: that request is answered, the idle ones and
    the subscriber are disconnected at once (the stop takes less than 3 s more than the
    request does), the daemon exits 0, removes its socket and logs that it stopped."""
    daemon = start_daemon(hooks=True)
    for stops, signum in enumerate((signal.SIGTERM, signal.SIGINT), start=1):
        if stops > 1:
            daemon.start(hooks=True)
        idle = [RawConnection(daemon.socket_path) for _ in range(5)]
        subscriber = RawConnection(daemon.socket_path)
        subscriber.send(request("events.subscribe"))
        assert "result" in subscriber.read()
        # test.block holds the loop, so the signal arrives while the request is in flight.
        batch = [
            {"jsonrpc": "2.0", "method": "test.block", "params": {"seconds": BLOCK_S}, "id": 0},
            *({"jsonrpc": "2.0", "method": "rpc.describe", "id": i} for i in range(1, 60)),
        ]
        with RawConnection(daemon.socket_path, timeout=20) as conn:
            conn.send(json.dumps(batch).encode() + b"\n")
            daemon.wait_until(
                lambda stops=stops: daemon.logs().count("test.block started") == stops,
                interval=0.02,
            )
            conn.sock.settimeout(0)
            with pytest.raises(BlockingIOError):  # still working on it: nothing came back yet
                conn.sock.recv(1, socket.MSG_PEEK)
            conn.sock.settimeout(20)
            started = time.monotonic()
            daemon.signal(signum)
            answer = conn.read()
            assert conn.at_eof()
        assert len(answer) == 60
        assert all("result" in a for a in answer)
        assert daemon.proc is not None
        assert daemon.proc.wait(10) == 0
        assert time.monotonic() - started < BLOCK_S + 3
        for conn in [*idle, subscriber]:
            assert conn.at_eof()
            conn.close()
        assert not daemon.socket_path.exists()
        assert daemon.logs().count("musiqued stopped") == stops


def test_reload_applies_a_good_file_and_keeps_the_old_for_a_broken_one(workdir: Path) -> None:
    """A reload (what SIGHUP calls) re-reads the file: a uid added to allowed_uids is
    admitted without a restart, and the log names the sections that changed. With an
    invalid file the error is logged (file, key, reason) and the old configuration stays in
    force; ``daemon.reload`` answers an error saying the configuration was not reloaded and
    why (data.kind "config_invalid"), and ``musiquectl reload`` exits 1 saying so (``-v``
    shows the kind). With the good file back, a reload changes nothing: the old one had
    been kept."""
    workdir.chmod(0o755)
    with daemon_in_thread(workdir, daemon={"socket_mode": "0666"}) as daemon:
        assert call_as(daemon.socket_path)["error"]["code"] == wire.FORBIDDEN
        sections = base_sections(workdir, daemon={"socket_mode": "0666", "allowed_uids": [NOBODY]})
        write_config(daemon.config_path, sections)
        daemon.request_reload()
        reloaded = daemon.wait_until(
            lambda: [r for r in daemon.log_records() if r["event"] == "configuration reloaded"]
        )
        assert reloaded[-1]["changed"] == ["daemon"]
        assert "result" in call_as(daemon.socket_path)

        good = daemon.config_path.read_text()
        daemon.config_path.write_text(good + "\n[tracker]\ninterval_seconds = 0\n")
        daemon.request_reload()
        failed = daemon.wait_until(
            lambda: [r for r in daemon.log_records() if r["event"].startswith("reload failed")]
        )
        assert failed[0]["level"] == "error"
        assert f"{daemon.config_path}: tracker.interval_seconds:" in failed[0]["error"]
        assert "result" in call_as(daemon.socket_path)  # allowed_uids still applies
        assert_serving(daemon.socket_path)

        answer = exchange(daemon.socket_path, request("daemon.reload", id="r"))
        error = answer["error"]
        assert answer["id"] == "r"
        assert error["code"] == wire.INTERNAL_ERROR
        assert error["data"]["kind"] == "config_invalid"
        assert "not reloaded" in error["message"]
        assert str(daemon.config_path) in error["message"]
        result = daemon.ctl("reload")
        assert result.returncode == 1
        assert result.stderr.startswith("musiquectl: configuration not reloaded, ")
        assert "[config_invalid]" in daemon.ctl("reload", "-v").stderr

        daemon.config_path.write_text(good)
        again = exchange(daemon.socket_path, request("daemon.reload"))
        assert again["result"] == {"status": "reloaded", "changed": []}
