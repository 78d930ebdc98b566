"""A job's states and the moves between them: the one table the job runner follows.

::

    queued ──► running ──► done
                 │  ▲ ├──► failed      (an error; ``resume`` retries from the checkpoint)
                 │  │ └──► cancelled   (final)
                 ▼  │
               paused                  (``pause``, or no space left; ``resume`` continues)
    running ──► interrupted            (the daemon stopped while the job ran)
"""

from __future__ import annotations

from collections.abc import Mapping

from musiqued.errors import ConflictError
from musiqued.storage.jobs import JobState

REQUESTS: Mapping[str, tuple[JobState, frozenset[JobState]]] = {
    "pause": ("paused", frozenset({"queued", "running"})),
    "cancel": ("cancelled", frozenset({"queued", "running", "paused", "interrupted", "failed"})),
    "resume": ("queued", frozenset({"paused", "failed", "interrupted"})),
}
"""What a person may ask of a job: the state it moves to, from the states that allow it."""

RESUMED_AT_START: frozenset[JobState] = frozenset({"running", "queued", "interrupted"})
"""States a job is resumed from when the daemon starts (a crash left it running, a clean
stop interrupted it). A paused job stays paused: a person asked for that."""


def target_of(request: str, job_id: int, state: JobState) -> JobState:
    """The state ``request`` moves a job in ``state`` to; ConflictError if it may not."""
    target, allowed = REQUESTS[request]
    if state not in allowed:
        if request == "resume":
            raise ConflictError(
                f"job {job_id} is {state}; only a paused, failed or interrupted job can be resumed"
            )
        raise ConflictError(f"job {job_id} is {state}; it cannot be {target}")
    return target
