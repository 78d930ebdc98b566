"""A reload applies what it can and refuses what would break the running daemon: settings
bound at start wait for a restart, and Last.fm's credentials stay while a job needs them."""

from __future__ import annotations

import signal
from pathlib import Path

from musiqued import wire
from tests.fixtures.daemon import StartDaemon
from tests.fixtures.lastfm import SimulatedLastfm
from tests.support import base_sections, write_config


def test_settings_bound_at_start_wait_for_a_restart(
    start_daemon: StartDaemon, workdir: Path
) -> None:
    """A reload whose file names another database and socket applies the rest (a tracker
    setting) and says "needs a restart: daemon.database, daemon.socket"; the daemon keeps
    its database and socket."""
    daemon = start_daemon()
    sections = base_sections(workdir, tracker={"interval_seconds": 77})
    sections["daemon"].update(
        database=str(workdir / "other.db"), socket=str(workdir / "other.sock")
    )
    write_config(daemon.config_path, sections)
    shown = daemon.ctl("reload")
    assert shown.returncode == 0, shown.stderr
    assert "changed: tracker" in shown.stdout
    assert "needs a restart: daemon.database, daemon.socket" in shown.stdout
    status = daemon.call("daemon.status")
    assert status["database"] == str(workdir / "musique.db")
    assert status["socket"] == str(daemon.socket_path)
    assert not (workdir / "other.db").exists()
    warned = [r for r in daemon.log_records() if r.get("needs_restart")]
    assert warned[0]["needs_restart"] == ["daemon.database", "daemon.socket"]
    assert warned[0]["level"] == "warning"


def test_an_empty_file_during_an_import_is_refused(
    start_daemon: StartDaemon, lastfm_sim: SimulatedLastfm
) -> None:
    """The file emptied while an import runs: SIGHUP and ``musiquectl reload`` are refused
    with the reason (no Last.fm credentials while import job N needs them), the previous
    configuration stays (same database, Last.fm configured), and the import ends done with
    every scrobble."""
    lastfm_sim.reset(size=3000, seed=4)
    daemon = start_daemon(**lastfm_sim.sections(requests_per_second=2.0, max_in_flight=1))
    job_id = daemon.call("import.start", {"all": True})["job_id"]
    daemon.config_path.write_text("")

    daemon.signal(signal.SIGHUP)
    daemon.wait_until(
        lambda: any(
            r.get("event") == "reload refused; keeping the previous configuration"
            for r in daemon.log_records()
        )
    )
    shown = daemon.ctl("reload")
    assert shown.returncode == 1
    assert "not reloaded" in shown.stderr
    assert f"import job {job_id}" in shown.stderr
    assert "Last.fm credentials" in shown.stderr
    error = daemon.call_error("daemon.reload")
    assert error.code == wire.INTERNAL_ERROR

    status = daemon.call("daemon.status")
    assert status["configured"]["lastfm"] is True
    assert status["database"].endswith("musique.db")
    job = daemon.wait_until(
        lambda: (j := daemon.call("jobs.get", {"job_id": job_id}))["state"] != "running" and j,
        timeout=60,
    )
    assert job["state"] == "done", job
    assert daemon.call("daemon.status")["listens"] == 3000
