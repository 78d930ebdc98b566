"""Human and JSON rendering. rich is imported only when a table is actually drawn."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

T = TypeVar("T")


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


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


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None) -> None:
    """A table on a terminal; tab-separated lines when piped, so scripts can cut it."""
    if not sys.stdout.isatty():
        for row in rows:
            click.echo("\t".join("" if v is None else str(v) for v in row))
        return
    from rich.console import Console
    from rich.table import Table

    grid = Table(title=title, show_edge=False, header_style="bold")
    for column in columns:
        grid.add_column(column)
    for row in rows:
        grid.add_row(*("" if v is None else str(v) for v in row))
    Console().print(grid)


def key_values(pairs: Sequence[tuple[str, Any]]) -> None:
    width = max((len(k) for k, _ in pairs), default=0)
    for key, value in pairs:
        click.echo(f"{key + ':':<{width + 1}} {value}")
