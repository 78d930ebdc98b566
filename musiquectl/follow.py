"""Following a job until it stops: the one follower of imports, verifies and ``jobs show``.

Event-driven: the connection subscribes to ``job`` events *before* the job is started or
read (``open_live``), so no progress is missed, and each event carries the job as committed.
Only a silence of ``SAFETY_S`` re-reads the job (an event a full queue dropped). A daemon
restart is waited for (``live.LiveConnection``) and the job read again: it resumes by itself.

A live line on a terminal (head, bar and details redrawn in place), a plain line at most once
a second otherwise, nothing with ``--json`` (the final job object is printed instead). Ctrl-C only
detaches: the job goes on in the daemon. A job that ends failed, cancelled or interrupted
raises ``JobUnsuccessful`` (exit status 1, its error as the last line); one the daemon paused
by itself (no space left) exits 75 with the reason, where a person's pause exits 0.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from musiquectl.client import Client
from musiquectl.errors import EX_TEMPFAIL, JobUnsuccessful
from musiquectl.jobs_view import (
    ACTIVE,
    UNSUCCESSFUL,
    outcome_line,
    paused_by_daemon,
    progress_line,
    progress_parts,
    render_summary,
)
from musiquectl.live import RECONNECTED, LiveConnection
from musiquectl.output import ProgressBar, echo, on_terminal, print_json, warn

SAFETY_S = 5.0
LINE_EVERY_S = 1.0


class _Display(Protocol):
    def update(self, job: dict[str, Any]) -> None: ...
    def close(self) -> None: ...


class _Lines:
    """Plain progress lines (not a terminal): the first, at most one a second, the last."""

    def __init__(self) -> None:
        self._last_at = 0.0
        self._last_state: str | None = None

    def update(self, job: dict[str, Any]) -> None:
        now = time.monotonic()
        if now - self._last_at >= LINE_EVERY_S or job["state"] != self._last_state:
            self._last_at = now
            self._last_state = job["state"]
            echo(progress_line(job))

    def close(self) -> None:
        pass


class _Bar:
    """The live bar on a terminal."""

    def __init__(self) -> None:
        self._bar = ProgressBar()

    def update(self, job: dict[str, Any]) -> None:
        head, parts = progress_parts(job, short=True)
        self._bar.show(head, parts, done=job.get("pages_done") or 0, total=job.get("pages_total"))

    def close(self) -> None:
        self._bar.close()


class _Quiet:
    def update(self, job: dict[str, Any]) -> None:
        pass

    def close(self) -> None:
        pass


def open_live(socket_path: Path) -> LiveConnection:
    """A connection subscribed to job events (open it before starting the job)."""
    return LiveConnection(socket_path, ("job",), notice=warn)


_STAGE = {"queued": 0, "running": 1}


def _progress(job: dict[str, Any]) -> tuple[int, int, bool]:
    return (
        _STAGE.get(job["state"], 2),
        job.get("pages_done") or 0,
        job.get("pages_total") is not None,
    )


def _fresher(event: dict[str, Any], job: dict[str, Any]) -> bool:
    """Whether an event tells more than the job as last read: events that were on their way
    while the job was being read are older than what the read returned."""
    return _progress(event) >= _progress(job)


def _watch(live: LiveConnection, job_id: int, display: _Display) -> dict[str, Any]:
    job: dict[str, Any] = live.call("jobs.get", {"job_id": job_id})
    display.update(job)
    while job["state"] in ACTIVE:
        item = live.next_event(SAFETY_S)
        if item is None or item is RECONNECTED:
            job = live.call("jobs.get", {"job_id": job_id})
        elif isinstance(item, dict) and item.get("topic") == "job":
            data = item.get("data") or {}
            if data.get("job_id") != job_id or not _fresher(data, job):
                continue
            job = {k: v for k, v in data.items() if k != "event"}
        else:
            continue
        display.update(job)
    # Read once more: events do not carry the albums enriched so far.
    final: dict[str, Any] = live.call("jobs.get", {"job_id": job_id})
    return final


def follow(live: LiveConnection, job_id: int, *, as_json: bool) -> None:
    """Follow job ``job_id`` to its end, print its summary (or JSON), and say how it went."""
    display: _Display = _Quiet() if as_json else _Bar() if on_terminal() else _Lines()
    try:
        job = _watch(live, job_id, display)
    except KeyboardInterrupt:
        display.close()
        warn(
            f"detached; job {job_id} goes on in the daemon. Follow it again with "
            f"`musiquectl jobs show {job_id}`"
        )
        return
    display.close()
    report(job, as_json=as_json)


def report(
    job: dict[str, Any],
    *,
    as_json: bool,
    render: Callable[[dict[str, Any]], None] = render_summary,
) -> None:
    """Print a job that stopped (or JSON); raise ``JobUnsuccessful`` if it did not succeed."""
    if as_json:
        print_json(job)
    else:
        render(job)
    if job["state"] in UNSUCCESSFUL:
        raise JobUnsuccessful(job, outcome_line(job))
    if paused_by_daemon(job):
        raise JobUnsuccessful(job, outcome_line(job), exit_code=EX_TEMPFAIL)


def start_and_follow(
    socket_path: Path, method: str, params: dict[str, Any], *, detach: bool, as_json: bool
) -> None:
    """Start a job with ``method`` (``import.start``, ``verify.start``) and follow it; with
    ``detach``, print its id and return once it is accepted."""
    kind = method.partition(".")[0]
    if detach:
        with Client(socket_path) as client:
            started = client.call(method, params)
        job_id = started["job_id"]
        if as_json:
            print_json(started)
        else:
            echo(f"{kind} job {job_id} started; follow it with `musiquectl jobs show {job_id}`")
        return
    with open_live(socket_path) as live:
        # Subscribed before the job exists: none of its events is missed. Not asked twice.
        job_id = int(live.call(method, params, again=False)["job_id"])
        if not as_json:
            echo(f"{kind} job {job_id} started (Ctrl-C detaches, the job goes on)")
        follow(live, job_id, as_json=as_json)
