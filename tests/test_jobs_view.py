"""How a job reads in musiquectl: the fields only some jobs carry (``missing``,
``upstream_trouble``) and the two kinds' own terms. The daemon-side paths that fill them are
tested with the importer; here, what a person reads for each."""

from __future__ import annotations

from typing import Any

import pytest

from musiquectl.jobs_view import outcome_line, progress_line, render_job, render_summary

MOMENT = 1_790_000_000


def _import_job(**changes: Any) -> dict[str, Any]:
    job: dict[str, Any] = {
        "job_id": 7,
        "kind": "import",
        "state": "running",
        "params": {"limit": None, "all": True, "skip_existing": True, "since": MOMENT},
        "created_at": MOMENT,
        "started_at": MOMENT,
        "finished_at": None,
        "pages_done": 3,
        "pages_total": 8,
        "tracks_imported": 600,
        "tracks_skipped": 0,
        "tracks_errors": 0,
        "albums_enriched": 2,
        "total_albums_to_enrich": 9,
        "total_scrobbles": 1600,
        "rate_per_s": 150.0,
        "eta_s": 7.0,
        "missing": None,
        "upstream_trouble": None,
        "error": None,
        "error_reasons": [],
        "result": {},
        "window": {"from": MOMENT, "to": MOMENT + 3600},
        "active_s": 4.0,
    }
    job.update(changes)
    return job


MISSING = {
    "count": 12,
    "where": [
        {"page": 4, "missing": 12, "from": "2026-09-21T08:00:00Z", "to": "2026-09-21T09:00:00Z"}
    ],
}


def test_progress_line_names_missing_listens_and_upstream_trouble() -> None:
    """The progress line starts with the speed and the time left, and adds the listens
    missing and the retry in progress, when there are."""
    plain = progress_line(_import_job())
    assert plain == (
        "import job 7: running, 150 scrobbles/s, 7s left, page 3/8 (37%), 600 imported, "
        "0 skipped, 0 errors"
    )
    troubled = progress_line(
        _import_job(missing=MISSING, upstream_trouble="retrying page 5 in 8 s after HTTP 503")
    )
    assert troubled == (
        f"{plain}, 12 listens missing, Last.fm: retrying page 5 in 8 s after HTTP 503"
    )


def test_jobs_show_lists_where_listens_are_missing(capsys: pytest.CaptureFixture[str]) -> None:
    """``jobs show`` of an import with a gap says how many and where (in local time), and the
    retry in progress; its params leave out since/until (the window shows them)."""
    render_job(_import_job(missing=MISSING, upstream_trouble="retrying page 5"))
    out = capsys.readouterr().out
    assert "missing:          12 listens not stored\n" in out
    assert "upstream trouble: retrying page 5\n" in out
    assert "  page 4: 12 missing between " in out
    assert "params:           all=True skip_existing=True\n" in out
    assert str(MOMENT) not in out


def test_summary_and_last_line_of_a_failed_job(capsys: pytest.CaptureFixture[str]) -> None:
    """A failed import's summary shows its error; the last line names the job and the error."""
    job = _import_job(state="failed", error="the Last.fm API key is invalid", missing=MISSING)
    render_summary(job)
    out = capsys.readouterr().out
    assert out.startswith("Import job 7 FAILED\n")
    assert "  missing:          12 listens not stored\n" in out
    assert "  albums enriched:  2 of 9 so far; the rest goes on in the background" in out
    assert outcome_line(job) == "import job 7 failed: the Last.fm API key is invalid"
    assert (
        outcome_line({**job, "state": "cancelled", "error": None}) == "import job 7 was cancelled"
    )


def test_jobs_show_of_a_paused_job_says_how_to_resume_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``jobs show`` of a paused job ends with the command that resumes it."""
    render_job(_import_job(state="paused"))
    assert capsys.readouterr().out.endswith("paused; resume with `musiquectl jobs resume 7`\n")
