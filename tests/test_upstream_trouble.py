"""While Last.fm fails, a running job says what it is retrying through (``upstream_trouble``):
in jobs.get, the job events, musiquectl's progress line, `jobs show` and `status`, and the
systemd status line; once Last.fm answers again the trouble clears and the import ends exact.
The services are served in the test's process; musiquectl runs against their socket."""

from __future__ import annotations

from typing import Any

from tests.fixtures.lastfm import SimulatedLastfm
from tests.fixtures.threaded import ServeInThread
from tests.import_helpers import assert_exact


def test_a_running_job_shows_the_retry_in_progress(
    lastfm_sim: SimulatedLastfm, serve_in_thread: ServeInThread
) -> None:
    """Last.fm answering 503 to everything mid-import: the job stays running and its
    upstream_trouble reads "retrying: Last.fm answered HTTP 503 (attempt N, next in S s)";
    musiquectl shows it; a job event carried it; back up, the job ends done, exact, with the
    trouble gone."""
    lastfm_sim.reset(size=3000, seed=41)
    daemon = serve_in_thread(socket=True, **lastfm_sim.sections(max_in_flight=1))
    daemon.call("test.lastfm_retry", {"base_delay": 2.0, "max_delay": 2.0})
    with daemon.events("job") as events:
        lastfm_sim.set_faults(rate=1.0, kinds=["http503"])
        job_id = daemon.call("import.start", {"all": True})["job_id"]

        def troubled() -> dict[str, Any] | None:
            job: dict[str, Any] = daemon.call("jobs.get", {"job_id": job_id})
            return job if job.get("upstream_trouble") else None

        job = daemon.wait_until(troubled, timeout=30)
        assert job["state"] == "running"
        trouble = job["upstream_trouble"]
        assert trouble.startswith("retrying: Last.fm answered HTTP 503 (attempt ")
        assert ", next in " in trouble
        event = events.wait_for("job", lambda data: bool(data.get("upstream_trouble")))
        assert event["job_id"] == job_id

        shown = daemon.ctl("jobs", "show", str(job_id), "--no-follow")
        assert "Last.fm answered HTTP 503" in shown.stdout
        status = daemon.ctl("status")
        assert "Last.fm answered HTTP 503" in status.stdout
        assert "Last.fm answered HTTP 503" in daemon.call("daemon.status")["status"]

        lastfm_sim.set_faults(rate=0.0)
        done = daemon.wait_job(job_id)
    assert done["state"] == "done", done
    assert done["upstream_trouble"] is None
    assert_exact(daemon.workdir / "musique.db", lastfm_sim.scrobbles())
