"""``import-file``: import other services' listening files, matched against the history.

``musiquectl`` opens each PATH itself and hands the open files to the daemon
(``musiquectl.files``): the daemon, under systemd a user of its own, never opens a path.
"""

from __future__ import annotations

from typing import Any

import click

from musiquectl.cli import Context, pass_context
from musiquectl.client import Client, DaemonError
from musiquectl.files import FileRefused, OpenedFiles, hand_over, import_params, open_files
from musiquectl.follow import follow, open_live
from musiquectl.jobs_view import file_pairs
from musiquectl.options import detach_option
from musiquectl.output import echo, key_values, print_json

FORMATS = ("auto", "spotify", "listenbrainz", "maloja", "lastfm-csv", "scrobbler-log")
BAD_FILE_KINDS = {"unknown_format", "not_utf8", "broken_json", "broken_zip"}
TIMEOUT_S = 600
"""A dry run answers once it has read every file."""


class FileNotImported(click.ClickException):
    """A file cannot be imported (none of the formats, cannot be opened): exit status 2."""

    exit_code = 2


def _start(ctx: Context, opened: OpenedFiles, *, fmt: str, dry_run: bool) -> Any:
    params = import_params(opened, fmt=fmt, dry_run=dry_run)
    try:
        with Client(ctx.socket_path, timeout=TIMEOUT_S) as client:
            return client.call(
                "import.file", params, hand_over=lambda sock: hand_over(sock, opened)
            )
    except DaemonError as exc:
        kind = exc.data.get("kind") if isinstance(exc.data, dict) else None
        if kind in BAD_FILE_KINDS:
            raise FileNotImported(exc.message) from None
        raise


def _summary(summary: dict[str, Any]) -> None:
    key_values([(f"  {k}", v) for k, v in file_pairs(summary)])


@click.command("import-file")
@click.argument("paths", nargs=-1, required=True, type=click.Path(dir_okay=True))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="auto",
    show_default=True,
    help="The files' format; auto tells it from each file's name and content.",
)
@click.option("--dry-run", is_flag=True, help="Print what the import would do; store nothing.")
@detach_option
@pass_context
def import_file(
    ctx: Context, /, *, paths: tuple[str, ...], fmt: str, dry_run: bool, detach: bool
) -> None:
    """Import listens from other services' files, matched against the history.

    Spotify's streaming history (Streaming_History_Audio_*.json, endsong_*.json,
    StreamingHistory*.json), a ListenBrainz export (its zip, .jsonl or JSON array), a
    Maloja export, a Last.fm CSV (artist,album,title,date) or a .scrobbler.log. A play is
    already stored when a listen of the same artist and title (case and accents aside)
    starts within [import] match_window_s of it. The summary says added, already stored,
    skipped (by reason) and unreadable, which add up to the entries read. The import is a
    job (pause, resume, cancel; `musiquectl jobs undo ID` removes what it added). A file
    that is none of the formats is refused, nothing stored (exit status 2).

    \b
    Examples:
      musiquectl import-file ~/Downloads/Streaming_History_Audio_*.json
      musiquectl import-file --dry-run listens.zip
      musiquectl import-file --format lastfm-csv --detach scrobbles.csv
    """
    try:
        opened = open_files(paths)
    except FileRefused as exc:
        raise FileNotImported(str(exc)) from None
    with opened:
        if dry_run:
            summary = _start(ctx, opened, fmt=fmt, dry_run=True)
            if ctx.json:
                print_json(summary)
                return
            echo("Dry run: nothing stored")
            _summary(summary)
            if summary.get("error"):
                echo(f"  {summary['error']}")
            return
        if detach:
            job_id = _start(ctx, opened, fmt=fmt, dry_run=False)["job_id"]
            if ctx.json:
                print_json({"job_id": job_id})
            else:
                echo(f"file job {job_id} started; follow it with `musiquectl jobs show {job_id}`")
            return
        with open_live(ctx.socket_path) as live:
            # Subscribed before the job exists: none of its events is missed.
            job_id = int(_start(ctx, opened, fmt=fmt, dry_run=False)["job_id"])
            if not ctx.json:
                echo(f"file job {job_id} started (Ctrl-C detaches, the job goes on)")
            follow(live, job_id, as_json=ctx.json)


COMMANDS = (import_file,)
