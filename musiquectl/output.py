"""Everything ``musiquectl`` prints goes through here: human lines, tables, JSON.

Human output: every line passes ``text.visible`` (control characters and bidi controls shown,
never acted on); the only escape sequences written are ours (``terminal.py``: a bold header,
the progress line's redraw), never made from data, and no text is read as markup.

On a terminal, a table is laid out to its width (``terminal.table_lines``: columns aligned, cells
wrapped in their column, a bold header). Piped, it is tab-separated lines under a header line
(``--no-header`` drops it, and a table's title); since a tab or newline inside a value is
shown as ``␉``/``␊``, one row is always one line.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import sys
from collections.abc import Callable, Collection, Sequence
from typing import Any, TypeVar

import click

from musiquectl.terminal import ERASE_LINE, progress_line, table_lines
from musiquectl.text import json_text, visible

T = TypeVar("T")


class _Settings:
    header = True
    live: ProgressBar | None = None
    """The progress line on the terminal now: a message first takes its place."""


SETTINGS = _Settings()


def show_headers(shown: bool) -> None:
    """``--no-header``: tables print their rows only."""
    SETTINGS.header = shown


def on_terminal() -> bool:
    return sys.stdout.isatty()


def clear_screen() -> None:
    """Before a redraw on a terminal (``status --watch``)."""
    click.clear()


def echo(text: str = "", *, err: bool = False, nl: bool = True) -> None:
    """One line of human output, made visible (a newline inside ``text`` shows as ``␊``)."""
    if SETTINGS.live is not None:
        SETTINGS.live.clear()
    click.echo(visible(text), err=err, nl=nl)


def warn(text: str) -> None:
    """A notice or an error on stderr, prefixed like every message of ours."""
    echo(f"musiquectl: {text}", err=True)


def print_json(value: Any) -> None:
    """``--json``: the exact result, indented."""
    click.echo(json_text(value, indent=2))


def print_json_line(value: Any) -> None:
    """One JSON document on one line (``--json watch``, ``--json status --watch``)."""
    click.echo(json_text(value))


def print_result(value: T, render: Callable[[T], None], *, as_json: bool) -> None:
    """``--json`` prints the result object as is; people get ``render``'s form."""
    if as_json:
        print_json(value)
    else:
        render(value)


def local_time(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return dt.datetime.fromtimestamp(timestamp).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def number(n: float | None) -> str:
    """Every count a person reads: ``80,004``; a fraction keeps one decimal (``2.5``)."""
    if n is None:
        return "-"
    if not float(n).is_integer():
        return f"{n:,.1f}"
    return f"{int(n):,}"


def compact(n: float) -> str:
    """A count in at most five characters, for the live line: ``950``, ``80.0k``, ``1.2M``."""
    for limit, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= limit:
            return f"{n / limit:.1f}{unit}" if abs(n) < limit * 100 else f"{n / limit:.0f}{unit}"
    return f"{n:.0f}"


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``1 listen``, ``1,370 listens``."""
    return f"{number(n)} {noun if n == 1 else plural or noun + 's'}"


def _cell(value: Any) -> str:
    return "" if value is None else visible(str(value))


def _shown_cell(value: Any) -> str:
    """A cell on a terminal: numbers as ``number`` writes them (piped, a table keeps plain
    digits: it is read by scripts)."""
    return number(value) if _is_number(value) else _cell(value)


def table(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    title: str | None = None,
    *,
    no_wrap: Collection[str] = (),
    header: bool = True,
) -> None:
    """A table on a terminal; tab-separated lines under a header line when piped.

    ``no_wrap``: columns kept on one line however narrow the terminal (a timestamp).
    ``header=False``: a continuation of a table already started (its rows only).
    """
    header = header and SETTINGS.header
    if not on_terminal():
        if header:
            if title:
                echo(title)
            click.echo("\t".join(_cell(c) for c in columns))
        for row in rows:
            click.echo("\t".join(_cell(v) for v in row))
        return
    lines = table_lines(
        [_cell(c) for c in columns],
        [[_shown_cell(v) for v in row] for row in rows],
        _width(),
        title=visible(title) if title else None,
        no_wrap=[_cell(c) for c in no_wrap],
        header=header,
        bold=_styled(),
    )
    for line in lines:
        click.echo(line)


def _width() -> int:
    """The terminal's columns now (it may have been resized since the last line); ``COLUMNS``
    wins, as in ``shutil.get_terminal_size`` (not imported: it pulls in the compressors)."""
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns > 0:
        return columns
    stdout = sys.__stdout__
    try:
        return (os.get_terminal_size(stdout.fileno()).columns if stdout else 0) or 80
    except (ValueError, OSError):
        return 80


def _styled() -> bool:
    """Bold headers, unless the terminal says it has no attributes at all."""
    return os.environ.get("TERM") != "dumb"


def key_values(pairs: Sequence[tuple[str, Any]]) -> None:
    """``key: value`` lines, values aligned; a number as ``number`` writes it."""
    width = max((len(k) for k, _ in pairs), default=0)
    for key, value in pairs:
        shown = number(value) if _is_number(value) else "" if value is None else value
        echo(f"{key + ':':<{width + 1}} {shown}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class ProgressBar:
    """The live line of a followed job on a terminal: its head, a bar, its details, redrawn
    in place as the job moves; both texts shown as plain text (controls made visible)."""

    def __init__(self) -> None:
        self._shown: str | None = None
        SETTINGS.live = self

    def show(self, head: str, parts: Sequence[str], *, done: int, total: int | None) -> None:
        """``parts`` most important first: those that do not fit the width are left out."""
        line = progress_line(
            visible(head), [visible(p) for p in parts], done=done, total=total, width=_width()
        )
        if line != self._shown:
            click.echo(ERASE_LINE + line, nl=False)
            self._shown = line

    def clear(self) -> None:
        """Give the line to a message (a notice while the daemon restarts); the next
        ``show`` draws the bar again under it."""
        if self._shown is not None:
            click.echo(ERASE_LINE, nl=False)
            self._shown = None

    def close(self) -> None:
        """End the line (what follows starts on a fresh one)."""
        SETTINGS.live = None
        if self._shown is not None:
            click.echo()
            self._shown = None


class VisibleStderr(io.TextIOBase):
    """stderr for click's own messages, which quote what was typed: made visible too."""

    def write(self, text: str) -> int:
        sys.stderr.write("\n".join(visible(line) for line in text.split("\n")))
        return len(text)

    def flush(self) -> None:
        sys.stderr.flush()
