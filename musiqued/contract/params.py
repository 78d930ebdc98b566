"""The library methods' params, shared by the RPC methods and the HTTP API so both accept
and refuse the same things.

A moment is Unix seconds or a string ``timespec.parse_moment`` reads; a day written without
a time is midnight in the call's zone: its ``tz`` when given, else the daemon's (the
validation context's ``zone``).
"""

from __future__ import annotations

import datetime as dt
import math
import time
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from musiqued import wire, zones
from musiqued.storage.history import Cursor
from musiqued.timespec import TIMESTAMP_RANGE, parse_moment

MAX_TIMELINE_DAYS = 40_000
"""How long a timeline by day may be (a century); larger buckets for longer ones."""
MAX_TIMELINE_SPAN = 400 * 366 * 86400
"""How long any timeline may be."""
CALENDAR_END = 253_370_764_800
"""9999-01-01 UTC: every moment before it has a date in every zone."""


class LibraryParams(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _zone_of(info: ValidationInfo) -> dt.tzinfo | None:
    tz = info.data.get("tz")
    if isinstance(tz, str) and tz:
        return zones.zone_named(tz)
    context = info.context
    zone = context.get("zone") if isinstance(context, dict) else None
    return zone if isinstance(zone, dt.tzinfo) else None


def _to_moment(value: Any, info: ValidationInfo) -> Any:
    if isinstance(value, str):
        return parse_moment(value, time.time(), _zone_of(info))
    if isinstance(value, float) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ValueError("must be a finite number of Unix seconds")
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > TIMESTAMP_RANGE:
        raise ValueError(f"{value} is out of range (at most {TIMESTAMP_RANGE} seconds)")
    return value


Moment = Annotated[int, BeforeValidator(_to_moment)]


def _zone_name(value: str | None) -> str | None:
    if value is not None:
        zones.zone_named(value)
    return value


class _Zoned(LibraryParams):
    # Declared first: the moments after it are read in this zone.
    tz: str | None = None

    @field_validator("tz")
    @classmethod
    def _iana(cls, value: str | None) -> str | None:
        return _zone_name(value)


class _Period(_Zoned):
    since: Moment | None = None
    until: Moment | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.since is not None and self.until is not None and self.until < self.since:
            raise ValueError("until must not be before since")
        return self


class TopParams(_Period):
    kind: Literal["artists", "albums", "tracks"]
    limit: int = Field(default=10, ge=1, le=wire.MAX_TOP)


class TimelineParams(_Zoned):
    since: Moment
    until: Moment
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
    cursor: str | None = None

    @field_validator("q")
    @classmethod
    def _searchable(cls, value: str | None) -> str | None:
        if value is not None and value.strip() and not any(c.isalnum() for c in value):
            raise ValueError(f"{value!r} holds no letter or digit to search for")
        return value

    @field_validator("cursor")
    @classmethod
    def _cursor(cls, value: str | None) -> str | None:
        if value is not None:
            Cursor.decode(value)
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
