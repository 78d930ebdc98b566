"""``import`` and ``jobs``: start history imports, follow them live, steer any job.

Following a job: subscribe to ``job`` events on the connection *before* starting (or
reading) the job, so no progress is missed; between events the job is polled every few
seconds as a safety net. A live bar on a terminal (rich, imported only then), one plain
line at most every second otherwise. Ctrl-C only detaches: the job runs in the daemon.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import click

from musiquectl.cli import Context, pass_context
from musiquectl.client import Client
from musiquectl.commands.history import detach_option, since_until
from musiquectl.output import duration, key_values, local_time, print_json, print_result, table

FOLLOWED = frozenset({"queued", "running"})
POLL_S = 3.0
LINE_EVERY_S = 1.0


def _progress_line(job: dict[str, Any]) -> str:
    done, total = job.get("pages_done", 0), job.get("pages_total", 0)
    percent = f" ({100 * done // total}%)" if total else ""
    eta = job.get("eta_s")
    return (
        f"job {job['job_id']}: {job['state']}, page {done}/{total or '?'}{percent}, "
        f"{job.get('tracks_imported', 0)} imported, {job.get('tracks_skipped', 0)} skipped, "
        f"{job.get('tracks_errors', 0)} errors, {job.get('rate_per_s', 0):.0f} scrobbles/s, "
        f"ETA {duration(eta) if eta is not None else '?'}"
    )


class _Lines:
    """Plain progress lines (not a terminal): the first, then at most one per second."""

    def __init__(self) -> None:
        self._last = 0.0

    def update(self, job: dict[str, Any]) -> None:
        now = time.monotonic()
        if now - self._last >= LINE_EVERY_S:
            self._last = now
            click.echo(_progress_line(job))

    def close(self) -> None:
        pass


class _Bar:
    """rich's live bar: pages, scrobbles/s and the daemon's ETA."""

    def __init__(self, job_id: int) -> None:
        from rich.progress import BarColumn, Progress, TextColumn

        self._progress = Progress(
            TextColumn(f"[bold]import job {job_id}[/] {{task.fields[state]}}"),
            BarColumn(),
            TextColumn("page {task.completed}/{task.fields[pages]}"),
            TextColumn("{task.fields[rate]} scrobbles/s"),
            TextColumn("ETA {task.fields[eta]}"),
        )
        self._task = self._progress.add_task(
            "import", total=None, state="queued", pages="?", rate=0, eta="?"
        )
        self._progress.start()

    def update(self, job: dict[str, Any]) -> None:
        total = job.get("pages_total") or None
        eta = job.get("eta_s")
        self._progress.update(
            self._task,
            total=total,
            completed=job.get("pages_done", 0),
            state=job["state"],
            pages=total or "?",
            rate=f"{job.get('rate_per_s', 0):.0f}",
            eta=duration(eta) if eta is not None else "?",
        )

    def close(self) -> None:
        self._progress.stop()


def follow(client: Client, job_id: int, show: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Watch a job on a connection already subscribed to ``job`` events until it stops."""
    job: dict[str, Any] = client.call("import.status", {"job_id": job_id})
    show(job)
    if job["state"] not in FOLLOWED:
        return job
    for event in client.events(POLL_S):
        if event is None:
            job = client.call("import.status", {"job_id": job_id})
        elif event.get("topic") == "job" and (event.get("data") or {}).get("job_id") == job_id:
            job = event["data"]
        else:
            continue
        show(job)
        if job["state"] not in FOLLOWED:
            break
    # The final read counts albums enriched so far, which events do not carry.
    final: dict[str, Any] = client.call("import.status", {"job_id": job_id})
    return final


def _follow_and_report(ctx: Context, client: Client, job_id: int) -> None:
    quiet = ctx.json
    display: _Bar | _Lines | None = None
    if not quiet:
        display = _Bar(job_id) if sys.stdout.isatty() else _Lines()
    try:
        job = follow(client, job_id, display.update if display else lambda _job: None)
    except KeyboardInterrupt:
        if display is not None:
            display.close()
        click.echo(
            f"\ndetached; job {job_id} goes on in the daemon. Follow it again with "
            f"`musiquectl jobs show {job_id}`",
            err=True,
        )
        raise click.exceptions.Exit(0) from None
    if display is not None:
        display.close()
    if quiet:
        print_json(job)
    else:
        render_summary(job)
    if job["state"] in ("failed", "cancelled", "interrupted"):
        raise click.exceptions.Exit(1)


def render_summary(job: dict[str, Any]) -> None:
    """The original script's closing figures, plus the reasons of any error."""
    started, finished = job.get("started_at"), job.get("finished_at")
    took = finished - started if started and finished else job.get("active_s")
    title = {
        "done": "finished",
        "failed": "FAILED",
        "cancelled": "cancelled",
        "paused": "paused",
        "interrupted": "interrupted",
    }.get(job["state"], job["state"])
    click.echo(f"{job['kind'].capitalize()} job {job['job_id']} {title}")
    pairs: list[tuple[str, Any]] = [
        ("duration", duration(took)),
        ("imported", job.get("tracks_imported", 0)),
        ("skipped", job.get("tracks_skipped", 0)),
        ("errors", job.get("tracks_errors", 0)),
        ("albums enriched", job.get("albums_enriched", 0)),
        ("albums to enrich", job.get("total_albums_to_enrich", 0)),
        ("total scrobbles", job.get("total_scrobbles", 0)),
    ]
    key_values([(f"  {k}", v) for k, v in pairs])
    for reason in (job.get("error_reasons") or [])[:5]:
        click.echo(f"  error: {reason}")
    if job.get("error"):
        click.echo(f"musiquectl: job {job['job_id']}: {job['error']}", err=True)
    if job["state"] == "paused":
        click.echo(f"resume with `musiquectl jobs resume {job['job_id']}`")


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
    since: int | str | None,
    until: int | str | None,
    incremental: bool,
    no_skip: bool,
    detach: bool,
) -> None:
    """Import Last.fm history: the LIMIT most recent scrobbles (default 1000).

    Follows the job with a live progress bar and prints a summary at the end. Ctrl-C
    detaches: the import goes on in the daemon (`musiquectl jobs show ID` follows it again).
    --since/--until choose a window ([since, until)); with either, or --incremental, the
    default is everything in the window instead of 1000.

    \b
    Examples:
      musiquectl import 500
      musiquectl import --all
      musiquectl import --since 2024-01-01 --until 2024-02-01
      musiquectl import --incremental --detach
    """
    if all_ and limit is not None:
        raise click.UsageError("give either LIMIT or --all, not both")
    params: dict[str, Any] = {"skip_existing": not no_skip}
    if limit is not None:
        params["limit"] = limit
    for key, value in (
        ("all", all_),
        ("incremental", incremental),
        ("since", since),
        ("until", until),
    ):
        if value:
            params[key] = value
    with ctx.client() as client:
        if not detach:
            client.call("events.subscribe", {"topics": ["job"]})
        job_id = int(client.call("import.start", params)["job_id"])
        if detach:
            if ctx.json:
                print_json({"job_id": job_id})
            else:
                click.echo(
                    f"import job {job_id} started; follow it with `musiquectl jobs show {job_id}`"
                )
            return
        if not ctx.json:
            click.echo(f"import job {job_id} started (Ctrl-C detaches, the import goes on)")
        _follow_and_report(ctx, client, job_id)


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
    result = ctx.call("import.list", {"limit": limit})
    if ctx.json:
        print_json(result)
        return
    if not result:
        click.echo("no jobs yet; start one with `musiquectl import`")
        return
    table(
        ("id", "kind", "state", "created", "pages", "imported", "skipped", "errors", "error"),
        [
            (
                j["job_id"],
                j["kind"],
                j["state"],
                local_time(j["created_at"]),
                f"{j['pages_done']}/{j['pages_total']}",
                j["tracks_imported"],
                j["tracks_skipped"],
                j["tracks_errors"],
                j.get("error") or "",
            )
            for j in result
        ],
    )


def render_job(job: dict[str, Any]) -> None:
    window = job.get("window") or {}
    pairs: list[tuple[str, Any]] = [
        ("job", f"{job['job_id']} ({job['kind']})"),
        ("state", job["state"]),
        ("params", " ".join(f"{k}={v}" for k, v in job["params"].items() if v is not None)),
        (
            "window",
            f"{local_time(window.get('from')) if window.get('from') else 'beginning'} → "
            f"{local_time(window.get('to'))}",
        ),
        ("created", local_time(job["created_at"])),
        ("started", local_time(job.get("started_at"))),
        ("finished", local_time(job.get("finished_at"))),
        ("pages", f"{job['pages_done']}/{job['pages_total']}"),
        ("imported", job["tracks_imported"]),
        ("skipped", job["tracks_skipped"]),
        ("errors", job["tracks_errors"]),
        ("albums enriched", f"{job['albums_enriched']}/{job['total_albums_to_enrich']}"),
        ("total scrobbles", job["total_scrobbles"]),
        ("rate", f"{job['rate_per_s']} scrobbles/s"),
    ]
    if job.get("eta_s") is not None and job["state"] in FOLLOWED:
        pairs.append(("eta", duration(job["eta_s"])))
    if job.get("error"):
        pairs.append(("error", job["error"]))
    key_values(pairs)
    for reason in (job.get("error_reasons") or [])[:10]:
        click.echo(f"  {reason}")


@jobs.command()
@click.argument("job_id", type=int)
@click.option("--no-follow", is_flag=True, help="Print the job once, even if it is running.")
@pass_context
def show(ctx: Context, job_id: int, no_follow: bool) -> None:
    """One job; a running one is followed live until it stops (Ctrl-C detaches).

    \b
    Examples:
      musiquectl jobs show 3
      musiquectl --json jobs show 3
    """
    with ctx.client() as client:
        if ctx.json or no_follow:
            print_result(
                client.call("import.status", {"job_id": job_id}), render_job, as_json=ctx.json
            )
            return
        client.call("events.subscribe", {"topics": ["job"]})
        job = client.call("import.status", {"job_id": job_id})
        if job["state"] not in FOLLOWED:
            render_job(job)
            return
        _follow_and_report(ctx, client, job_id)


def _steer(name: str, summary: str) -> click.Command:
    @click.command(name=name, help=f"{summary}\n\n\b\nExample:\n  musiquectl jobs {name} 3")
    @click.argument("job_id", type=int)
    @pass_context
    def steer(ctx: Context, job_id: int) -> None:
        job = ctx.call(f"import.{name}", {"job_id": job_id})
        if ctx.json:
            print_json(job)
        else:
            click.echo(f"job {job_id}: {job['state']}")

    return steer


for _name, _summary in (
    ("cancel", "Cancel a job; the listens it already stored stay."),
    ("pause", "Pause a job at its last committed page."),
    ("resume", "Resume a paused, failed or interrupted job from its checkpoint."),
):
    jobs.add_command(_steer(_name, _summary))

COMMANDS = (import_, jobs)
