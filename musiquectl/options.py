"""Options several commands share, and the checks that make a bad one a usage error (exit 2)
before the daemon is asked anything, worded the same in every command."""

from __future__ import annotations

import time
from typing import Any, NamedTuple

import click

from musiquectl.output import local_time
from musiqued.timespec import DAY, FORMS, MomentError, is_calendar, parse_duration, parse_moment


class Moment(NamedTuple):
    """A ``--since``/``--until`` value: as typed, and in Unix seconds."""

    text: str
    at: int

    def __str__(self) -> str:
        return f"{self.text} ({local_time(self.at)} local time)"


def _moment(_ctx: click.Context, _param: click.Parameter, value: str | None) -> Moment | None:
    if value is None:
        return None
    try:
        return Moment(value, parse_moment(value, time.time()))
    except MomentError as exc:
        raise click.BadParameter(str(exc)) from None


def interval_option(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> float | None:
    """A duration of at least one second (``--interval 2.5``, ``--interval 1m``)."""
    if value is None:
        return None
    try:
        seconds = parse_duration(value)
    except MomentError as exc:
        raise click.BadParameter(str(exc)) from None
    if seconds < 1:
        raise click.BadParameter(f"{value!r} is shorter than 1 second")
    if seconds > DAY:
        raise click.BadParameter(f"{value!r} is longer than a day")
    return seconds


_SINCE_HELP = f"From this moment (inclusive): {FORMS}; an age means that long ago."
_UNTIL_HELP = "Up to this moment (exclusive); same forms as --since."


def since_until(command: Any) -> Any:
    command = click.option("--until", metavar="D", callback=_moment, help=_UNTIL_HELP)(command)
    return click.option("--since", metavar="D", callback=_moment, help=_SINCE_HELP)(command)


def detach_option(command: Any) -> Any:
    return click.option(
        "--detach", is_flag=True, help="Start the job, print its id and return at once."
    )(command)


def period(since: Moment | None, until: Moment | None) -> dict[str, int | str]:
    """The RPC's ``since``/``until``; a window that cannot hold anything is a usage error.

    A day (``2026-12-06``, ``today``) goes as written: the daemon reads it in the user's zone
    (``[daemon] timezone``), which may not be this machine's."""
    if since is not None and since.at > time.time():
        raise click.UsageError(f"--since {since} is in the future")
    if since is not None and until is not None and until.at <= since.at:
        raise click.UsageError(f"--since {since} is not before --until {until}")
    chosen = (("since", since), ("until", until))
    return {key: moment_param(value) for key, value in chosen if value is not None}


def moment_param(moment: Moment) -> int | str:
    return moment.text.strip() if is_calendar(moment.text) else moment.at


def exclusive(first: tuple[str, object], second: tuple[str, object], why: str) -> None:
    """Refuse two options that contradict each other, naming both and why."""
    if first[1] not in (None, False) and second[1] not in (None, False):
        raise click.UsageError(f"{first[0]} and {second[0]} contradict each other: {why}")
