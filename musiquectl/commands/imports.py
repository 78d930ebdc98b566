"""``import``: start a history import job and follow it to its end."""

from __future__ import annotations

from typing import Any

import click

from musiquectl.cli import Context, pass_context
from musiquectl.follow import start_and_follow
from musiquectl.options import Moment, detach_option, exclusive, period, since_until


def _refuse_contradictions(
    limit: int | None, all_: bool, incremental: bool, since: Moment | None
) -> None:
    exclusive(("LIMIT", limit), ("--all", all_), "LIMIT takes the N most recent, --all all")
    exclusive(
        ("LIMIT", limit),
        ("--incremental", incremental),
        "--incremental takes all that follows the newest stored listen, LIMIT the N most recent",
    )
    exclusive(
        ("--incremental", incremental),
        ("--all", all_),
        "--incremental takes only what follows the newest stored listen, --all the whole history",
    )
    exclusive(
        ("--incremental", incremental),
        ("--since", since),
        "--incremental starts at the newest stored listen, --since at the moment given",
    )


@click.command("import")
@click.argument("limit", required=False, type=click.IntRange(min=1))
@click.option("--all", "all_", is_flag=True, help="The whole history (or window), no limit.")
@since_until
@click.option("--incremental", is_flag=True, help="Only what came after the newest stored listen.")
@click.option(
    "--no-skip-existing",
    "no_skip",
    is_flag=True,
    help="Refresh the album and loved flag of listens already stored (never duplicates).",
)
@detach_option
@pass_context
def import_(
    ctx: Context,
    *,
    limit: int | None,
    all_: bool,
    since: Moment | None,
    until: Moment | None,
    incremental: bool,
    no_skip: bool,
    detach: bool,
) -> None:
    """Import Last.fm history: the LIMIT most recent scrobbles (default 1000).

    Follows the job with a live progress bar and prints a summary at the end. Ctrl-C
    detaches: the import goes on in the daemon (`musiquectl jobs show ID` follows it again).
    --since/--until choose a window ([since, until)); with either, or --incremental, the
    default is everything in the window instead of 1000. Exit status 1 if the job fails or
    is cancelled, 75 if the daemon paused it by itself (no space left), with its error as
    the last line.

    \b
    Examples:
      musiquectl import 500
      musiquectl import --all
      musiquectl import --since 2024-01-01 --until 2024-02-01
      musiquectl import --incremental --detach
    """
    _refuse_contradictions(limit, all_, incremental, since)
    params: dict[str, Any] = {"skip_existing": not no_skip, **period(since, until)}
    if limit is not None:
        params["limit"] = limit
    if all_:
        params["all"] = True
    if incremental:
        params["incremental"] = True
    start_and_follow(ctx.socket_path, "import.start", params, detach=detach, as_json=ctx.json)


COMMANDS = (import_,)
