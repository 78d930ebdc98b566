"""``history`` and ``stats``: reading the stored history."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import click

from musiquectl.cli import Context, pass_context
from musiquectl.client import Client
from musiquectl.jobs_view import LISTEN_COLUMNS, listen_rows
from musiquectl.options import Moment, period, since_until
from musiquectl.output import (
    count,
    echo,
    key_values,
    local_time,
    number,
    print_json,
    print_result,
    table,
)
from musiqued import wire

ALL_PAGE = 1000
_TIME_COLUMN = (LISTEN_COLUMNS[0],)


def _listens_table(listens: list[dict[str, Any]], *, header: bool = True) -> None:
    table(LISTEN_COLUMNS, listen_rows(listens), no_wrap=_TIME_COLUMN, header=header)


def _stopped_at(shown: int, total: int | None, which: str) -> None:
    """Say that the row limit cut the list (on stderr: stdout stays the rows)."""
    of = f" of {number(total)}" if total is not None else ""
    echo(
        f"{number(shown)}{of} listens shown ({which}); -n N shows more, -n 0 all of them",
        err=True,
    )


@click.command()
@click.option(
    "-n",
    "--limit",
    "limit",
    default=20,
    show_default=True,
    type=click.IntRange(0, wire.MAX_LISTENS),
    help=f"How many listens, at most {wire.MAX_LISTENS:,}; 0: every one (oldest first, "
    "page by page).",
)
@since_until
@pass_context
def history(ctx: Context, limit: int, since: Moment | None, until: Moment | None) -> None:
    """Recent listens (newest first), or a period's listens (oldest first).

    When the list stops at its limit, a line on stderr says how many there are in all.

    \b
    Examples:
      musiquectl history -n 50
      musiquectl history --since 2024-05-01 --until 2024-05-02
      musiquectl history --since 3d -n 100
      musiquectl history --since 30d -n 0 | wc -l
    """
    window = period(since, until)
    if limit == 0:
        _every_listen(ctx, window)
        return
    if not window:
        listens = ctx.call("history.recent", {"limit": limit})
        if ctx.json:
            print_json(listens)
            return
        if not listens:
            echo("no listens", err=True)
            return
        _listens_table(listens)
        if len(listens) == limit:
            total = int(ctx.call("daemon.status")["listens"])
            if total > limit:
                _stopped_at(limit, total, "the newest")
        return
    result = ctx.call("history.list", {**window, "limit": limit})
    if ctx.json:
        print_json(result)
        return
    listens = result["listens"]
    if not listens:
        echo("no listens in this period", err=True)
        return
    _listens_table(listens)
    if result.get("next") is not None:
        _stopped_at(len(listens), result.get("total"), "the oldest of this period")


def iter_pages(
    client: Client, window: dict[str, int | str], page_size: int
) -> Iterator[list[dict[str, Any]]]:
    """``history.list`` pages, oldest first, one in memory at a time."""
    after: str | None = None
    while True:
        params: dict[str, Any] = {**window, "limit": page_size}
        if after is not None:
            params["after"] = after
        result = client.call("history.list", params)
        yield result["listens"]
        after = result["next"]
        if after is None:
            return


def _every_listen(ctx: Context, window: dict[str, int | str]) -> None:
    """``-n 0``: every listen of the period, page by page (one in memory at a time)."""
    with ctx.client(timeout=300) as client:
        pages = iter_pages(client, window, ALL_PAGE)
        if ctx.json:
            print_json([listen for page in pages for listen in page])
            return
        shown = 0
        for page in pages:
            if page:
                _listens_table(page, header=shown == 0)
            shown += len(page)
        if not shown:
            echo("no listens", err=True)


def _bar(listens: int, peak: int, width: int = 40) -> str:
    return "█" * max(1, round(listens / peak * width)) if listens and peak else ""


def _describe(listen: dict[str, Any] | None) -> str:
    if not listen:
        return "-"
    return f"{local_time(listen['timestamp'])}  {listen['artist']} — {listen['title']}"


def render_stats(stats: dict[str, Any]) -> None:
    """The figures, then four labelled blocks: top artists, albums and tracks, listens per
    day."""
    key_values(
        [
            ("listens", stats["listens"]),
            ("artists", stats["artists"]),
            ("albums", stats["albums"]),
            ("tracks", stats["tracks"]),
            ("first listen", _describe(stats.get("first_listen"))),
            ("last listen", _describe(stats.get("last_listen"))),
            ("days with listens", len(stats["per_day"])),
        ]
    )
    echo()
    table(
        ("#", "artist", "listens"),
        [(i, a["artist"], a["listens"]) for i, a in enumerate(stats["top_artists"], 1)],
        title="Top artists",
    )
    echo()
    table(
        ("#", "album", "artist", "listens"),
        [(i, a["album"], a["artist"], a["listens"]) for i, a in enumerate(stats["top_albums"], 1)],
        title="Top albums",
    )
    echo()
    table(
        ("#", "title", "artist", "listens"),
        [
            (i, t["title"], t["artist"], t["listens"])
            for i, t in enumerate(stats.get("top_tracks") or [], 1)
        ],
        title="Top tracks",
    )
    days = stats["per_day"][-14:]
    peak = max((d["listens"] for d in days), default=0)
    echo()
    table(
        ("day (UTC)", "listens", ""),
        [(d["day"], d["listens"], _bar(d["listens"], peak)) for d in days],
        title=f"Listens per day (the last {count(len(days), 'day')} with listens)",
    )


@click.command()
@since_until
@click.option(
    "--top",
    "top",
    metavar="N",
    default=10,
    show_default=True,
    type=click.IntRange(1, wire.MAX_TOP),
    help=f"How many top artists, albums and tracks, at most {wire.MAX_TOP}.",
)
@pass_context
def stats(ctx: Context, since: Moment | None, until: Moment | None, top: int) -> None:
    """Counts, first and last listen, top artists, albums and tracks, listens per day.

    \b
    Examples:
      musiquectl stats
      musiquectl stats --since 2024-01-01 --until 2025-01-01 --top 25
      musiquectl stats --since 'last week'
      musiquectl stats --since 1month --json
    """
    params = {**period(since, until), "top": top}
    print_result(ctx.call("stats.summary", params), render_stats, as_json=ctx.json)


COMMANDS = (history, stats)
