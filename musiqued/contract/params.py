"""The request parameters both front ends read: pydantic models, one per request, with the
value types they share (moments, durations) and the bounds of every number.

The RPC methods (``rpc/methods``) and the HTTP API (``http``) validate the same request
with the same model, so each accepts and refuses what the other does. A moment is Unix
seconds or a string ``timespec.parse_moment`` reads; a day written without a time is
midnight in the call's zone: its ``tz`` when the model has one, else the daemon's (the
validation context's ``zone``).
"""

from __future__ import annotations

import datetime as dt
import math
import time
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from musiqued import wire, zones
from musiqued.config import DAY_S
from musiqued.services.file_batches import known_zone
from musiqued.storage.history import Cursor
from musiqued.timespec import EARLIEST, LATEST, out_of_range, parse_duration, parse_moment

MAX_LIMIT = 2**53
"""More scrobbles than anyone has: an import ``limit`` above it is refused."""
MAX_JOB_ID = 2**63 - 1


class Params(BaseModel):
    """Base of every params model: frozen, unknown keys refused."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class NoParams(Params):
    pass


def _zone_of(info: ValidationInfo) -> dt.tzinfo | None:
    tz = info.data.get("tz")
    if isinstance(tz, str) and tz:
        return zones.zone_named(tz)
    context = info.context
    zone = context.get("zone") if isinstance(context, dict) else None
    return zone if isinstance(zone, dt.tzinfo) else None


def _to_timestamp(value: Any, info: ValidationInfo) -> Any:
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
        # refuses what is out of range itself
        return parse_moment(value, time.time(), _zone_of(info))
    else:
        return value
    if not EARLIEST <= seconds <= LATEST:
        raise ValueError(out_of_range(seconds))
    return seconds


Timestamp = Annotated[int, BeforeValidator(_to_timestamp)]


def check_job_window(since: int | None, until: int | None) -> None:
    """A job's window must hold something: it starts before now (``musiquectl`` refuses
    ``--since`` in the future too) and ends after it starts."""
    if since is not None and since > time.time():
        raise ValueError(f"since {since} is in the future")
    if since is not None and until is not None and until <= since:
        raise ValueError("until must be after since")


def _valid_cursor(value: str | None) -> str | None:
    if value is not None:
        Cursor.decode(value)
    return value


CursorText = Annotated[str | None, AfterValidator(_valid_cursor)]
"""An opaque paging cursor as a client sends it back."""


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
        check_job_window(self.since, self.until)
        return self


FileFormat = Literal["auto", "spotify", "listenbrainz", "maloja", "lastfm-csv", "scrobbler-log"]


class FileImportOptions(Params):
    """How files are imported, whichever way they arrive (``import.file``'s descriptors, the
    Settings page's upload)."""

    format: FileFormat = "auto"
    dry_run: bool = False
    zone: str | None = Field(default=None, max_length=100)
    """The caller's IANA time zone: that of a ``.scrobbler.log`` marked ``#TZ/UNKNOWN``."""

    @field_validator("zone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            known_zone(value)
        return value


class TrackerParams(Params):
    interval_seconds: Seconds | None = Field(default=None, ge=1, le=DAY_S)


class RecentParams(Params):
    limit: int = Field(default=20, ge=1, le=wire.MAX_LISTENS)


class AlbumsParams(Params):
    query: str | None = Field(default=None, max_length=wire.MAX_QUERY_CHARS)
    artist: str | None = Field(default=None, max_length=wire.MAX_QUERY_CHARS)
    limit: int = Field(default=50, ge=1, le=wire.MAX_ALBUMS)
    offset: int = Field(default=0, ge=0, le=2**31)
    """Albums to skip: a client that wants more than ``limit`` asks page after page."""


# -- the library ------------------------------------------------------------------------

MAX_TIMELINE_DAYS = 40_000
"""How long a timeline by day may be (a century); larger buckets for longer ones."""
MAX_TIMELINE_SPAN = 400 * 366 * 86400
"""How long any timeline may be."""
CALENDAR_END = 253_370_764_800
"""9999-01-01 UTC: every moment before it has a date in every zone."""


def _zone_name(value: str | None) -> str | None:
    if value is not None:
        zones.zone_named(value)
    return value


class _Zoned(Params):
    # Declared first: the moments after it are read in this zone.
    tz: str | None = None

    @field_validator("tz")
    @classmethod
    def _iana(cls, value: str | None) -> str | None:
        return _zone_name(value)


class _Period(_Zoned):
    since: Timestamp | None = None
    until: Timestamp | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.since is not None and self.until is not None and self.until < self.since:
            raise ValueError("until must not be before since")
        return self


class TopParams(_Period):
    kind: Literal["artists", "albums", "tracks"]
    limit: int = Field(default=10, ge=1, le=wire.MAX_TOP)


class TimelineParams(_Zoned):
    since: Timestamp
    until: Timestamp
    bucket: Literal["day", "week", "month", "year", "hour_of_week"]

    @model_validator(mode="after")
    def _bounded(self) -> Self:
        if self.until < self.since:
            raise ValueError("until must not be before since")
        if self.since < 0 or self.until > CALENDAR_END:
            raise ValueError("a timeline lies between 1970 and 9999")
        if self.until - self.since > MAX_TIMELINE_SPAN:
            raise ValueError("a timeline covers at most 400 years")
        if self.bucket == "day" and self.until - self.since > MAX_TIMELINE_DAYS * zones.DAY:
            raise ValueError(
                f"a timeline by day covers at most {MAX_TIMELINE_DAYS} days: choose a larger bucket"
            )
        return self


class SearchParams(_Period):
    q: str | None = Field(default=None, max_length=500)
    limit: int = Field(default=50, ge=1, le=wire.MAX_LISTENS)
    cursor: CursorText = None

    @field_validator("q")
    @classmethod
    def _searchable(cls, value: str | None) -> str | None:
        if value is not None and value.strip() and not any(c.isalnum() for c in value):
            raise ValueError(f"{value!r} holds no letter or digit to search for")
        return value


_NAME = Field(default=None, min_length=1, max_length=1000)


class AlbumParams(_Zoned):
    """An album by ``id``, or by ``artist`` and ``title`` (as stored, any case)."""

    id: int | None = Field(default=None, ge=1, lt=2**63)
    artist: str | None = _NAME
    title: str | None = _NAME

    @model_validator(mode="after")
    def _one_way(self) -> Self:
        if (self.id is None) == (self.artist is None or self.title is None):
            raise ValueError("give either id, or artist and title")
        return self


class ArtistParams(_Zoned):
    """An artist by ``id``, or by ``name`` (as stored, any case)."""

    id: int | None = Field(default=None, ge=1, lt=2**63)
    name: str | None = _NAME

    @model_validator(mode="after")
    def _one_way(self) -> Self:
        if (self.id is None) == (self.name is None):
            raise ValueError("give either id or name")
        return self


class YearParams(_Zoned):
    year: int = Field(ge=1970, le=9998)


class OnThisDayParams(_Zoned):
    date: dt.date | None = None
