"""Outcomes that end ``musiquectl`` with a status other than 0, turned into messages in
``cli.main`` (the one place that maps them to exit codes)."""

from __future__ import annotations

from typing import Any


class JobUnsuccessful(Exception):
    """A job shown or followed ended failed, cancelled or interrupted: exit status 1, and
    ``line`` (the job's error) as the last line printed."""

    def __init__(self, job: dict[str, Any], line: str) -> None:
        super().__init__(line)
        self.job = job
        self.line = line


class ReaderGone(Exception):
    """stdout's reader left (``| head``); raised instead of the EPIPE OSError."""
