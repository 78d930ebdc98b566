"""``status``, ``reload`` and ``call``."""

from __future__ import annotations

import json
from typing import Any

import click

from musiquectl.cli import Context, pass_context
from musiquectl.commands.tracker import tracker_pairs
from musiquectl.live import LiveConnection
from musiquectl.output import (
    clear_screen,
    duration,
    echo,
    key_values,
    number,
    on_terminal,
    print_json,
    print_json_line,
    print_result,
    warn,
)

REFRESH_S = 5.0


def render_status(status: dict[str, Any]) -> None:
    configured = status.get("configured") or {}
    tracker = status.get("tracker") or {}
    enrichment = status.get("enrichment") or {}
    pairs: list[tuple[str, Any]] = [
        (
            "musiqued",
            f"{status['version']} (pid {status['pid']}, up {duration(status['uptime_s'])})",
        ),
        ("state", status.get("status", "-")),
        ("database", status["database"]),
        ("socket", status["socket"]),
        ("listens", status["listens"]),
        (
            "configured",
            ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in configured.items()),
        ),
    ]
    if tracker:
        pairs += tracker_pairs(tracker, detailed=False)
    for job in status.get("jobs") or []:
        done, total = job.get("pages_done", 0), job.get("pages_total", 0)
        pairs.append(
            (f"job {job['job_id']}", f"{job['kind']} {job['state']}, page {done}/{total or '?'}")
        )
    if enrichment:
        pairs.append(
            (
                "enrichment",
                f"{number(enrichment.get('pending', 0))} pending, {number(enrichment.get('done', 0))} done, "
                f"{number(enrichment.get('failed', 0))} failed",
            )
        )
    mirror = status.get("mirror") or {}
    if mirror.get("enabled"):
        state = mirror.get("last_error") if mirror.get("state") == "stopped" else mirror["state"]
        pairs.append(("mirror", f"{state}, {number(mirror.get('pending', 0))} pending"))
    key_values(pairs)


@click.command()
@click.option(
    "--watch",
    is_flag=True,
    help="Redraw every 5 seconds (and when the daemon reports a change) until Ctrl-C.",
)
@pass_context
def status(ctx: Context, watch: bool) -> None:
    """The daemon, tracker, jobs and enrichment at a glance.

    With --watch, it survives a daemon restart (a notice on stderr, then it carries on);
    --json --watch prints one JSON document per line. Ctrl-C ends it with status 0.

    \b
    Examples:
      musiquectl status
      musiquectl status --watch
    """
    if not watch:
        print_result(ctx.call("daemon.status"), render_status, as_json=ctx.json)
        return
    try:
        _watch(ctx)
    except KeyboardInterrupt:
        return


def _watch(ctx: Context) -> None:
    # Subscribed to the daemon's own events: a reload redraws at once, and a subscriber is
    # never closed as idle between two redraws.
    with LiveConnection(ctx.socket_path, ("daemon",), notice=warn) as live:
        first = True
        while True:
            result = live.call("daemon.status")
            if ctx.json:
                print_json_line(result)
            else:
                if on_terminal():
                    clear_screen()
                elif not first:
                    echo()
                render_status(result)
            first = False
            live.next_event(REFRESH_S)


@click.command()
@pass_context
def reload(ctx: Context) -> None:
    """Re-read the daemon's configuration (same as SIGHUP).

    \b
    Example:
      musiquectl reload
    """
    result = ctx.call("daemon.reload")
    if ctx.json:
        print_json(result)
    else:
        changed = ", ".join(result.get("changed") or []) or "nothing"
        echo(f"reloaded; changed: {changed}")
        if result.get("needs_restart"):
            echo(f"needs a restart: {', '.join(result['needs_restart'])} (kept as it was)")


@click.command()
@click.argument("method")
@click.argument("params", required=False)
@pass_context
def call(ctx: Context, method: str, params: str | None) -> None:
    """Raw JSON-RPC call; prints the result as JSON.

    \b
    Example:
      musiquectl call import.status '{"job_id": 1}'
    """
    parsed: Any = None
    if params is not None:
        try:
            parsed = json.loads(params)
        except json.JSONDecodeError as exc:
            raise click.BadParameter(f"not JSON: {exc}", param_hint="PARAMS") from None
        if not isinstance(parsed, dict | list):
            raise click.BadParameter("must be a JSON object or array", param_hint="PARAMS")
    print_json(ctx.call(method, parsed))


COMMANDS = (status, reload, call)
