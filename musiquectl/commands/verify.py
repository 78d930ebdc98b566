"""``verify``: compare the stored history with Last.fm day by day, as a job."""

from __future__ import annotations

import click

from musiquectl.cli import Context, pass_context
from musiquectl.follow import start_and_follow
from musiquectl.options import Moment, detach_option, period, since_until


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
    since: Moment | None,
    until: Moment | None,
    no_repair: bool,
    detach: bool,
) -> None:
    """Compare each UTC day's listens with Last.fm; re-fetch and repair the days that differ.

    Prints the days that differ, the listens missing here (added unless --no-repair) and
    those only here (Last.fm no longer has them: reported, never deleted). Follows the job
    like an import (a bar on a terminal, progress lines otherwise); Ctrl-C detaches. Exit
    status 1 if the job fails or is cancelled.

    \b
    Examples:
      musiquectl verify --since 30d
      musiquectl verify --since 2024-01-01 --until 2024-02-01 --no-repair
    """
    params = {**period(since, until), "repair": not no_repair}
    start_and_follow(ctx.socket_path, "verify.start", params, detach=detach, as_json=ctx.json)


COMMANDS = (verify,)
