"""Exports: every listen of a period as CSV, JSON or JSON lines, written as it is read.

The formats are the README's (scripts read them): the fields of ``history.EXPORT_FIELDS``;
CSV per RFC 4180 (``csv`` with CRLF line ends) under a header line; JSON lines, one object
per listen; JSON, one array of those objects. An object is written exactly as
``json.dumps(listen, ensure_ascii=False)`` writes it, and a CSV row as ``csv.writer`` does:
the bytes are what they were when ``musiquectl`` formatted each page itself.

Rows come from ``history.export_rows`` in batches; each batch is formatted and handed to
``write`` before the next is taken, so memory holds two batches whatever the size of the
history, and the event loop serves other clients between batches (a batch takes a few
milliseconds to format).
"""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal, Protocol

import orjson

from musiqued.storage import history
from musiqued.storage.db import Database

Format = Literal["csv", "json", "jsonl"]
Write = Callable[[str], Awaitable[None]]
Row = tuple[Any, ...]

BATCH = 1000
"""Listens formatted at a time: ~1 ms of the event loop, ~100 KB of CSV."""

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


class _Form(Protocol):
    def head(self) -> str: ...
    def rows(self, rows: Sequence[Row], *, first: bool) -> str: ...
    def tail(self, count: int) -> str: ...


class _Csv:
    def __init__(self) -> None:
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, lineterminator="\r\n")  # RFC 4180: CRLF

    def _take(self) -> str:
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return text

    def head(self) -> str:
        self._writer.writerow(history.EXPORT_FIELDS)
        return self._take()

    def rows(self, rows: Sequence[Row], *, first: bool) -> str:
        self._writer.writerows(rows)  # None is an empty cell
        return self._take()

    def tail(self, count: int) -> str:
        return ""


class _JsonLines:
    _template = _OBJECT + b"\n"

    def head(self) -> str:
        return ""

    def rows(self, rows: Sequence[Row], *, first: bool) -> str:
        return json_objects(rows, self._template).decode()

    def tail(self, count: int) -> str:
        return ""


class _JsonArray:
    """``[``, then each object on its own line after ``,`` (the first after nothing), ``]``."""

    _template = b",\n" + _OBJECT

    def head(self) -> str:
        return "["

    def rows(self, rows: Sequence[Row], *, first: bool) -> str:
        text = json_objects(rows, self._template).decode()
        return "\n" + text[2:] if first else text

    def tail(self, count: int) -> str:
        return "\n]\n" if count else "]\n"


_FORMS: dict[Format, Callable[[], _Form]] = {"csv": _Csv, "json": _JsonArray, "jsonl": _JsonLines}


async def export(
    db: Database, fmt: Format, *, since: int | None, until: int | None, write: Write
) -> int:
    """Write every listen of ``[since, until)``, oldest first, in ``fmt`` through ``write``
    (its awaits are the back-pressure: the next batch is read once it has taken this one);
    returns how many listens were written."""
    form = _FORMS[fmt]()
    count = 0
    if head := form.head():
        await write(head)
    batches = history.export_rows(db, since=since, until=until, batch=BATCH)
    async with contextlib.aclosing(batches):
        async for rows in batches:
            await write(form.rows(rows, first=count == 0))
            count += len(rows)
    if tail := form.tail(count):
        await write(tail)
    return count
