"""``status``, ``reload`` and ``call``."""

from __future__ import annotations

import json
from typing import Any

import click

from musiquectl.cli import Context, pass_context
from musiquectl.commands.tracker import tracker_pairs
from musiquectl.output import duration, key_values, print_json, print_result


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
                f"{enrichment.get('pending', 0)} pending, {enrichment.get('done', 0)} done, "
                f"{enrichment.get('failed', 0)} failed",
            )
        )
    key_values(pairs)


@click.command()
@click.option("--watch", is_flag=True, help="Redraw every 5 seconds until Ctrl-C.")
@pass_context
def status(ctx: Context, watch: bool) -> None:
    """The daemon, tracker, jobs and enrichment at a glance.

    \b
    Example:
      musiquectl status
    """
    if not watch:
        print_result(ctx.call("daemon.status"), render_status, as_json=ctx.json)
        return
    import time

    while True:
        result = ctx.call("daemon.status")
        if ctx.json:
            print_json(result)
        else:
            click.clear()
            render_status(result)
        time.sleep(5)


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
        click.echo(f"reloaded; changed: {changed}")


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
