"""The user's time zone: days, weeks, months and years as the user lives them.

Standard library only (``musiquectl`` may import it). A zone is a ``zoneinfo.ZoneInfo``;
``segments`` cuts a span of UTC time into stretches of one constant UTC offset, so that a
query can turn UTC seconds into local days with plain arithmetic (``(t + offset) / 86400``)
and stay exact across DST changes.
"""

from __future__ import annotations

import datetime as dt
import os
import zoneinfo
from dataclasses import dataclass
from pathlib import Path

DAY = 86400
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
_LOCALTIME = Path("/etc/localtime")
_ZONEINFO_DIRS = ("zoneinfo/", "zoneinfo-posix/")


class ZoneError(ValueError):
    """Not an IANA time zone name; the message says which name."""


def zone_named(name: str) -> zoneinfo.ZoneInfo:
    """The IANA zone ``name`` (``Europe/Paris``, ``Asia/Kathmandu``, ``UTC``)."""
    if not name or name != name.strip() or name.startswith("/") or ".." in name:
        raise ZoneError(f"{name!r} is not an IANA time zone name such as 'Europe/Paris'")
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise ZoneError(f"{name!r} is not an IANA time zone name such as 'Europe/Paris'") from None


def system_zone() -> zoneinfo.ZoneInfo:
    """The machine's zone: ``$TZ`` when it names one, else ``/etc/localtime``, else UTC."""
    named = os.environ.get("TZ", "").removeprefix(":")
    if named:
        try:
            return zone_named(named)
        except ZoneError:
            pass
    try:
        target = str(_LOCALTIME.resolve())
    except OSError:
        target = ""
    for marker in _ZONEINFO_DIRS:
        if marker in target:
            try:
                return zone_named(target.split(marker, 1)[1])
            except ZoneError:
                break
    try:
        with _LOCALTIME.open("rb") as handle:
            return zoneinfo.ZoneInfo.from_file(handle, key="localtime")
    except (OSError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def zone_name(zone: dt.tzinfo) -> str:
    return str(getattr(zone, "key", None) or zone)


def midnight(day: dt.date, zone: dt.tzinfo) -> int:
    """Unix seconds of the first moment of ``day`` in ``zone`` (a day that starts with a DST
    gap starts at the end of the gap)."""
    wall = dt.datetime.combine(day, dt.time(), tzinfo=zone)
    moment = int(wall.timestamp())
    # In a gap, ``timestamp`` maps the missing wall time forward or back by the jump; the
    # day starts at the first real local moment of that date.
    if local_date(moment, zone) < day:
        moment = int(wall.replace(fold=1).timestamp())
    return moment


def local_date(moment: int, zone: dt.tzinfo) -> dt.date:
    return dt.datetime.fromtimestamp(moment, zone).date()


def day_of(number: int) -> dt.date:
    """The date of local day ``number`` (days since 1970-01-01)."""
    return dt.date.fromordinal(_EPOCH_ORDINAL + number)


@dataclass(frozen=True, slots=True)
class Segment:
    """``[low, high)`` in UTC seconds, all at UTC offset ``offset`` seconds."""

    low: int
    high: int
    offset: int


def _offset(moment: int, zone: dt.tzinfo) -> int:
    delta = dt.datetime.fromtimestamp(moment, zone).utcoffset()
    return int(delta.total_seconds()) if delta is not None else 0


def segments(low: int, high: int, zone: dt.tzinfo) -> list[Segment]:
    """``[low, high)`` cut where ``zone``'s UTC offset changes.

    Zones change offset at most a few times a year, never twice within a day: the offset is
    sampled once a day and each change found to the second by bisection."""
    if high <= low:
        return []
    found: list[Segment] = []
    start, offset = low, _offset(low, zone)
    probe = low
    while (step := min(probe + DAY, high - 1)) > probe:
        if _offset(step, zone) == offset:
            probe = step
            continue
        before, after = probe, step  # the offset changes in (before, after]
        while after - before > 1:
            middle = (before + after) // 2
            if _offset(middle, zone) == offset:
                before = middle
            else:
                after = middle
        found.append(Segment(start, after, offset))
        start, offset, probe = after, _offset(after, zone), after
    found.append(Segment(start, high, offset))
    return found
