"""Last.fm CSV exports as lastfm-to-csv (benfoxall) writes them: ``artist,album,title,date``.

No header line; ``date`` is ``"31 Jan 2021 20:15"`` in UTC, to the minute, with English
month abbreviations (whatever the reader's locale). Fields with a comma or a quote are
quoted as RFC 4180 says. A first line naming the columns (``artist,album,title,date``), as
some other tools write, is taken as a header, not an entry.
"""

from __future__ import annotations

import calendar
import csv
import datetime as dt
from collections.abc import Iterator
from typing import IO

from musiqued.interchange.entries import Entry, Play, Unreadable, checked, excerpt
from musiqued.interchange.streams import TOO_LONG, text_lines

MONTHS = {name.casefold(): number for number, name in enumerate(calendar.month_abbr) if name}
"""English month abbreviations ("jan" → 1), not the locale's."""
_HEADER = ("artist", "album", "title", "date")


def read(file: IO[bytes], name: str) -> Iterator[Entry]:
    """Each row of a Last.fm CSV; a line that is not UTF-8 ends it with ``BadFileError``."""
    numbered = text_lines(file, name)
    number = 0
    too_long = False

    def lines() -> Iterator[str]:
        nonlocal number, too_long
        for at, line in numbered:
            number, too_long = at, line is None
            yield line or ""

    for row in csv.reader(lines()):
        where = f"line {number}"
        if too_long:
            yield Unreadable(where, TOO_LONG)
            continue
        if not row:
            continue
        if number == 1 and tuple(field.strip().casefold() for field in row) == _HEADER:
            continue
        if len(row) != 4:
            yield Unreadable(where, f"{len(row)} fields, not artist,album,title,date")
            continue
        artist, album, title, date = row
        timestamp = parse_date(date)
        if timestamp is None:
            yield Unreadable(where, f"date {excerpt(date)} is not like '31 Jan 2021 20:15'")
            continue
        yield checked(
            Play(timestamp=timestamp, artist=artist, title=title, origin="lastfm-csv", album=album),
            where,
        )


def parse_date(text: str) -> int | None:
    """``"31 Jan 2021 20:15"`` (UTC) as Unix seconds, else None."""
    parts = text.split()
    if len(parts) != 4:
        return None
    day, month_name, year, clock = parts
    month = MONTHS.get(month_name.casefold())
    hour, colon, minute = clock.partition(":")
    if not (month and colon and day.isdecimal() and year.isdecimal() and hour.isdecimal()):
        return None
    if not minute.isdecimal():
        return None
    try:
        moment = dt.datetime(int(year), month, int(day), int(hour), int(minute), tzinfo=dt.UTC)
    except ValueError:
        return None
    return int(moment.timestamp())
