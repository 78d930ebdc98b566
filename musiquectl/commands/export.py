"""``export``: every listen of a period, exact, as CSV, JSON or JSON lines.

The daemon formats the listens as it reads them and streams the text (``history.export``);
``export`` writes each part as it arrives, so memory stays flat in both processes whatever
the size of the history. A file is written under a temporary name in the same directory and
renamed only once complete. The data is written as stored (no control character is
altered): it is data for programs, not a display.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import click

from musiquectl.cli import Context, pass_context
from musiquectl.options import Moment, period, since_until
from musiquectl.output import echo, number, print_json

STDOUT = "-"
TIMEOUT_S = 300
"""How long a silent daemon is waited for; a running export never pauses that long."""


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


def _target(output: str | None) -> Path | None:
    """The file to write (None: standard output); a directory that is not there is a
    usage error, found before the daemon is asked anything."""
    if output is None or output == STDOUT:
        return None
    path = Path(output)
    directory = path.parent if str(path.parent) else Path()
    if not directory.is_dir():
        raise click.UsageError(f"-o {output}: no directory {directory} to write it in")
    if path.is_dir():
        raise click.UsageError(f"-o {output}: that is a directory; name a file in it")
    return path


FORMATS = {
    "csv": ".csv",
    "json": ".json",
    "jsonl": ".jsonl",
    "listenbrainz": ".listens.jsonl",
    "maloja": ".maloja.json",
}
"""Each format the daemon writes (``history.export``) and the file extension that chooses
it: a new format is one line here."""


def _format(fmt: str | None, target: Path | None, output: str | None) -> str:
    """``--format``, else the one ``-o FILE``'s extension names; a usage error if neither."""
    if fmt is not None:
        return fmt
    if target is not None:
        name = target.name.lower()
        # The longest extension first: x.listens.jsonl is ListenBrainz's, not plain jsonl.
        for fmt_name, extension in sorted(FORMATS.items(), key=lambda item: -len(item[1])):
            if name.endswith(extension):
                return fmt_name
    extensions = ", ".join(FORMATS.values())
    if target is None:
        raise click.UsageError(
            f"--format is needed when writing to stdout; choose from: {', '.join(FORMATS)}"
        )
    raise click.UsageError(
        f"-o {output}: cannot tell the format from its extension ({extensions}); "
        f"give --format ({', '.join(FORMATS)})"
    )


@click.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(list(FORMATS)),
    help="csv: RFC 4180 with a header; json: one array; jsonl: one listen per line; "
    "listenbrainz: ListenBrainz's listen JSON, one per line; maloja: Maloja's export JSON. "
    "Default: from -o FILE's extension (.csv, .json, .jsonl, .listens.jsonl, .maloja.json).",
)
@since_until
@click.option(
    "-o",
    "--output",
    metavar="FILE",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Write to FILE atomically (temporary file, then rename); - or none: stdout.",
)
@pass_context
def export(
    ctx: Context,
    /,
    *,
    fmt: str | None,
    output: str | None,
    since: Moment | None,
    until: Moment | None,
) -> None:
    """Export listens, oldest first, with every field of a listen.

    Fields: timestamp (Unix seconds, UTC), date (ISO 8601 UTC), artist, title, album,
    artist_mbid, album_mbid, track_mbid, source (import, tracker, file), origin (lastfm or
    the imported file's format), spotify_id, loved (listenbrainz and maloja: those services'
    own shapes, which they import). Written as the daemon reads them, so any
    size fits in a few megabytes of memory. With -o FILE, --json prints a summary
    ({"exported", "format", "path"}) once the file is complete.

    \b
    Examples:
      musiquectl export -o listens.csv
      musiquectl export --format jsonl --since 2024-01-01 | gzip > 2024.jsonl.gz
      musiquectl export --format json --since 7d -o - | jq length
      musiquectl export -o history.listens.jsonl    # ListenBrainz's format
    """
    target = _target(output)
    fmt = _format(fmt, target, output)
    params = {**period(since, until), "format": fmt}
    if target is None:
        with (
            ctx.client(timeout=TIMEOUT_S) as client,
            open(sys.stdout.fileno(), "w", encoding="utf-8", newline="", closefd=False) as out,
        ):
            client.call("history.export", params, stream=out.write)
        return
    # The file first: a bad path fails before the daemon is asked for anything.
    with atomic_file(target) as out, ctx.client(timeout=TIMEOUT_S) as client:
        exported = client.call("history.export", params, stream=out.write)["exported"]
    if ctx.json:
        print_json({"exported": exported, "format": fmt, "path": str(target.resolve())})
    else:
        echo(f"exported {number(exported)} listens to {target}", err=True)


COMMANDS = (export,)
