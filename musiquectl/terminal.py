"""Laying text out for a terminal: display widths, wrapped table cells, the live progress line.

Pure functions of strings and a width: ``output.py`` writes what they return. The text given
here has already been through ``text.visible``, so it holds no control character; the only
escape sequences in the result are ours (bold for a table's header, erase-line for the
progress line), never made from data.

Widths are display columns, from ``unicodedata``: East Asian wide and fullwidth characters
take two, combining marks and format characters (zero-width joiner, variation selectors)
none, everything else one. Terminals mostly agree; where they differ (emoji sequences,
ambiguous-width symbols in a CJK locale) a line may end a column early or late, never lose
text.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Collection, Sequence

GAP = "  "
"""Between two table columns."""
BOLD, RESET = "\x1b[1m", "\x1b[0m"
ERASE_LINE = "\r\x1b[2K"
"""Back to the first column and clear the line: the progress line is redrawn in place."""
FULL, EMPTY = "█", "░"
PARTIAL = " ▏▎▍▌▋▊▉"
"""A cell filled to 0/8 … 7/8, for a bar that moves before a whole cell is done."""
ELLIPSIS = "…"
BAR_CELLS = (10, 30)
"""The shortest and the longest bar."""
PART_GAP = ", "
"""Between two details of the progress line."""


def char_width(char: str) -> int:
    """The columns one character takes: 2 for wide and fullwidth, 0 for combining marks and
    format characters, 1 otherwise."""
    if unicodedata.category(char) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def display_width(text: str) -> int:
    """The columns ``text`` takes on a terminal."""
    if text.isascii():  # visible() left no control character: one column each
        return len(text)
    return sum(char_width(char) for char in text)


def _fitting(text: str, width: int) -> int:
    """How many characters of ``text`` fit in ``width`` columns (at least one, so that a wide
    character in a one-column cell still moves on; the marks that follow it come along)."""
    if text.isascii():
        return max(1, min(width, len(text)))
    used = 0
    for index, char in enumerate(text):
        columns = char_width(char)
        if columns and used + columns > width and index > 0:
            return index
        used += columns
    return len(text)


def wrap(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width`` columns, broken at a space where one is in
    reach (the spaces at the break are dropped), else at the last character that fits.

    Nothing else is dropped; a wide character is never split. A line is wider than
    ``width`` only when one character is (a wide one in a one-column cell).
    """
    lines: list[str] = []
    rest = text
    while display_width(rest) > width:
        cut = _fitting(rest, width)
        space = rest.rfind(" ", 0, cut + 1)  # a space just past the cut ends a whole word too
        line = rest[:space].rstrip(" ") if space > 0 else ""
        if line:
            rest = rest[space:].lstrip(" ")
        else:
            line, rest = rest[:cut], rest[cut:]
        lines.append(line)
    if rest or not lines:
        lines.append(rest)
    return lines


def pad(text: str, width: int) -> str:
    """``text`` followed by spaces up to ``width`` columns."""
    return text + " " * max(0, width - display_width(text))


def truncate(text: str, width: int) -> str:
    """``text`` cut to ``width`` columns, an ellipsis as its last one when anything was cut."""
    if display_width(text) <= width:
        return text
    if width <= 0:
        return ""
    kept = text[: _fitting(text, width - 1)] if width > 1 else ""
    while display_width(kept) > width - 1:  # a wide character at the edge: drop it
        kept = kept[:-1]
    return kept + ELLIPSIS


def fit_widths(natural: Sequence[int], wrappable: Sequence[bool], total: int) -> list[int]:
    """Column widths for a row of ``total`` columns at most (gaps included).

    Columns that do not wrap keep their natural width. When the rest do not fit, they share
    the room left fairly: a narrow column keeps its width, the room it does not use goes to
    the wider ones, which are cut to the same width (one column each at the very least, in
    which case the row is wider than ``total`` and the terminal folds it).
    """
    widths = list(natural)
    room = total - len(GAP) * max(0, len(natural) - 1)
    room -= sum(width for width, wraps in zip(natural, wrappable, strict=True) if not wraps)
    flexible = sorted((width, index) for index, width in enumerate(natural) if wrappable[index])
    if sum(width for width, _ in flexible) <= room:
        return widths
    for left, (width, index) in zip(range(len(flexible), 0, -1), flexible, strict=True):
        widths[index] = max(1, min(width, room // left))
        room -= widths[index]
    return widths


def table_lines(
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    width: int,
    *,
    title: str | None = None,
    no_wrap: Collection[str] = (),
    header: bool = True,
    bold: bool = True,
) -> list[str]:
    """A table in lines of at most ``width`` columns (``no_wrap`` columns permitting): a
    title line, a header line (in bold with ``bold``), then each row, its cells wrapped inside
    their column when the row is too wide. ``header=False``: the rows only (a continuation of
    a table already started). Every string has been made visible already."""
    shown = [columns, *rows] if header else rows
    natural = [
        max((display_width(row[i]) for row in shown), default=0) for i in range(len(columns))
    ]
    wrappable = [column not in no_wrap for column in columns]
    widths = fit_widths(natural, wrappable, width)
    out: list[str] = []
    if header:
        if title:
            out.extend(wrap(title, width))
        heading = _row_lines(columns, widths, wrappable)
        out.extend(f"{BOLD}{line}{RESET}" if bold else line for line in heading)
    for row in rows:
        out.extend(_row_lines(row, widths, wrappable))
    return out


def _row_lines(cells: Sequence[str], widths: Sequence[int], wrappable: Sequence[bool]) -> list[str]:
    """One row as lines: each cell wrapped in its column, padded to it (no trailing spaces)."""
    wrapped = [
        wrap(cell, width) if wraps else [cell]
        for cell, width, wraps in zip(cells, widths, wrappable, strict=True)
    ]
    height = max((len(cell) for cell in wrapped), default=1)
    return [
        GAP.join(
            pad(cell[n] if n < len(cell) else "", width)
            for cell, width in zip(wrapped, widths, strict=True)
        ).rstrip(" ")
        for n in range(height)
    ]


def bar(done: int, total: int | None, cells: int) -> str:
    """``cells`` columns of bar: full blocks for what is done, eighths for the cell in
    progress, light shade for the rest (all shade while the total is unknown)."""
    if cells <= 0:
        return ""
    fraction = min(1.0, max(0.0, done / total)) if total else 0.0
    eighths = int(fraction * cells * 8)
    full, part = divmod(eighths, 8)
    shown = FULL * full + (PARTIAL[part] if part else "")
    return shown + EMPTY * (cells - len(shown))


def progress_line(
    head: str, parts: Sequence[str], *, done: int, total: int | None, width: int
) -> str:
    """``head``, the bar and as many of ``parts`` (most important first) as fit, on one line
    of at most ``width - 1`` columns (the last column stays free: a full line would leave
    the cursor waiting to wrap).

    The details matter more than the bar: it takes the room they leave, 10 to 30 cells.
    """
    room = width - 1 - display_width(head) - 2 - BAR_CELLS[0]
    shown: list[str] = []
    for part in parts:
        needed = display_width(part) + (len(PART_GAP) if shown else 0)
        if needed > room and shown:
            break
        shown.append(part)
        room -= needed
    detail = PART_GAP.join(shown)
    cells = min(BAR_CELLS[1], BAR_CELLS[0] + max(0, room))
    return truncate(f"{head} {bar(done, total, cells)} {detail}", width - 1)
