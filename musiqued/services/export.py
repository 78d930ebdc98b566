"""Exports: every listen of a period as CSV, JSON, JSON lines, ListenBrainz's listen JSON
lines or Maloja's export JSON, written as it is read.

The formats are the README's (scripts read them): the fields of ``history.EXPORT_FIELDS``;
CSV per RFC 4180 (``csv`` with CRLF line ends) under a header line; JSON lines, one object
per listen; JSON, one array of those objects. An object is written exactly as
``json.dumps(listen, ensure_ascii=False)`` writes it, and a CSV row as ``csv.writer`` does:
the bytes are what they were when ``musiquectl`` formatted each page itself.

Rows come from ``history.export_rows`` in batches, each formatted and handed to ``write``
before the next is read, so memory stays flat whatever the size of the history. ``loved`` is
``true`` or ``false`` in every format. ``listenbrainz`` and ``maloja`` are the other services'
own shapes (``musiqued.interchange.writers``), which they import.
"""

from __future__ import annotations

import contextlib
import csv
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import orjson

from musiqued import __version__
from musiqued.storage import history
from musiqued.storage.db import Database

if TYPE_CHECKING:
    from musiqued.interchange import writers

Format = Literal["csv", "json", "jsonl", "listenbrainz", "maloja"]
Write = Callable[[str], Awaitable[None]]
Row = tuple[Any, ...]

BATCH = 1000
"""Listens read and formatted at a time (~100 KB of CSV)."""

_OBJECT = ("{" + ", ".join(f'"{field}": %b' for field in history.EXPORT_FIELDS) + "}").encode()
"""One listen as ``json.dumps`` lays it out, a ``%b`` where each value's JSON goes."""
_ARRAY_HEAD = b"[\n  [\n    "
_ARRAY_TAIL = b"\n  ]\n]"
_NEXT_ROW = b"\n  ],\n  [\n    "
_NEXT_VALUE = b",\n    "


def json_objects(rows: Sequence[Row], template: bytes) -> bytes:
    """Each row as a JSON object, byte for byte as ``json.dumps(dict(zip(EXPORT_FIELDS, row)),
    ensure_ascii=False)`` writes it, put in ``template`` (``_OBJECT`` and what surrounds it).

    orjson writes the values (the same escapes as ``json``: it is the costly part, done in C
    for the whole batch at once) as an indented array of arrays, where each value stands on a
    line of its own. A JSON string holds no raw newline (orjson escapes every control
    character), so every newline in that text is layout: cutting at the layout gives each
    value's exact JSON, and the template puts each after its key. A dict per row and one
    ``dumps`` call per row would take twice as long.
    """
    text = orjson.dumps(rows, option=orjson.OPT_INDENT_2)
    values = (
        text.removeprefix(_ARRAY_HEAD)
        .removesuffix(_ARRAY_TAIL)
        .replace(_NEXT_ROW, _NEXT_VALUE)
        .split(_NEXT_VALUE)
    )
    return (template * len(rows)) % tuple(values)


def _loved_as_bool(rows: Sequence[Row]) -> list[Row]:
    return [(*row[:-1], bool(row[-1])) for row in rows]


class _Form:
    """A format: ``rows`` for each batch in turn, ``head`` before the first and ``tail``
    after the last (nothing, unless the format says otherwise)."""

    def head(self) -> str:
        return ""

    def rows(self, rows: Sequence[Row]) -> str:
        raise NotImplementedError

    def tail(self, count: int) -> str:
        return ""


class _Lines:
    """Where ``csv.writer`` writes: its lines, kept until taken. (A reused ``io.StringIO``
    switches to a slower buffer once it has been emptied.)"""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.write = self.lines.append

    def take(self) -> str:
        text = "".join(self.lines)
        self.lines.clear()
        return text


class _Csv(_Form):
    def __init__(self) -> None:
        self._lines = _Lines()
        self._writer = csv.writer(self._lines, lineterminator="\r\n")  # RFC 4180: CRLF

    def head(self) -> str:
        self._writer.writerow(history.EXPORT_FIELDS)
        return self._lines.take()

    def rows(self, rows: Sequence[Row]) -> str:
        # None is an empty cell; loved is written as JSON writes it.
        self._writer.writerows((*row[:-1], "true" if row[-1] else "false") for row in rows)
        return self._lines.take()


class _JsonLines(_Form):
    _template = _OBJECT + b"\n"

    def rows(self, rows: Sequence[Row]) -> str:
        return json_objects(_loved_as_bool(rows), self._template).decode()


class _JsonArray(_Form):
    """``[``, then each object on its own line after ``,`` (the first after nothing), ``]``."""

    _template = b",\n" + _OBJECT

    def __init__(self) -> None:
        self._first = True

    def head(self) -> str:
        return "["

    def rows(self, rows: Sequence[Row]) -> str:
        text = json_objects(_loved_as_bool(rows), self._template).decode()
        if self._first:
            self._first = False
            return "\n" + text[2:]
        return text

    def tail(self, count: int) -> str:
        return "\n]\n" if count else "]\n"


class _Interchange(_Form):
    """Another service's export (``writers.ExportForm``), fed each row as the mapping it
    reads."""

    def __init__(self, fmt: writers.ExportFormat) -> None:
        # The other services' writers load with the first export in their shape.
        from musiqued.interchange import writers

        self._form = writers.form(fmt, client_version=__version__, export_time=int(time.time()))

    def head(self) -> str:
        return self._form.head()

    def rows(self, rows: Sequence[Row]) -> str:
        fields = history.EXPORT_FIELDS
        return self._form.rows(dict(zip(fields, row, strict=True)) for row in rows)

    def tail(self, count: int) -> str:
        return self._form.tail(count)


_FORMS: dict[Format, Callable[[], _Form]] = {
    "csv": _Csv,
    "json": _JsonArray,
    "jsonl": _JsonLines,
    "listenbrainz": lambda: _Interchange("listenbrainz"),
    "maloja": lambda: _Interchange("maloja"),
}


async def export(
    db: Database, fmt: Format, *, since: int | None, until: int | None, write: Write
) -> int:
    """Write every listen of ``[since, until)``, oldest first, in ``fmt`` through ``write``
    (its awaits are the back-pressure); returns how many listens were written."""
    form = _FORMS[fmt]()
    count = 0
    if head := form.head():
        await write(head)
    batches = history.export_rows(db, since=since, until=until, batch=BATCH)
    async with contextlib.aclosing(batches):
        async for rows in batches:
            count += len(rows)
            await write(form.rows(rows))
    if tail := form.tail(count):
        await write(tail)
    return count
