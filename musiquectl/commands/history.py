"""``history``, ``stats``, ``export`` and ``verify``: reading, exporting and checking the history.

``export`` streams ``history.list`` pages straight to the output, so memory stays flat in
both processes whatever the size of the history; a file is written under a temporary name
in the same directory and renamed only once complete.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import click

from musiquectl.cli import Context, pass_context
from musiquectl.client import Client
from musiquectl.output import key_values, local_time, print_json, print_result, table

LISTEN_FIELDS = (
    "timestamp",
    "date",
    "artist",
    "title",
    "album",
    "artist_mbid",
    "album_mbid",
    "track_mbid",
    "source",
)
EXPORT_PAGE = 2000
FINISHED = frozenset({"done", "failed", "cancelled", "interrupted"})
_RELATIVE = re.compile(r"^(\d+)([smhdw])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _moment(_ctx: click.Context, _param: click.Parameter, value: str | None) -> int | str | None:
    """Unix seconds or ISO 8601 go to the daemon as given; ``7d``, ``12h`` mean "ago"."""
    if value is None:
        return None
    match = _RELATIVE.match(value.strip())
    if match:
        return int(time.time()) - int(match.group(1)) * _UNIT_S[match.group(2)]
    return value


_SINCE_HELP = (
    "From this moment (inclusive): Unix seconds, ISO 8601 (naive means UTC), or 7d/12h ago."
)
_UNTIL_HELP = "Up to this moment (exclusive); same forms as --since."


def since_until(command: Any) -> Any:
    command = click.option("--until", metavar="D", callback=_moment, help=_UNTIL_HELP)(command)
    return click.option("--since", metavar="D", callback=_moment, help=_SINCE_HELP)(command)


def detach_option(command: Any) -> Any:
    return click.option(
        "--detach", is_flag=True, help="Start the job, print its id and return at once."
    )(command)


def _period(since: int | str | None, until: int | str | None) -> dict[str, Any]:
    return {k: v for k, v in (("since", since), ("until", until)) if v is not None}


def _listen_rows(listens: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (local_time(x["timestamp"]), x["artist"], x["title"], x.get("album") or "", x["source"])
        for x in listens
    ]


@click.command()
@click.option("-n", "--limit", "limit", default=20, show_default=True, type=click.IntRange(1, 5000))
@since_until
@pass_context
def history(ctx: Context, limit: int, since: int | str | None, until: int | str | None) -> None:
    """Recent listens (newest first), or a period's listens (oldest first).

    \b
    Examples:
      musiquectl history -n 50
      musiquectl history --since 2024-05-01 --until 2024-05-02
      musiquectl history --since 3d -n 100
    """
    if since is None and until is None:
        listens = ctx.call("history.recent", {"limit": limit})
        if ctx.json:
            print_json(listens)
            return
    else:
        result = ctx.call("history.list", {**_period(since, until), "limit": limit})
        if ctx.json:
            print_json(result)
            return
        listens = result["listens"]
    if not listens:
        click.echo("no listens", err=True)
        return
    table(("played (local)", "artist", "title", "album", "source"), _listen_rows(listens))


def _bar(count: int, peak: int, width: int = 40) -> str:
    return "█" * max(1, round(count / peak * width)) if count and peak else ""


def render_stats(stats: dict[str, Any]) -> None:
    first, last = stats.get("first_listen"), stats.get("last_listen")
    key_values(
        [
            ("listens", stats["listens"]),
            ("artists", stats["artists"]),
            ("albums", stats["albums"]),
            ("tracks", stats["tracks"]),
            ("first listen", _describe(first)),
            ("last listen", _describe(last)),
            ("days with listens", len(stats["per_day"])),
        ]
    )
    if stats["top_artists"]:
        click.echo()
        table(
            ("#", "artist", "listens"),
            [(i, a["artist"], a["listens"]) for i, a in enumerate(stats["top_artists"], 1)],
            title="Top artists",
        )
    if stats["top_albums"]:
        click.echo()
        table(
            ("#", "album", "artist", "listens"),
            [
                (i, a["album"], a["artist"], a["listens"])
                for i, a in enumerate(stats["top_albums"], 1)
            ],
            title="Top albums",
        )
    days = stats["per_day"][-14:]
    if days:
        click.echo()
        peak = max(d["listens"] for d in days)
        table(
            ("day (UTC)", "listens", ""),
            [(d["day"], d["listens"], _bar(d["listens"], peak)) for d in days],
            title="Listens per day (last 14 days with listens)",
        )


def _describe(listen: dict[str, Any] | None) -> str:
    if not listen:
        return "-"
    return f"{local_time(listen['timestamp'])}  {listen['artist']} — {listen['title']}"


@click.command()
@since_until
@pass_context
def stats(ctx: Context, since: int | str | None, until: int | str | None) -> None:
    """Counts, first and last listen, top artists and albums, listens per day.

    \b
    Examples:
      musiquectl stats
      musiquectl stats --since 2024-01-01 --until 2025-01-01
      musiquectl --json stats --since 30d
    """
    print_result(ctx.call("stats.summary", _period(since, until)), render_stats, as_json=ctx.json)


# -- export ------------------------------------------------------------------------------


def iter_pages(
    client: Client, period: dict[str, Any], page_size: int
) -> Iterator[list[dict[str, Any]]]:
    """``history.list`` pages, oldest first, one in memory at a time."""
    after: str | None = None
    while True:
        params = {**period, "limit": page_size}
        if after is not None:
            params["after"] = after
        result = client.call("history.list", params)
        yield result["listens"]
        after = result["next"]
        if after is None:
            return


def write_listens(out: IO[str], fmt: str, pages: Iterator[list[dict[str, Any]]]) -> int:
    """Write every listen in ``fmt``; returns how many."""
    count = 0
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180: CRLF line ends
        writer.writerow(LISTEN_FIELDS)
        for page in pages:
            writer.writerows(
                ["" if (v := x.get(f)) is None else v for f in LISTEN_FIELDS] for x in page
            )
            count += len(page)
    elif fmt == "jsonl":
        for page in pages:
            out.write("".join(_json_listen(x) + "\n" for x in page))
            count += len(page)
    else:
        out.write("[")
        for page in pages:
            for x in page:
                out.write(("\n" if count == 0 else ",\n") + _json_listen(x))
                count += 1
        out.write("\n]\n" if count else "]\n")
    return count


def _json_listen(listen: dict[str, Any]) -> str:
    return json.dumps({f: listen.get(f) for f in LISTEN_FIELDS}, ensure_ascii=False)


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[IO[str]]:
    """A temporary file beside ``path``, renamed over it on success, removed on any failure."""
    directory = path.parent if str(path.parent) else Path()
    try:
        fd, temp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".part")
    except OSError as exc:
        raise click.FileError(str(path), hint=exc.strerror or str(exc)) from None
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp's 0600 would surprise; honour the umask
        with open(fd, "w", encoding="utf-8", newline="") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


@click.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "json", "jsonl"]),
    required=True,
    help="csv: RFC 4180 with a header; json: one array; jsonl: one listen per line.",
)
@since_until
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write to FILE atomically (temporary file, then rename); default: stdout.",
)
@click.option("--page-size", default=EXPORT_PAGE, hidden=True, type=click.IntRange(1, 5000))
@pass_context
def export(
    ctx: Context,
    /,
    fmt: str,
    output: Path | None,
    page_size: int,
    **period_options: int | str | None,
) -> None:
    """Export listens, oldest first, with every field of a listen.

    Fields: timestamp (Unix seconds, UTC), date (ISO 8601 UTC), artist, title, album,
    artist_mbid, album_mbid, track_mbid, source. Streams page by page, so any size fits
    in a few megabytes of memory.

    \b
    Examples:
      musiquectl export --format csv -o listens.csv
      musiquectl export --format jsonl --since 2024-01-01 | gzip > 2024.jsonl.gz
      musiquectl export --format json --since 7d | jq length
    """
    period = _period(period_options["since"], period_options["until"])
    if output is None:
        with (
            ctx.client(timeout=300) as client,
            open(sys.stdout.fileno(), "w", encoding="utf-8", newline="", closefd=False) as out,
        ):
            write_listens(out, fmt, iter_pages(client, period, page_size))
        return
    # The file first: a bad path fails before the daemon is asked for anything.
    with atomic_file(output) as out, ctx.client(timeout=300) as client:
        count = write_listens(out, fmt, iter_pages(client, period, page_size))
    if not ctx.json:
        click.echo(f"exported {count} listens to {output}", err=True)


# -- verify ------------------------------------------------------------------------------


def follow_job(ctx: Context, job_id: int, label: str) -> dict[str, Any]:
    """Poll the job until it finishes; a progress line on a terminal. Ctrl-C detaches."""
    tty = sys.stderr.isatty() and not ctx.json
    with ctx.client() as client:
        try:
            while True:
                job: dict[str, Any] = client.call("import.status", {"job_id": job_id})
                if tty:
                    done, total = job.get("pages_done", 0), job.get("pages_total", 0)
                    click.echo(
                        f"\r{label} job {job_id}: {job['state']}, {done}/{total or '?'} days "
                        f"checked, {job.get('tracks_imported', 0)} listens added   ",
                        err=True,
                        nl=False,
                    )
                if job["state"] in FINISHED:
                    if tty:
                        click.echo(err=True)
                    return job
                time.sleep(0.5)
        except KeyboardInterrupt:
            if tty:
                click.echo(err=True)
            click.echo(f"detached; job {job_id} goes on (musiquectl jobs show {job_id})", err=True)
            raise SystemExit(0) from None


def render_verify(job: dict[str, Any]) -> None:
    result = job.get("result") or {}
    pairs: list[tuple[str, Any]] = [
        ("job", f"{job['job_id']} ({job['state']})"),
        ("days checked", result.get("days_checked", job.get("pages_done", 0))),
        ("days different", result.get("days_different", "-")),
        ("listens added", result.get("listens_added", job.get("tracks_imported", 0))),
        ("listens only here", result.get("listens_only_here", "-")),
    ]
    if job.get("error"):
        pairs.append(("error", job["error"]))
    key_values(pairs)
    sample = result.get("only_here_sample") or []
    if sample:
        click.echo()
        table(
            ("played (local)", "artist", "title", "album", "source"),
            _listen_rows(sample),
            title="Listens held here that Last.fm no longer has (kept, not deleted)",
        )


@click.command()
@since_until
@click.option(
    "--no-repair",
    is_flag=True,
    help="Only compare and report; do not add the listens Last.fm has and we lack.",
)
@detach_option
@pass_context
def verify(
    ctx: Context,
    since: int | str | None,
    until: int | str | None,
    no_repair: bool,
    detach: bool,
) -> None:
    """Compare each UTC day's listens with Last.fm; re-fetch and repair the days that differ.

    Listens held here that Last.fm no longer has are reported, never deleted. Ctrl-C
    detaches: the job goes on in the daemon.

    \b
    Examples:
      musiquectl verify --since 30d
      musiquectl verify --since 2024-01-01 --until 2024-02-01 --no-repair
    """
    started = ctx.call("verify.start", {**_period(since, until), "repair": not no_repair})
    job_id = int(started["job_id"])
    if detach:
        print_json(started) if ctx.json else click.echo(f"verify job {job_id} started")
        return
    job = follow_job(ctx, job_id, "verify")
    if ctx.json:
        print_json(job)
    else:
        render_verify(job)
    if job["state"] != "done":
        raise SystemExit(1)


COMMANDS = (history, stats, export, verify)
