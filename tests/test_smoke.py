"""The daemon starts, answers ``musiquectl status``, and stops cleanly on SIGTERM."""

from __future__ import annotations

import json

from tests.fixtures.daemon import StartDaemon


def test_status_round_trip(start_daemon: StartDaemon) -> None:
    """``musiquectl --json status`` prints the daemon's status object and exits 0."""
    daemon = start_daemon()
    result = daemon.ctl("--json", "status")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["socket"] == str(daemon.socket_path)
    assert status["listens"] == 0
    assert daemon.stop() == 0
    assert not daemon.socket_path.exists()
