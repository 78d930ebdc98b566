"""Reading the running totals: listens per local day or hour of a zone, and listens per
artist, album or track in a period.

Periods are ``[low, high)`` in Unix seconds. A local day or hour lying whole inside a
stretch of one UTC offset (``zones.segments``) is a UTC day's or hour's total corrected by
a few finer totals (``_whole_units``); the rest comes from the totals per UTC quarter hour
(``quarter_totals``) wherever a whole quarter fits, and from the listens, so counts are
exact in every zone. A period's items are summed from their totals per UTC month, year and
year from July, the listens at its ends added or taken away (``period_pieces``).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from typing import Any, Literal

from musiqued import zones
from musiqued.storage.db import Database
from musiqued.storage.history import QUARTER

Kind = Literal["artists", "albums", "tracks"]
COLUMN: dict[Kind, str] = {"artists": "artist_id", "albums": "album_id", "tracks": "track_id"}


async def local_counts(
    db: Database,
    low: int,
    high: int,
    zone: dt.tzinfo,
    *,
    unit: int,
    cycle: int = 0,
    shift: int = 0,
    only: tuple[Kind, int] | None = None,
) -> Counter[int]:
    """Listens of ``[low, high)`` per local unit: ``(local seconds) // unit`` (then
    ``(+ shift) % cycle`` when ``cycle``); ``only``: the listens of one artist, album or track.
    """
    counts: Counter[int] = Counter()
    for seg in zones.segments(low, high, zone):
        first = -(-(seg.low + seg.offset) // unit)
        end = (seg.high + seg.offset) // unit
        edges = [(seg.low, seg.high)]
        if only is None and unit in _WHOLE and seg.offset % QUARTER == 0 and first < end:
            # The local units lying whole inside the stretch from the day or hour totals;
            # the parts of a unit at either end as any other period.
            counts.update(await _whole_units(db, first, end, seg.offset, unit))
            edges = [(seg.low, first * unit - seg.offset), (end * unit - seg.offset, seg.high)]
        for edge_low, edge_high in edges:
            if edge_low < edge_high:
                counts.update(await _units_of(db, edge_low, edge_high, seg.offset, unit, only=only))
    if cycle:
        folded: Counter[int] = Counter()
        for key, n in counts.items():
            folded[(key + shift) % cycle] += n
        counts = folded
    return Counter({key: n for key, n in counts.items() if n})


_Level = tuple[int, str, str]
"""A table of running totals: the seconds its rows count, its name, its key column."""
_HOURS: _Level = (3600, "hour_totals", "hour")
_QUARTERS: _Level = (QUARTER, "quarter_totals", "quarter")
_WHOLE: dict[int, tuple[_Level, tuple[_Level, ...]]] = {
    zones.DAY: ((zones.DAY, "day_totals", "day"), (_HOURS, _QUARTERS)),
    3600: (_HOURS, (_QUARTERS,)),
}
"""For a local unit: the totals per UTC unit of that length, and the finer ones."""


def _pieces(low: int, high: int, levels: tuple[_Level, ...]) -> list[tuple[_Level, int, int]]:
    """``[low, high)`` (seconds, multiples of a quarter hour) as rows ``[lo, hi)`` of the
    coarsest totals that fit, then finer ones at either end."""
    if low >= high or not levels:
        return []
    level, finer = levels[0], levels[1:]
    lo, hi = -(-low // level[0]), high // level[0]
    if lo >= hi:
        return _pieces(low, high, finer)
    return [
        *_pieces(low, lo * level[0], finer),
        (level, lo, hi),
        *_pieces(hi * level[0], high, finer),
    ]


async def _whole_units(db: Database, first: int, end: int, offset: int, unit: int) -> Counter[int]:
    """Listens per local unit ``first`` to ``end - 1`` at UTC offset ``offset``.

    A local unit starting ``phase`` seconds into UTC unit ``d`` is that UTC unit's total,
    less its first ``phase`` seconds, plus the first ``phase`` seconds of ``d + 1`` (or the
    same with the last seconds, whichever is shorter): one row and a few finer ones per unit,
    whatever the offset."""
    (_, table, column), finer = _WHOLE[unit]
    phase = -offset % unit
    base = (first * unit - offset - phase) // unit  # the UTC unit local unit ``first`` starts in
    head = phase * 2 <= unit
    part = (0, phase) if head else (phase, unit)
    terms = [
        f"(SELECT COALESCE(SUM(n), 0) FROM {name} WHERE {key} >= w.{column} * {unit // size} + {lo}"
        f" AND {key} < w.{column} * {unit // size} + {hi})"
        for (size, name, key), lo, hi in _pieces(*part, finer)
    ]
    rows = await db.fetchall(
        f"SELECT {column} AS d, n, {' + '.join(terms) or '0'} AS part FROM {table} w"
        f" WHERE {column} >= ? AND {column} <= ?",
        (base, base + end - first),
    )
    whole = {int(r["d"]): int(r["n"]) for r in rows}
    parts = {int(r["d"]): int(r["part"]) for r in rows}
    counts: Counter[int] = Counter()
    for k in range(first, end):
        d = base + k - first
        if not phase:
            counts[k] = whole.get(d, 0)
        elif head:
            counts[k] = whole.get(d, 0) - parts.get(d, 0) + parts.get(d + 1, 0)
        else:
            counts[k] = parts.get(d, 0) + whole.get(d + 1, 0) - parts.get(d + 1, 0)
    return counts


async def _units_of(
    db: Database, low: int, high: int, offset: int, unit: int, *, only: tuple[Kind, int] | None
) -> Counter[int]:
    """Listens of ``[low, high)`` (at UTC offset ``offset``) per local unit, from the
    quarter totals where whole quarters fit and from the listens for the rest."""
    key = "((({t}) + :off) / :unit)"
    values: dict[str, Any] = {"off": offset, "unit": unit}
    filter_sql = ""
    if only is not None:
        filter_sql = f" AND {COLUMN[only[0]]} = :item"
        values["item"] = only[1]
    first = -(-low // QUARTER)
    end = high // QUARTER
    parts = []
    listens = (
        f"SELECT {key.format(t='timestamp')} AS k, 1 AS n FROM listening_history"
        " WHERE timestamp >= {lo} AND timestamp < {hi}" + filter_sql
    )
    if only is None and offset % QUARTER == 0 and first < end:
        parts.append(
            f"SELECT {key.format(t='quarter * 900')} AS k, n FROM quarter_totals"
            " WHERE quarter >= :first AND quarter < :end"
        )
        parts.append(listens.format(lo=":low", hi=":first * 900"))
        parts.append(listens.format(lo=":end * 900", hi=":high"))
    else:
        parts.append(listens.format(lo=":low", hi=":high"))
    values.update(low=low, high=high, first=first, end=end)
    rows = await db.fetchall(
        f"SELECT k, SUM(n) AS n FROM ({' UNION ALL '.join(parts)}) GROUP BY k", values
    )
    return Counter({int(row["k"]): int(row["n"]) for row in rows if row["n"]})


_Piece = tuple[str, int, int, int]
"""Rows to add (sign 1) or take away (-1): ``("listen", sign, low, high)``, listens
``[low, high)`` in seconds, or ``(level, sign, low, high)``, the totals of that level's UTC
blocks ``[low, high)`` (``migrations.period_key``)."""
_LEVELS = (("year", 12, 0, 4), ("july_year", 12, 6, 4), ("month", 1, 0, 1))
"""The levels of totals, coarsest first: name, months per block, the month (0: January) a
block starts in, and the rows one block holds, counted in months: fewer than its months
hold together, as the same artists, albums and tracks come back month after month."""
_WEIGHT = {level: weight for level, _, _, weight in _LEVELS}
_LISTENS_WEIGHT = 1 / (30 * 86400)
"""The rows a second of listens at a period's ends costs, counted in months as above."""
_FIRST_MOMENT = 0
_LAST_MOMENT = 253_402_300_800 - 366 * 86400
"""Listens have positive timestamps before the year 9999: an open bound is one of these,
and a month or year after it still has a date."""


def _month_of(moment: int) -> int:
    day = dt.datetime.fromtimestamp(moment, dt.UTC)
    return day.year * 12 + day.month - 1


def _month_start(month: int) -> int:
    return int(dt.datetime(month // 12, month % 12 + 1, 1, tzinfo=dt.UTC).timestamp())


def _listens(near: int, far: int) -> list[_Piece]:
    """Listens ``[near, far)`` added when ``near < far``, ``[far, near)`` taken away otherwise."""
    if near < far:
        return [("listen", 1, near, far)]
    if far < near:
        return [("listen", -1, far, near)]
    return []


def _rows(pieces: Sequence[_Piece]) -> float:
    return sum(
        (high - low) * (_LISTENS_WEIGHT if level == "listen" else _WEIGHT[level])
        for level, _, low, high in pieces
    )


def _blocks(first: int, end: int, depth: int = 0) -> tuple[_Piece, ...]:
    """UTC months ``[first, end)`` (taken away when ``end < first``) as the blocks of the
    levels from ``_LEVELS[depth]`` on that read the fewest rows: the months themselves, or
    whole blocks of a level from a start near ``first`` to one near ``end``, the months in
    between added or taken away the same way at the next levels."""
    if first == end:
        return ()
    if end < first:
        return tuple(
            (level, -sign, low, high) for level, sign, low, high in _blocks(end, first, depth)
        )
    level, size, start, _ = _LEVELS[depth]
    if size == 1:
        return ((level, 1, first, end),)
    found = _blocks(first, end, depth + 1)
    for low in sorted({(first - start) // size, -(-(first - start) // size)}):
        for high in sorted({(end - start) // size, -(-(end - start) // size)}):
            if low < high:
                pieces = (
                    *_blocks(first, low * size + start, depth + 1),
                    (level, 1, low, high),
                    *_blocks(high * size + start, end, depth + 1),
                )
                if _rows(pieces) < _rows(found):
                    found = pieces
    return found


def period_pieces(low: int, high: int) -> list[_Piece]:
    """``[low, high)`` as the listens, or as blocks of whole UTC months (``_blocks``) and
    the listens between each end and a month start next to it (added or taken away),
    whichever reads the fewest rows. A year of any zone is then a year's rows and a few
    hours of listens at each end."""
    low, high = max(low, _FIRST_MOMENT), min(high, _LAST_MOMENT)
    if high <= low:
        return []
    found = _listens(low, high)
    for first in (_month_of(low), _month_of(low) + 1):
        for end in (_month_of(high), _month_of(high) + 1):
            if first < end:
                pieces = [
                    *_listens(low, _month_start(first)),
                    *_listens(_month_start(end), high),
                    *_blocks(first, end),
                ]
                if _rows(pieces) < _rows(found):
                    found = pieces
    return found


def period_values(pieces: list[_Piece]) -> dict[str, object]:
    values: dict[str, object] = {}
    for i, (_, sign, lo, hi) in enumerate(pieces):
        values.update({f"s{i}": sign, f"lo{i}": lo, f"hi{i}": hi})
    return values


def period_sql(kind: Kind, pieces: list[_Piece]) -> str:
    """``id, n`` of each item with listens in the period of ``pieces``, whose bounds are
    the parameters ``period_values`` names."""
    column = COLUMN[kind]
    singular = kind.removesuffix("s")
    parts = []
    for i, (source, _, _, _) in enumerate(pieces):
        if source == "listen":
            # INDEXED BY: the covering index in time order reads only the period's ends.
            parts.append(
                f"SELECT {column} AS id, :s{i} AS n"
                " FROM listening_history INDEXED BY listening_history_period"
                f" WHERE timestamp >= :lo{i} AND timestamp < :hi{i} AND {column} IS NOT NULL"
            )
        else:
            parts.append(
                f"SELECT {column} AS id, :s{i} * n AS n FROM {singular}_{source}s"
                f" WHERE {source} >= :lo{i} AND {source} < :hi{i}"
            )
    if not parts:
        return "SELECT NULL AS id, 0 AS n WHERE 0"
    return (
        f"SELECT id, SUM(n) AS n FROM ({' UNION ALL '.join(parts)}) GROUP BY id HAVING SUM(n) > 0"
    )
