"""The records the Settings page shows for a job: those with its ``job_id``, bounded."""

from __future__ import annotations

import logging
from typing import Any

from musiqued.app.logs import JobLogs


def record(event: dict[str, Any], level: int = logging.INFO) -> logging.LogRecord:
    return logging.LogRecord("musiqued.jobs", level, __file__, 1, event, None, None)


def test_records_are_kept_per_job_and_bounded() -> None:
    """Only records with an integer job_id are kept; each job keeps its newest records, and
    only the jobs that logged last are kept."""
    logs = JobLogs(per_job=3, max_jobs=2)
    for n in range(5):
        logs.handle(record({"event": f"page {n}", "job_id": 1, "level": "info", "page": n}))
    logs.handle(record({"event": "no job"}))
    logs.handle(record("a plain message"))  # type: ignore[arg-type]
    assert [r["event"] for r in logs.records(1)] == ["page 2", "page 3", "page 4"]
    assert logs.records(1)[-1]["fields"] == {"page": 4}
    logs.handle(record({"event": "two", "job_id": 2}))
    logs.handle(record({"event": "three", "job_id": 3}))
    assert logs.records(1) == []
    assert [r["event"] for r in logs.records(3)] == ["three"]


def test_fields_become_json_values_and_exceptions_text() -> None:
    """Values that are not JSON become their text; a logged exception its type and message."""
    logs = JobLogs()
    error = ValueError("bad page")
    logs.handle(
        record(
            {"event": "failed", "job_id": 7, "path": object, "exc_info": error, "n": [1, (2,)]},
            logging.ERROR,
        )
    )
    (kept,) = logs.records(7)
    assert kept["level"] == "error"
    assert kept["fields"]["exception"] == "ValueError: bad page"
    assert kept["fields"]["path"] == "<class 'object'>"
    assert kept["fields"]["n"] == [1, [2]]
