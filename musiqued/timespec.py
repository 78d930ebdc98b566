"""Moments as people and scripts write them: one parser for ``musiquectl`` and the RPC params.

Standard library only: ``musiquectl`` imports this on its start-up path.

Accepted forms (one wording for every error, wherever the moment was given):

- Unix seconds: an integer (``1714521600``), or ``@1714521600``. Exactly eight digits are
  an ISO 8601 basic date instead (``20261130`` is 30 November 2026, not a moment of 1970:
  Last.fm did not exist then, and ISO 8601 says so).
- ISO 8601: a date (``2026-11-30``, ``20261130``) or a datetime (``2026-11-30T08:00``,
  ``…Z``, ``…+01:00``); without a zone it means UTC.
- An age: a number and a unit, that long before now: ``30s``, ``15m`` (minutes), ``12h``,
  ``7d``, ``2w``, ``1y`` (365 days); the unit is case-insensitive (``30D`` = ``30d``).
"""

from __future__ import annotations

import datetime as dt
import re

EARLIEST = -62135510400
"""0001-01-02T00:00:00Z; LATEST is 9999-12-31T00:00:00Z. Unix seconds outside them are
refused: no history reaches that far, and a day inside the years 1..9999 is what any time
zone can still show as a date."""
LATEST = 253402214400
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
FORMS = (
    "Unix seconds, an ISO 8601 date or datetime (2024-05-01, 20240501, 2024-05-01T18:30, "
    "naive means UTC), or an age like 30d (units s, m, h, d, w, y)"
)
_AGE = re.compile(r"^(\d+)\s*([a-z]+)$", re.IGNORECASE)
_BASIC_DATE_DIGITS = 8


class MomentError(ValueError):
    """Not a moment; the message says what was given and which forms work."""


def parse_moment(text: str, now: float) -> int:
    """Unix seconds for ``text`` (ages count back from ``now``)."""
    seconds = _seconds(text, now)
    if not EARLIEST <= seconds <= LATEST:
        raise MomentError(out_of_range(text))
    return seconds


def out_of_range(given: object) -> str:
    return f"{given!r} is out of range (Unix seconds from {EARLIEST} to {LATEST}: years 1 to 9999)"


def _seconds(text: str, now: float) -> int:
    value = text.strip()
    if value.startswith("@") and value[1:].isdecimal():
        return int(value[1:])
    if value.isdecimal() and len(value) != _BASIC_DATE_DIGITS:
        return int(value)
    age = _AGE.match(value)
    if age is not None:
        unit = age.group(2).lower()
        if unit not in UNITS:
            raise MomentError(
                f"{text!r}: unknown unit {age.group(2)!r}; units are s, m (minutes), h, d, w, "
                "y (365 days)"
            )
        return int(now) - int(age.group(1)) * UNITS[unit]
    try:
        moment = dt.datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise MomentError(f"{text!r} is not a moment: use {FORMS}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp())
