"""``jobs``: list import and verify jobs; show, follow, pause, resume or cancel one."""

from __future__ import annotations

from typing import Any

import click

from musiquectl.cli import Context, pass_context
from musiquectl.follow import follow, open_live, report
from musiquectl.jobs_view import ACTIVE, render_job
from musiquectl.output import echo, local_time, number, print_json, table


def _progress(job: dict[str, Any]) -> str:
    unit = "days" if job["kind"] == "verify" else "pages"
    total = job["pages_total"]
    return f"{number(job['pages_done'])}/{number(total) if total else '?'} {unit}"


@click.group(invoke_without_command=True)
@click.option("--limit", "-n", default=20, show_default=True, type=click.IntRange(1, 1000))
@click.pass_context
def jobs(click_ctx: click.Context, limit: int) -> None:
    """Import and verify jobs, newest first; show, cancel, pause or resume one.

    \b
    Examples:
      musiquectl jobs
      musiquectl jobs show 3
      musiquectl jobs pause 3
    """
    if click_ctx.invoked_subcommand is not None:
        return
    ctx: Context = click_ctx.ensure_object(Context)
    result = ctx.call("jobs.list", {"limit": limit})
    if ctx.json:
        print_json(result)
        return
    if not result:
        echo("no jobs yet; start one with `musiquectl import`", err=True)
        return
    table(
        ("id", "kind", "state", "created", "progress", "imported", "skipped", "errors", "error"),
        [
            (
                str(j["job_id"]),  # an id, not a count: no thousands separator
                j["kind"],
                j["state"],
                local_time(j["created_at"]),
                _progress(j),
                j["tracks_imported"],
                j["tracks_skipped"],
                j["tracks_errors"],
                j.get("error") or "",
            )
            for j in result
        ],
        no_wrap=("created",),
    )


@jobs.command()
@click.argument("job_id", type=int)
@click.option("--no-follow", is_flag=True, help="Print the job once, even if it is running.")
@pass_context
def show(ctx: Context, job_id: int, no_follow: bool) -> None:
    """One job; a running one is followed live until it stops (Ctrl-C detaches).

    Exit status 1 if the job failed, was cancelled or is interrupted, 75 if the daemon
    paused it by itself (no space left); its error is the last line.

    \b
    Examples:
      musiquectl jobs show 3
      musiquectl --json jobs show 3
    """
    if ctx.json or no_follow:
        report(ctx.call("jobs.get", {"job_id": job_id}), as_json=ctx.json, render=render_job)
        return
    with open_live(ctx.socket_path) as live:
        job = live.call("jobs.get", {"job_id": job_id})
        if job["state"] in ACTIVE:
            follow(live, job_id, as_json=False)
        else:
            report(job, as_json=False, render=render_job)


_ALREADY = {"pause": ("paused",), "cancel": ("cancelled",), "resume": tuple(ACTIVE)}


def _steer(name: str, summary: str) -> click.Command:
    @click.command(name=name, help=f"{summary}\n\n\b\nExample:\n  musiquectl jobs {name} 3")
    @click.argument("job_id", type=int)
    @pass_context
    def steer(ctx: Context, job_id: int) -> None:
        with ctx.client() as client:
            job = client.call("jobs.get", {"job_id": job_id})
            already = job["state"] in _ALREADY[name]
            if not already:
                job = client.call(f"jobs.{name}", {"job_id": job_id})
        if ctx.json:
            print_json(job)
        elif already:
            echo(f"job {job_id} is already {job['state']}; nothing to do")
        else:
            echo(f"job {job_id}: {job['state']}")

    return steer


for _name, _summary in (
    ("cancel", "Cancel a job; the listens it already stored stay."),
    ("pause", "Pause a job at its last committed page."),
    ("resume", "Resume a paused, failed or interrupted job from its checkpoint."),
):
    jobs.add_command(_steer(_name, _summary))


@jobs.command()
@click.argument("job_id", type=int)
@pass_context
def undo(ctx: Context, job_id: int) -> None:
    """Remove exactly the listens file import JOB_ID added (import-file).

    The running totals, statistics and exports follow. Refused, with why, for a Last.fm
    import (its listens are the history itself) and for a job still active (cancel it
    first).

    \b
    Example:
      musiquectl jobs undo 7
    """
    result = ctx.call("jobs.undo", {"job_id": job_id})
    if ctx.json:
        print_json(result)
    else:
        echo(f"job {job_id}: removed {result['removed']} listens it had added")


COMMANDS = (jobs,)
