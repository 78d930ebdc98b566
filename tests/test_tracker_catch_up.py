"""A burst of scrobbles larger than the tracker's window takes one catch-up import, not one
every poll, and the tracker's state follows that job's end (issue 26, item 16). The services
run in the test's process."""

from __future__ import annotations

from tests.fixtures.lastfm import SimulatedLastfm
from tests.fixtures.threaded import ServeInThread, ThreadedDaemon, wait_tracker_polls
from tests.tracker_support import identities


def caught_up(daemon: ThreadedDaemon, sim: SimulatedLastfm) -> bool:
    return identities(daemon.workdir / "musique.db") == sim.expected()


def test_a_burst_takes_at_most_two_catch_up_jobs(
    serve_in_thread: ServeInThread, lastfm_sim: SimulatedLastfm
) -> None:
    """400 scrobbles arrive within a few minutes (8 pages of 50, more than the tracker's
    window of 3 pages holds): every one is stored, at most 2 catch-up imports ran (one
    started every poll, forever, each skipping everything), and once the job ended the
    tracker says it is not catching up, running or stopped."""
    lastfm_sim.reset(size=30, seed=2616)
    daemon = serve_in_thread(
        **lastfm_sim.sections(page_size=50),
        tracker={"interval_seconds": 1},
        enrichment={"enabled": False},
    )
    daemon.call("tracker.start")
    daemon.wait_until(lambda: caught_up(daemon, lastfm_sim))
    lastfm_sim.add_new_scrobbles(400, spacing=1)
    daemon.wait_until(lambda: caught_up(daemon, lastfm_sim), timeout=60)
    daemon.wait_until(lambda: daemon.call("tracker.status")["catching_up_job_id"] is None)
    wait_tracker_polls(daemon, 3)
    jobs = [j for j in daemon.call("jobs.list", {"limit": 100}) if j["kind"] == "import"]
    assert 1 <= len(jobs) <= 2, [(j["job_id"], j["tracks_imported"]) for j in jobs]
    assert all(j["state"] == "done" for j in jobs), jobs
    status = daemon.call("tracker.status")
    assert (status["running"], status["catching_up_job_id"]) == (True, None)
    daemon.call("tracker.stop")
    assert daemon.call("tracker.status")["catching_up_job_id"] is None
