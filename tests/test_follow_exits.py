"""A followed job that the daemon paused by itself (no space left) is not a success: the
follower exits 75 with the reason (issue 26, item 14)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.fixtures.lastfm import SimulatedLastfm
from tests.fixtures.whole_daemon import whole_daemons
from tests.import_helpers import wait_pages
from tests.support import VENV_BIN
from tests.test_storage_faults import disk_full, small_filesystem

EX_TEMPFAIL = 75


def test_a_pause_nobody_asked_for_exits_75_with_the_reason(
    lastfm_sim: SimulatedLastfm, workdir: Path
) -> None:
    """The disk fills up while ``musiquectl import --all`` follows the job: the daemon
    pauses it, and the command exits 75 (it exited 0) with the reason as its last line."""
    lastfm_sim.reset(size=4000, seed=2614)
    with small_filesystem() as mount, whole_daemons(workdir) as start:
        daemon = start(
            daemon={"database": str(mount / "musique.db")},
            **lastfm_sim.sections(requests_per_second=10.0, max_in_flight=2),
            enrichment={"enabled": False},
        )
        follower = subprocess.Popen(
            [VENV_BIN / "musiquectl", "--socket", daemon.socket_path, "import", "--all"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            daemon.wait_until(lambda: daemon.call("jobs.list", {"limit": 1}))
            (job,) = daemon.call("jobs.list", {"limit": 1})
            wait_pages(daemon, job["job_id"], 2)
            with disk_full(mount):
                out, err = follower.communicate(timeout=60)
        finally:
            follower.kill()
            follower.wait()
    assert follower.returncode == EX_TEMPFAIL, (out, err)
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"musiquectl: import job {job['job_id']} was paused by the daemon: ")
    assert f"no space left on {mount}" in last
    assert f"Import job {job['job_id']} paused" in out
