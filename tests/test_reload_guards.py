"""A reload applies what it can and refuses what would break the running daemon: settings
bound at start wait for a restart, and Last.fm's credentials stay while a job needs them.

The whole daemon runs in the test's process (``tests/fixtures/whole_daemon.py``), with
``musiquectl`` as a process against its socket; SIGHUP's own path is the process's, in
``tests/test_lifecycle.py``: here the daemon's ``request_reload`` is what SIGHUP calls."""

from __future__ import annotations

from pathlib import Path

from musiqued import wire
from tests.fixtures.lastfm import SimulatedLastfm
from tests.fixtures.whole_daemon import daemon_in_thread
from tests.import_helpers import wait_job, wait_pages
from tests.support import base_sections, write_config


def test_settings_bound_at_start_wait_for_a_restart(workdir: Path) -> None:
    """A reload whose file names another database and socket applies the rest (a tracker
    setting) and says "needs a restart: daemon.database, daemon.socket"; the daemon keeps
    its database and socket."""
    with daemon_in_thread(workdir) as daemon:
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
    workdir: Path, lastfm_sim: SimulatedLastfm
) -> None:
    """The file emptied while an import runs: a reload by signal and ``musiquectl reload``
    are refused with the reason (no Last.fm credentials while import job N needs them), the
    previous configuration stays (same database, Last.fm configured); once the file is good
    again a reload applies it (a faster request rate), and the import ends done with every
    scrobble."""
    lastfm_sim.reset(size=3000, seed=4)
    # One request a second: the import is still running while every reload is refused.
    with daemon_in_thread(
        workdir, **lastfm_sim.sections(requests_per_second=1.0, max_in_flight=1)
    ) as daemon:
        job_id = daemon.call("import.start", {"all": True})["job_id"]
        wait_pages(daemon, job_id, 1)
        daemon.config_path.write_text("")

        daemon.request_reload()
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
        assert daemon.call("jobs.get", {"job_id": job_id})["state"] == "running"

        write_config(daemon.config_path, base_sections(workdir, **lastfm_sim.sections()))
        assert daemon.call("daemon.reload")["changed"] == ["lastfm"]
        job = wait_job(daemon, job_id)
        assert job["state"] == "done", job
        assert daemon.call("daemon.status")["listens"] == 3000
