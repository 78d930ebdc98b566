"""Everything ``musiquectl`` prints goes through here: human lines, tables, JSON.

Human output: every line passes ``text.visible`` (control characters and bidi controls shown,
never acted on) and rich never reads data as markup (cells are ``Text``, the console has
markup, emoji and highlighting off). rich is imported only when a table is drawn on a terminal.

Piped, a table is tab-separated lines under a header line (``--no-header`` drops it, and a
table's title); since a tab or newline inside a value is shown as ``␉``/``␊``, one row is
always one line.
"""

from __future__ import annotations

import datetime as dt
import io
import sys
from collections.abc import Callable, Collection, Sequence
from typing import Any, TypeVar

import click

from musiquectl.text import json_text, visible

T = TypeVar("T")


class _Settings:
    header = True


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


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``1 listen``, ``1,370 listens``."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def _cell(value: Any) -> str:
    return "" if value is None else visible(str(value))


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
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    grid = Table(
        title=Text(title) if title and header else None,
        show_header=header,
        show_edge=False,
        header_style="bold",
    )
    for column in columns:
        grid.add_column(Text(column), no_wrap=column in no_wrap)
    for row in rows:
        grid.add_row(*(Text(_cell(v)) for v in row))
    Console(markup=False, emoji=False, highlight=False).print(grid)


def key_values(pairs: Sequence[tuple[str, Any]]) -> None:
    width = max((len(k) for k, _ in pairs), default=0)
    for key, value in pairs:
        echo(f"{key + ':':<{width + 1}} {'' if value is None else value}")


class ProgressBar:
    """rich's live bar for a followed job: a label, the bar, the details. Both texts are
    shown as plain text (no markup, controls visible)."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn

        self._progress = Progress(
            TextColumn("{task.fields[head]}", markup=False),
            BarColumn(),
            TextColumn("{task.fields[detail]}", markup=False),
            console=Console(markup=False, emoji=False, highlight=False),
        )
        self._task = self._progress.add_task("job", total=None, head="", detail="")
        self._progress.start()

    def show(self, head: str, detail: str, *, done: int, total: int | None) -> None:
        self._progress.update(
            self._task, total=total, completed=done, head=visible(head), detail=visible(detail)
        )

    def close(self) -> None:
        self._progress.stop()


class VisibleStderr(io.TextIOBase):
    """stderr for click's own messages, which quote what was typed: made visible too."""

    def write(self, text: str) -> int:
        sys.stderr.write("\n".join(visible(line) for line in text.split("\n")))
        return len(text)

    def flush(self) -> None:
        sys.stderr.flush()
