"""Moments and durations as people and scripts write them: one parser for ``musiquectl``,
the RPC params and the HTTP API, so each accepts what the others do.

Standard library only: ``musiquectl`` imports this on its start-up path.

Moments (one wording for every error, wherever the moment was given):

- Unix seconds: an integer (``1714521600``), or ``@1714521600``. Exactly eight digits are
  an ISO 8601 basic date instead (``20261130`` is 30 November 2026, not a moment of 1970:
  Last.fm did not exist then, and ISO 8601 says so).
- ISO 8601: a date (``2026-11-30``, ``20261130``): its midnight in the user's zone; or a
  datetime (``2026-11-30T08:00``, ``…Z``, ``…+01:00``); a datetime without a zone means UTC.
- An age, that long before now: a number and a unit (``30s``, ``15m`` or ``15min``,
  ``12h``, ``7d``, ``2w``, ``1month`` (30 days), ``1y`` (365 days); the unit may be spelt
  out, plural, capitalised, and followed by ``ago``: ``2 weeks ago``); ``last week``,
  ``last month``, ``last year`` (one of that unit before now).
- ``now``; ``today`` and ``yesterday``: the start of that day in the user's zone.

The user's zone is the ``zone`` argument: ``musiquectl`` passes the machine's (``$TZ``
honoured), the daemon its ``[daemon] timezone`` or the call's ``tz``.

Durations (``--interval``, ``interval_seconds``): seconds, fractions allowed (``2.5``), or a
number and a unit as above (``90s``, ``1.5m``, ``1h``).
"""

from __future__ import annotations

import datetime as dt
import math
import re

from musiqued import zones

EARLIEST = -62135510400
"""0001-01-02T00:00:00Z; LATEST is 9999-12-31T00:00:00Z. Unix seconds outside them are
refused: no history reaches that far, and a day inside the years 1..9999 is what any time
zone can still show as a date."""
LATEST = 253402214400
DAY = 86400
UNITS = {"s": 1, "m": 60, "h": 3600, "d": DAY, "w": 7 * DAY, "month": 30 * DAY, "y": 365 * DAY}
SPELLINGS = {
    "s": ("s", "sec", "secs", "second", "seconds"),
    "m": ("m", "min", "mins", "minute", "minutes"),
    "h": ("h", "hr", "hrs", "hour", "hours"),
    "d": ("d", "day", "days"),
    "w": ("w", "wk", "wks", "week", "weeks"),
    "month": ("mo", "mon", "month", "months"),
    "y": ("y", "yr", "yrs", "year", "years"),
}
"""Each unit and the ways it may be written (lower case; input is compared lower-cased)."""
_UNIT_OF = {spelling: unit for unit, names in SPELLINGS.items() for spelling in names}
UNIT_HELP = "units s, m (minutes), h, d, w, month (30 days), y (365 days)"
FORMS = (
    "Unix seconds, an ISO 8601 date (2024-05-01, 20240501: midnight in your time zone) or "
    f"datetime (2024-05-01T18:30, naive means UTC), an age like 30d or 2w ({UNIT_HELP}), 'last week', 'today', "
    "'yesterday' or 'now'"
)
DURATION_FORMS = f"seconds (2.5) or a number and a unit like 90s or 1m ({UNIT_HELP})"
_AMOUNT = re.compile(r"^(\d+(?:\.\d+)?)\s*([a-z]+)(?:\s+ago)?$", re.IGNORECASE | re.ASCII)
_LAST = re.compile(r"^last\s+([a-z]+)$", re.IGNORECASE | re.ASCII)
_BASIC_DATE_DIGITS = 8
_DATE_ONLY = re.compile(r"^\d{4}-?\d{2}-?\d{2}$", re.ASCII)


class MomentError(ValueError):
    """Not a moment (or not a duration); the message says what was given and which forms
    work."""


def parse_moment(text: str, now: float, zone: dt.tzinfo | None = None) -> int:
    """Unix seconds for ``text`` (ages count back from ``now``; days start at midnight in
    ``zone``, the machine's when None)."""
    seconds = _seconds(text, now, zone if zone is not None else zones.system_zone())
    if not EARLIEST <= seconds <= LATEST:
        raise MomentError(out_of_range(text))
    return seconds


def out_of_range(given: object) -> str:
    return f"{given!r} is out of range (Unix seconds from {EARLIEST} to {LATEST}: years 1 to 9999)"


def is_calendar(text: str) -> bool:
    """Whether ``text`` names a day (a date, ``today``, ``yesterday``): a moment that depends
    on the zone it is read in, so ``musiquectl`` hands it to the daemon as written."""
    value = text.strip()
    return bool(_DATE_ONLY.match(value)) or " ".join(value.lower().split()) in _WORDS


def parse_duration(text: str) -> float:
    """Seconds for ``text``: a plain number of seconds, or a number and a unit."""
    value = text.strip()
    try:
        seconds = float(value)
    except ValueError:
        amount = _AMOUNT.match(value)
        if amount is None:
            raise MomentError(f"{text!r} is not a duration: use {DURATION_FORMS}") from None
        seconds = float(amount.group(1)) * UNITS[_unit(amount.group(2), text)]
    if not math.isfinite(seconds) or abs(seconds) > LATEST:
        raise MomentError(f"{text!r} is out of range (at most {LATEST} seconds)")
    return seconds


def _unit(written: str, text: str) -> str:
    unit = _UNIT_OF.get(written.lower())
    if unit is None:
        raise MomentError(f"{text!r}: unknown unit {written!r}; {UNIT_HELP}")
    return unit


def _start_of_local_day(now: float, days_back: int, zone: dt.tzinfo) -> int:
    today = zones.local_date(int(now), zone)
    return zones.midnight(today - dt.timedelta(days=days_back), zone)


_WORDS = {"today": 0, "yesterday": 1}


def _seconds(text: str, now: float, zone: dt.tzinfo) -> int:
    value = text.strip()
    lowered = " ".join(value.lower().split())
    if value.startswith("@") and value[1:].isdecimal():
        return int(value[1:])
    if value.isdecimal() and len(value) != _BASIC_DATE_DIGITS:
        return int(value)
    if lowered == "now":
        return int(now)
    if lowered in _WORDS:
        return _start_of_local_day(now, _WORDS[lowered], zone)
    last = _LAST.match(lowered)
    if last is not None:
        return int(now) - UNITS[_unit(last.group(1), text)]
    amount = _AMOUNT.match(value)
    if amount is not None:
        return int(now - float(amount.group(1)) * UNITS[_unit(amount.group(2), text)])
    if _DATE_ONLY.match(value):
        try:
            return zones.midnight(dt.date.fromisoformat(value), zone)
        except (ValueError, OverflowError):
            raise MomentError(f"{text!r} is not a moment: use {FORMS}") from None
    try:
        moment = dt.datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise MomentError(f"{text!r} is not a moment: use {FORMS}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp())
