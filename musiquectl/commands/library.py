"""``top``, ``search``, ``album``, ``artist`` and ``year``: the library's views
(``library.*``), in the user's time zone (``[daemon] timezone``)."""

from __future__ import annotations

import re
from typing import Any

import click

from musiquectl.cli import Context, pass_context
from musiquectl.jobs_view import LISTEN_COLUMNS, listen_rows
from musiquectl.options import Moment, exclusive, period, since_until
from musiquectl.output import echo, key_values, local_time, print_json, table
from musiqued import wire

_PERIODS = {"week": "7d", "month": "30d", "year": "365d"}
_YEAR = re.compile(r"^(\d{4})$", re.ASCII)
_MONTH = re.compile(r"^(\d{4})-(\d{2})$", re.ASCII)
_SEPARATORS = (" — ", " – ", " - ")
"""Between artist and title in ``album "ARTIST — TITLE"`` (an em dash, or an en dash or a
hyphen with spaces around)."""


def _period_window(text: str) -> dict[str, str]:
    """The RPC's ``since``/``until`` for ``--period``, as days the daemon reads in its zone."""
    if text == "all":
        return {}
    if text in _PERIODS:
        return {"since": _PERIODS[text]}
    year = _YEAR.match(text)
    if year:
        start = int(year.group(1))
        return {"since": f"{start:04d}-01-01", "until": f"{start + 1:04d}-01-01"}
    month = _MONTH.match(text)
    if month and 1 <= int(month.group(2)) <= 12:
        y, m = int(month.group(1)), int(month.group(2))
        following = f"{y + m // 12:04d}-{m % 12 + 1:02d}-01"
        return {"since": f"{y:04d}-{m:02d}-01", "until": following}
    raise click.BadParameter(
        f"{text!r} is not a period: use week, month, year (the last 7, 30 or 365 days), all, "
        "a year (2025) or a month (2025-06)",
        param_hint="'--period'",
    )


def _change(item: dict[str, Any]) -> str:
    previous = item.get("previous_rank")
    if previous is None:
        return "new"
    moved = previous - item["rank"]
    return f"↑{moved}" if moved > 0 else f"↓{-moved}" if moved < 0 else "="


@click.command()
@click.argument("kind", type=click.Choice(["artists", "albums", "tracks"]))
@click.option(
    "--period",
    "period_text",
    metavar="P",
    help="week, month or year (the last 7, 30 or 365 days), all (the default), a year (2025) "
    "or a month (2025-06), in your time zone.",
)
@since_until
@click.option(
    "-n",
    "--limit",
    default=10,
    show_default=True,
    type=click.IntRange(1, wire.MAX_TOP),
    help=f"How many, at most {wire.MAX_TOP}.",
)
@pass_context
def top(
    ctx: Context,
    *,
    kind: str,
    period_text: str | None,
    since: Moment | None,
    until: Moment | None,
    limit: int,
) -> None:
    """The most listened artists, albums or tracks of a period, with the change of rank
    since the period of the same length just before ("new": not heard then).

    \b
    Examples:
      musiquectl top artists
      musiquectl top albums --period 2025 -n 25
      musiquectl top tracks --period week
      musiquectl top artists --since 2026-06-01 --until 2026-09-01
    """
    exclusive(
        ("--period", period_text), ("--since/--until", since or until), "give one or the other"
    )
    window = _period_window(period_text) if period_text else period(since, until)
    answer = ctx.call("library.top", {"kind": kind, "limit": limit, **window})
    if ctx.json:
        print_json(answer)
        return
    if not answer["items"]:
        echo("no listens in that period", err=True)
        return
    if kind == "artists":
        columns: tuple[str, ...] = ("#", "artist", "listens", "change")
        rows: list[tuple[Any, ...]] = [
            (i["rank"], i["artist"], i["listens"], _change(i)) for i in answer["items"]
        ]
    else:
        name = "album" if kind == "albums" else "title"
        columns = ("#", "artist", name, "listens", "change")
        rows = [
            (i["rank"], i["artist"], i["title"], i["listens"], _change(i)) for i in answer["items"]
        ]
    table(columns, rows)


@click.command()
@click.argument("text", nargs=-1, required=True)
@since_until
@click.option(
    "-n",
    "--limit",
    default=50,
    show_default=True,
    type=click.IntRange(1, wire.MAX_LISTENS),
    help=f"How many listens, at most {wire.MAX_LISTENS:,}.",
)
@click.option("--cursor", metavar="C", help="Go on after an earlier page (its next cursor).")
@pass_context
def search(
    ctx: Context,
    *,
    text: tuple[str, ...],
    since: Moment | None,
    until: Moment | None,
    limit: int,
    cursor: str | None,
) -> None:
    """Listens, newest first, whose artist, album and title hold every word of TEXT, whatever
    the case and accents ("sigur ros" finds "Sigur Rós"). --until jumps to a date.

    \b
    Examples:
      musiquectl search sigur ros
      musiquectl search beyonce --since 2024-01-01 -n 200
      musiquectl search "hoppipolla" --until 2020-06-01
    """
    params: dict[str, Any] = {"q": " ".join(text), "limit": limit, **period(since, until)}
    if cursor:
        params["cursor"] = cursor
    answer = ctx.call("library.search", params)
    if ctx.json:
        print_json(answer)
        return
    if not answer["listens"]:
        echo("no listens match", err=True)
        return
    table(LISTEN_COLUMNS, listen_rows(answer["listens"]), no_wrap=(LISTEN_COLUMNS[0],))
    if answer["next_cursor"]:
        echo(f"more: --cursor {answer['next_cursor']}", err=True)


def _when(listen: dict[str, Any] | None) -> str:
    return local_time(listen["timestamp"]) if listen else "-"


def _paragraphs(text: str | None) -> None:
    """``text`` in full, line by line (each line made visible)."""
    for line in (text or "").splitlines():
        echo(line)


def _months(per_month: list[dict[str, Any]]) -> None:
    rows = [(m["date"][:7], m["listens"]) for m in per_month if m["listens"]]
    if rows:
        echo("")
        table(("month", "listens"), rows)


def _album_params(target: str) -> dict[str, Any]:
    if target.isdecimal():
        return {"id": int(target)}
    for separator in _SEPARATORS:
        artist, found, title = target.partition(separator)
        if found and artist.strip() and title.strip():
            return {"artist": artist.strip(), "title": title.strip()}
    raise click.BadParameter(
        f'{target!r} is neither an album id nor "ARTIST — TITLE"', param_hint="'ALBUM'"
    )


@click.command()
@click.argument("target", metavar='ID|"ARTIST — TITLE"')
@pass_context
def album(ctx: Context, target: str) -> None:
    """An album: its description in full, its tracks with their listens, listens per month,
    first and last listen, Last.fm and Spotify links.

    \b
    Examples:
      musiquectl album 42
      musiquectl album "Sigur Rós — Takk..."
    """
    answer = ctx.call("library.album", _album_params(target))
    if ctx.json:
        print_json(answer)
        return
    key_values(
        [
            ("album", answer["title"]),
            ("artist", answer["artist"]),
            ("id", answer["id"]),
            ("year", answer["release_year"] or "-"),
            ("listens", answer["listens"]),
            ("first listen", _when(answer["first_listen"])),
            ("last listen", _when(answer["last_listen"])),
            ("Last.fm", answer["links"]["lastfm"] or "-"),
            ("Spotify", answer["links"]["spotify"] or "-"),
        ]
    )
    if answer["description"]:
        echo("")
        _paragraphs(answer["description"])
    if answer["tracks"]:
        echo("")
        table(("track", "listens"), [(t["title"], t["listens"]) for t in answer["tracks"]])
    _months(answer["per_month"])


@click.command()
@click.argument("name")
@click.option("--id", "by_id", is_flag=True, help="NAME is the artist's id.")
@pass_context
def artist(ctx: Context, name: str, by_id: bool) -> None:
    """An artist: top albums and tracks, listens per month, first and last listen.

    \b
    Examples:
      musiquectl artist "Sigur Rós"
      musiquectl artist --id 7
    """
    if by_id and not name.isdecimal():
        raise click.BadParameter(f"{name!r} is not an id", param_hint="'NAME'")
    answer = ctx.call("library.artist", {"id": int(name)} if by_id else {"name": name})
    if ctx.json:
        print_json(answer)
        return
    key_values(
        [
            ("artist", answer["artist"]),
            ("id", answer["id"]),
            ("listens", answer["listens"]),
            ("first listen", _when(answer["first_listen"])),
            ("last listen", _when(answer["last_listen"])),
            ("Last.fm", answer["links"]["lastfm"] or "-"),
            ("Spotify", answer["links"]["spotify"] or "-"),
        ]
    )
    if answer["albums"]:
        echo("")
        table(("album", "listens"), [(a["title"], a["listens"]) for a in answer["albums"][:10]])
    if answer["tracks"]:
        echo("")
        table(("track", "listens"), [(t["title"], t["listens"]) for t in answer["tracks"][:10]])
    _months(answer["per_month"])


@click.command()
@click.argument("year", type=click.IntRange(1970, 9998))
@pass_context
def year(ctx: Context, year: int) -> None:
    """A year in review: totals, top fives, artists first heard, the busiest day, the longest
    run of days with listens, listens per month.

    \b
    Examples:
      musiquectl year 2025
    """
    answer = ctx.call("library.year", {"year": year})
    if ctx.json:
        print_json(answer)
        return
    busiest = answer["busiest_day"]
    streak = answer["longest_streak"]
    key_values(
        [
            ("year", answer["year"]),
            ("listens", answer["listens"]),
            ("artists", answer["artists"]),
            ("albums", answer["albums"]),
            ("tracks", answer["tracks"]),
            ("new artists", answer["new_artists_count"]),
            ("days with listens", answer["days_with_listens"]),
            ("busiest day", f"{busiest['day']} ({busiest['listens']})" if busiest else "-"),
            (
                "longest run",
                f"{streak['days']} days, {streak['first']} to {streak['last']}" if streak else "-",
            ),
        ]
    )
    for title, key, named in (
        ("top artists", "top_artists", False),
        ("top albums", "top_albums", True),
        ("top tracks", "top_tracks", True),
    ):
        items = answer[key]
        if items:
            echo("")
            rows: list[tuple[Any, ...]]
            if named:
                rows = [(i["rank"], i["artist"], i["title"], i["listens"]) for i in items]
                table(("#", "artist", title.split()[1][:-1], "listens"), rows, title=title)
            else:
                rows = [(i["rank"], i["artist"], i["listens"]) for i in items]
                table(("#", "artist", "listens"), rows, title=title)
    echo("")
    table(("month", "listens"), [(m["month"], m["listens"]) for m in answer["per_month"]])


COMMANDS = (top, search, album, artist, year)
