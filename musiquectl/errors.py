"""Outcomes that end ``musiquectl`` with a status other than 0, turned into messages in
``cli.main`` (the one place that maps them to exit codes)."""

from __future__ import annotations

from typing import Any

EX_TEMPFAIL = 75
"""A job followed was paused by the daemon, not by a person (no space left): try later."""


class JobUnsuccessful(Exception):
    """A job shown or followed ended failed, cancelled or interrupted (exit status 1), or was
    paused by the daemon itself (``EX_TEMPFAIL``), with ``line`` (the job's error) as the last
    line printed."""

    def __init__(self, job: dict[str, Any], line: str, *, exit_code: int = 1) -> None:
        super().__init__(line)
        self.job = job
        self.line = line
        self.exit_code = exit_code


class ReaderGone(Exception):
    """stdout's reader left (``| head``); raised instead of the EPIPE OSError."""
