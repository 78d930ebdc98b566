"""Daemon lifecycle through signals and RPC: graceful stop, reload with a good and a broken
configuration."""

from __future__ import annotations

import json
import signal
import socket
import time
from pathlib import Path

import pytest

from musiqued import wire
from tests.fixtures.daemon import StartDaemon
from tests.rawrpc import NOBODY, RawConnection, assert_serving, call_as, exchange, request
from tests.support import base_sections, write_config


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_stop_signal_answers_in_flight_request(start_daemon: StartDaemon, signum: int) -> None:
    """SIGTERM or SIGINT while a request is being worked on: that request is answered, the
    daemon exits 0 within 10 s and removes its socket."""
    daemon = start_daemon(hooks=True)
    # test.block holds the loop, so the signal arrives while the request is in flight.
    batch = [
        {"jsonrpc": "2.0", "method": "test.block", "params": {"seconds": 1.0}, "id": 0},
        *({"jsonrpc": "2.0", "method": "rpc.describe", "id": i} for i in range(1, 60)),
    ]
    with RawConnection(daemon.socket_path, timeout=20) as conn:
        conn.send(json.dumps(batch).encode() + b"\n")
        daemon.wait_until(lambda: "test.block started" in daemon.logs(), interval=0.02)
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
    assert time.monotonic() - started < 10
    assert not daemon.socket_path.exists()
    assert "musiqued stopped" in daemon.logs()


def test_idle_clients_do_not_delay_stop(start_daemon: StartDaemon) -> None:
    """Connected but idle clients (and subscribers) are disconnected at once on SIGTERM."""
    daemon = start_daemon()
    idle = [RawConnection(daemon.socket_path) for _ in range(5)]
    subscriber = RawConnection(daemon.socket_path)
    subscriber.send(request("events.subscribe"))
    assert "result" in subscriber.read()
    started = time.monotonic()
    assert daemon.stop() == 0
    assert time.monotonic() - started < 3
    for conn in [*idle, subscriber]:
        assert conn.at_eof()
        conn.close()


def _rewrite(daemon_config: Path, workdir: Path, **sections: dict[str, object]) -> None:
    write_config(daemon_config, base_sections(workdir, **sections))


def test_sighup_applies_good_file(start_daemon: StartDaemon, workdir: Path) -> None:
    """SIGHUP re-reads the file: a uid added to allowed_uids is admitted without a restart."""
    workdir.chmod(0o755)
    daemon = start_daemon(daemon={"socket_mode": "0666"})
    assert call_as(daemon.socket_path)["error"]["code"] == wire.FORBIDDEN
    _rewrite(daemon.config_path, workdir, daemon={"socket_mode": "0666", "allowed_uids": [NOBODY]})
    daemon.signal(signal.SIGHUP)
    daemon.wait_until(lambda: "configuration reloaded" in daemon.logs())
    assert "result" in call_as(daemon.socket_path)
    reloaded = [r for r in daemon.log_records() if r.get("event") == "configuration reloaded"]
    assert reloaded[-1]["changed"] == ["daemon"]


def test_sighup_with_broken_file_keeps_old_config(start_daemon: StartDaemon, workdir: Path) -> None:
    """SIGHUP with an invalid file: the error is logged (file, key, reason) and the old
    configuration stays in force."""
    workdir.chmod(0o755)
    daemon = start_daemon(daemon={"socket_mode": "0666", "allowed_uids": [NOBODY]})
    text = daemon.config_path.read_text() + "\n[tracker]\ninterval_seconds = 0\n"
    daemon.config_path.write_text(text)
    daemon.signal(signal.SIGHUP)
    failed = daemon.wait_until(
        lambda: [r for r in daemon.log_records() if r.get("event", "").startswith("reload failed")]
    )
    assert failed[0]["level"] == "error"
    assert f"{daemon.config_path}: tracker.interval_seconds:" in failed[0]["error"]
    assert "result" in call_as(daemon.socket_path)  # allowed_uids still applies
    assert_serving(daemon.socket_path)


def test_reload_rpc_with_broken_file(start_daemon: StartDaemon, workdir: Path) -> None:
    """daemon.reload with an invalid file answers an error saying the configuration was not
    reloaded and why (data.kind "config_invalid"); the old configuration stays."""
    daemon = start_daemon(daemon={"idle_timeout_seconds": 77.0})
    daemon.config_path.write_text(daemon.config_path.read_text() + "\n[daemon]\nbogus = 1\n")
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
    daemon.config_path.write_text(
        daemon.config_path.read_text().replace("[daemon]\nbogus = 1\n", "")
    )
    good = exchange(daemon.socket_path, request("daemon.reload"))
    assert good["result"] == {"status": "reloaded", "changed": []}  # the old one was kept
