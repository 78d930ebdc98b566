"""The request parameters both front ends read: pydantic models, one per request, with the
value types they share (moments, durations) and the bounds of every number.

The RPC methods (``rpc/methods``) and the HTTP API (``http``) validate the same request
with the same model, so each accepts and refuses what the other does.
"""

from __future__ import annotations

import math
import time
from typing import Annotated, Any, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from musiqued import wire
from musiqued.config import DAY_S
from musiqued.timespec import EARLIEST, LATEST, out_of_range, parse_duration, parse_moment

MAX_LIMIT = 2**53
"""More scrobbles than anyone has: an import ``limit`` above it is refused."""
MAX_JOB_ID = 2**63 - 1


class Params(BaseModel):
    """Base of every params model: frozen, unknown keys refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class NoParams(Params):
    pass


def _to_timestamp(value: Any) -> Any:
    """A JSON number is Unix seconds; a string is read by ``timespec.parse_moment`` (ISO 8601,
    ``20261130`` as a date, an age like ``30d``), as ``musiquectl`` reads it; within range."""
    if value is None or isinstance(value, bool):
        return value
    seconds: int
    if isinstance(value, int):
        seconds = value
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("must be a finite number of Unix seconds")
        if not EARLIEST <= value <= LATEST:
            raise ValueError(out_of_range(value))
        seconds = int(value)
    elif isinstance(value, str):
        return parse_moment(value, time.time())  # refuses what is out of range itself
    else:
        return value
    if not EARLIEST <= seconds <= LATEST:
        raise ValueError(out_of_range(seconds))
    return seconds


Timestamp = Annotated[int, BeforeValidator(_to_timestamp)]


def not_in_future(since: int | None) -> None:
    """A job's window that starts after now cannot hold anything: refused, as ``musiquectl``
    refuses ``--since`` in the future."""
    if since is not None and since > time.time():
        raise ValueError(f"since {since} is in the future")


def _to_seconds(value: Any) -> Any:
    """A string is read by ``timespec.parse_duration`` (``2.5``, ``90s``, ``1m``), as
    ``musiquectl`` reads it; a number is seconds."""
    return parse_duration(value) if isinstance(value, str) else value


Seconds = Annotated[float, BeforeValidator(_to_seconds)]


class JobParams(Params):
    job_id: int = Field(ge=1, le=MAX_JOB_ID)


class JobListParams(Params):
    limit: int = Field(default=20, ge=1, le=1000)


class ImportParams(Params):
    limit: int | None = Field(default=None, ge=1, le=MAX_LIMIT)
    all: bool = False
    skip_existing: bool = True
    since: Timestamp | None = None
    until: Timestamp | None = None
    incremental: bool = False

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        if self.all and self.limit is not None:
            raise ValueError("give either limit or all, not both")
        not_in_future(self.since)
        if self.since is not None and self.until is not None and self.until <= self.since:
            raise ValueError("until must be after since")
        return self


class TrackerParams(Params):
    interval_seconds: Seconds | None = Field(default=None, ge=1, le=DAY_S)


class RecentParams(Params):
    limit: int = Field(default=20, ge=1, le=wire.MAX_LISTENS)


class AlbumsParams(Params):
    query: str | None = Field(default=None, max_length=wire.MAX_QUERY_CHARS)
    artist: str | None = Field(default=None, max_length=wire.MAX_QUERY_CHARS)
    limit: int = Field(default=50, ge=1, le=wire.MAX_ALBUMS)
