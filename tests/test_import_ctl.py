"""``musiquectl import`` and ``musiquectl jobs`` as a user runs them (not on a terminal)."""

from __future__ import annotations

import json
import re

from tests.fixtures.lastfm import SimulatedLastfm
from tests.fixtures.whole_daemon import StartWholeDaemon
from tests.import_helpers import assert_exact, wait_job


def test_import_prints_progress_lines_and_summary(
    lastfm_sim: SimulatedLastfm, start_in_thread: StartWholeDaemon
) -> None:
    """Piped, `musiquectl import` prints plain progress lines, then the original script's
    figures (duration, imported, skipped, errors, albums, total scrobbles)."""
    lastfm_sim.reset(size=1500, seed=41)
    daemon = start_in_thread(**lastfm_sim.sections(requests_per_second=8.0))
    result = daemon.ctl("import", "--all")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "import job 1 started (Ctrl-C detaches, the job goes on)"
    assert any(
        re.match(r"import job 1: running, \d+ scrobbles/s, \S+ left, page \d+/", line)
        for line in lines
    ), lines
    assert "Import job 1 finished" in lines
    summary = {
        key.strip(): value.strip()
        for key, _, value in (
            line.partition(":") for line in lines[lines.index("Import job 1 finished") + 1 :]
        )
    }
    assert summary["imported"] == "1,500"
    assert summary["skipped"] == "0"
    assert summary["errors"] == "0"
    assert summary["total scrobbles"] == "1,500"
    assert int(summary["albums to enrich"]) > 0
    assert "duration" in summary
    queued = int(summary["albums to enrich"])
    enriched = summary["albums enriched"]  # the figure when printed, never a bare 0
    assert enriched == f"{queued} of {queued}" or re.fullmatch(
        rf"\d+ of {queued} so far; the rest goes on in the background "
        r"\(`musiquectl enrich status`\)",
        enriched,
    ), enriched
    assert "\x1b[" not in result.stdout  # no terminal escapes when piped
    assert_exact(daemon.workdir / "musique.db", lastfm_sim.scrobbles())


def test_import_json_detach_and_jobs(
    lastfm_sim: SimulatedLastfm, start_in_thread: StartWholeDaemon
) -> None:
    """`--json import` prints only the final job object; `--detach` returns the id at once;
    `jobs`, `jobs show`, `jobs pause|resume|cancel` steer jobs."""
    lastfm_sim.reset(size=2000, seed=42)
    # 40 pages at 10 requests/s: the detached job runs long enough to be paused.
    daemon = start_in_thread(**lastfm_sim.sections(requests_per_second=10.0, page_size=50))
    result = daemon.ctl("--json", "import", "300")
    assert result.returncode == 0, result.stderr
    job = json.loads(result.stdout)
    assert (job["state"], job["tracks_imported"], job["kind"]) == ("done", 300, "import")

    detached = daemon.ctl("--json", "import", "--all", "--detach")
    job_id = json.loads(detached.stdout)["job_id"]
    conflict = daemon.ctl("import", "10")
    assert conflict.returncode == 1
    assert conflict.stderr.startswith(f"musiquectl: job {job_id} (import) is running: ")
    assert "-32003" not in conflict.stderr  # the code is for -v and --json
    verbose = daemon.ctl("import", "10", "-v")
    assert verbose.stderr.startswith(f"musiquectl: error -32003 [conflict]: job {job_id} ")
    assert daemon.ctl("jobs", "pause", str(job_id)).stdout.strip() == f"job {job_id}: paused"
    listing = daemon.ctl("jobs").stdout.splitlines()
    assert listing[0].split("\t")[:5] == ["id", "kind", "state", "created", "progress"]
    assert listing[1].split("\t")[:3] == [str(job_id), "import", "paused"]
    assert daemon.ctl("jobs", "resume", str(job_id)).returncode == 0
    followed = daemon.ctl("jobs", "show", str(job_id))
    assert followed.returncode == 0, followed.stderr
    assert f"Import job {job_id} finished" in followed.stdout
    shown = json.loads(daemon.ctl("--json", "jobs", "show", str(job_id)).stdout)
    assert shown["tracks_imported"] == 1700
    assert shown["tracks_skipped"] == 300
    assert daemon.ctl("jobs", "cancel", str(job_id)).returncode == 1  # done: nothing to cancel
    wait_job(daemon, job_id)
    for command in (["import"], ["jobs"], ["jobs", "show"], ["jobs", "cancel"]):
        assert "Example" in daemon.ctl(*command, "--help").stdout
