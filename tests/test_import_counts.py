"""An import's counters add up: imported + refreshed + skipped + errors = what Last.fm served,
in the summary, ``jobs show`` and the original HTTP answer (issue 26, item 15)."""

from __future__ import annotations

import json
import re

from tests.fixtures.lastfm import SimulatedLastfm
from tests.fixtures.whole_daemon import StartWholeDaemon
from tests.import_helpers import run_import

COUNTS = ("tracks_imported", "tracks_refreshed", "tracks_skipped", "tracks_errors")


def summary_figures(text: str) -> dict[str, int]:
    """The followed import's closing summary as ``{label: number}``."""
    figures = {}
    for label in ("imported", "refreshed", "skipped", "errors"):
        found = re.search(rf"^\s+{label}:\s+([\d,]+)$", text, re.MULTILINE)
        assert found is not None, (label, text)
        figures[label] = int(found.group(1).replace(",", ""))
    return figures


def test_a_refresh_counts_as_refreshed_not_imported(
    start_in_thread: StartWholeDaemon, lastfm_sim: SimulatedLastfm
) -> None:
    """``musiquectl import --all --no-skip-existing`` over 500 stored listens says
    "imported 0, refreshed 500" (it said "imported 500"), as ``jobs show`` does; the sum
    of the four counters is what Last.fm served."""
    lastfm_sim.reset(size=500, seed=2615)
    daemon = start_in_thread(**lastfm_sim.sections(), enrichment={"enabled": False})
    assert run_import(daemon, all=True)["tracks_imported"] == 500
    followed = daemon.ctl("import", "--all", "--no-skip-existing")
    assert followed.returncode == 0, followed.stderr
    figures = summary_figures(followed.stdout)
    assert figures == {"imported": 0, "refreshed": 500, "skipped": 0, "errors": 0}
    (job,) = daemon.call("jobs.list", {"limit": 1})
    shown = json.loads(daemon.ctl("--json", "jobs", "show", str(job["job_id"])).stdout)
    assert tuple(shown[c] for c in COUNTS) == (0, 500, 0, 0)
    text = daemon.ctl("jobs", "show", str(job["job_id"])).stdout
    assert re.search(r"^refreshed:\s+500$", text, re.MULTILINE), text


def test_bad_entries_show_as_errors_in_the_summary(
    start_in_thread: StartWholeDaemon, lastfm_sim: SimulatedLastfm
) -> None:
    """500 entries of which 50 are unusable (blank titles): the summary says imported 450,
    errors 50, and the counters add up to the 500 served."""
    lastfm_sim.reset(size=450, seed=2616)
    newest = lastfm_sim.newest()
    assert newest is not None
    lastfm_sim.add_rows(
        [{"timestamp": newest - 13 * i - 1, "artist": f"Band {i}", "title": " "} for i in range(50)]
    )
    daemon = start_in_thread(**lastfm_sim.sections(), enrichment={"enabled": False})
    followed = daemon.ctl("import", "500")
    assert followed.returncode == 0, followed.stderr
    figures = summary_figures(followed.stdout)
    assert figures == {"imported": 450, "refreshed": 0, "skipped": 0, "errors": 50}
