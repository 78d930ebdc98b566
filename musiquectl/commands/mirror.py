"""``mirror status|pause|resume``: the ListenBrainz mirror."""

from __future__ import annotations

from typing import Any

import click

from musiquectl.cli import Context, pass_context
from musiquectl.output import count, key_values, local_time, print_result

STATES = {
    "off": "off (set [listenbrainz] enabled and token)",
    "idle": "up to date",
    "sending": "sending",
    "waiting": "waiting for the server's rate limit",
    "paused": "paused (musiquectl mirror resume)",
    "stopped": "stopped: needs a human",
}


def mirror_pairs(status: dict[str, Any]) -> list[tuple[str, Any]]:
    """The mirror's lines for ``mirror status``."""
    state = str(status.get("state", "off"))
    pairs: list[tuple[str, Any]] = [("mirror", STATES.get(state, state))]
    if status.get("user"):
        pairs.append(("user", status["user"]))
    pairs.append(("submitted", count(int(status.get("submitted") or 0), "listen")))
    pairs.append(("pending", count(int(status.get("pending") or 0), "listen")))
    if status.get("refused"):
        pairs.append(("refused", count(int(status["refused"]), "listen")))
    pairs.append(("rate", f"{status.get('rate_per_s') or 0:g} listens/s"))
    if status.get("next_attempt_at") is not None:
        pairs.append(("next attempt", local_time(status["next_attempt_at"])))
    if status.get("last_error"):
        pairs.append(("last error", status["last_error"]))
    return pairs


def render_mirror(status: dict[str, Any]) -> None:
    key_values(mirror_pairs(status))


@click.group()
def mirror() -> None:
    """Inspect, pause or resume the mirror to ListenBrainz (or Maloja, Koito).

    The mirror sends every stored listen to the server in [listenbrainz], once: the
    backlog first, then each new listen.

    \b
    Examples:
      musiquectl mirror status
      musiquectl mirror pause
      musiquectl mirror resume
    """


@mirror.command("status")
@pass_context
def mirror_status(ctx: Context) -> None:
    """Listens submitted and pending, the rate, the last error, the next attempt.

    \b
    Examples:
      musiquectl mirror status
      musiquectl --json mirror status
    """
    print_result(ctx.call("mirror.status"), render_mirror, as_json=ctx.json)


@mirror.command("pause")
@pass_context
def mirror_pause(ctx: Context) -> None:
    """Stop sending; it stays paused across daemon restarts.

    \b
    Example:
      musiquectl mirror pause
    """
    print_result(ctx.call("mirror.pause"), render_mirror, as_json=ctx.json)


@mirror.command("resume")
@pass_context
def mirror_resume(ctx: Context) -> None:
    """Send again what waits, then every new listen.

    \b
    Example:
      musiquectl mirror resume
    """
    print_result(ctx.call("mirror.resume"), render_mirror, as_json=ctx.json)


COMMANDS = (mirror,)
