"""``enrich`` (run, status) and ``albums``: album and artist enrichment."""

from __future__ import annotations

from typing import Any

import click

from musiquectl.cli import Context, pass_context
from musiquectl.output import echo, key_values, local_time, print_json, print_result, table
from musiqued import wire

SOURCES = ("lastfm", "spotify", "ai")
DESCRIPTION_WIDTH = 60


@click.group(invoke_without_command=True)
@click.option(
    "--retry-failed",
    is_flag=True,
    help="Re-queue failed items (and skipped ones whose service is configured now).",
)
@click.option("--regenerate", is_flag=True, help="Write every AI description again.")
@click.pass_context
def enrich(click_ctx: click.Context, retry_failed: bool, regenerate: bool) -> None:
    """Wake the enrichment worker (images, descriptions); `enrich status` shows the queue.

    \b
    Examples:
      musiquectl enrich --retry-failed
      musiquectl enrich status
    """
    if click_ctx.invoked_subcommand is not None:
        return
    ctx: Context = click_ctx.find_object(Context)  # type: ignore[assignment]
    result = ctx.call("enrich.run", {"retry_failed": retry_failed, "regenerate": regenerate})
    if ctx.json:
        print_json(result)
        return
    echo(f"queued {result['queued']} item(s); {result['pending']} pending in all")
    if not result.get("enabled", True):
        echo("enrichment is disabled ([enrichment] enabled = false): nothing will run")


@enrich.command("status")
@pass_context
def enrich_status(ctx: Context) -> None:
    """Queue counts per source (Last.fm, Spotify, AI) and the latest error.

    \b
    Examples:
      musiquectl enrich status
      musiquectl --json enrich status
    """
    print_result(ctx.call("enrich.status"), render_status, as_json=ctx.json)


def render_status(status: dict[str, Any]) -> None:
    key_values(
        [
            ("enabled", "yes" if status.get("enabled", True) else "no"),
            ("pending", status["pending"]),
            ("running", status["running"]),
            ("done", status["done"]),
            ("failed", status["failed"]),
            ("last error", status.get("last_error") or "-"),
        ]
    )
    rows = []
    for source in SOURCES:
        info = status["by_source"].get(source) or {}
        note = info.get("blocked") or ""
        if info.get("paused_until"):
            note = note or f"paused until {local_time(info['paused_until'])}"
        rows.append(
            (
                source,
                "yes" if info.get("configured") else "no",
                info.get("pending", 0),
                info.get("running", 0),
                info.get("done", 0),
                info.get("failed", 0),
                info.get("skipped", 0),
                note or info.get("last_error") or "",
            )
        )
    echo("")
    table(("source", "configured", "pending", "running", "done", "failed", "skipped", "note"), rows)


def _images(album: dict[str, Any]) -> str:
    found = [
        name
        for key, name in (("image_lastfm", "lastfm"), ("image_spotify", "spotify"))
        if album.get(key)
    ]
    return ",".join(found) or "-"


def _start(text: str | None) -> str:
    if not text:
        return ""
    flat = " ".join(text.split())
    return flat if len(flat) <= DESCRIPTION_WIDTH else flat[: DESCRIPTION_WIDTH - 1] + "…"


@click.command()
@click.argument("query", required=False)
@click.option("--artist", help="Only albums whose artist name contains this.")
@click.option(
    "-n",
    "--limit",
    default=50,
    show_default=True,
    type=click.IntRange(min=1),
    help=f"How many albums (asked {wire.MAX_ALBUMS:,} at a time).",
)
@pass_context
def albums(ctx: Context, query: str | None, artist: str | None, limit: int) -> None:
    """Albums, most listened first, with their images and description.

    QUERY matches the album title or the artist name (case-insensitive substring).

    \b
    Examples:
      musiquectl albums
      musiquectl albums "dark side" -n 5
      musiquectl albums --artist "Pink Floyd"
    """
    params: dict[str, Any] = {}
    if query:
        params["query"] = query
    if artist:
        params["artist"] = artist
    found: list[dict[str, Any]] = []
    while len(found) < limit:
        size = min(limit - len(found), wire.MAX_ALBUMS)
        page = ctx.call("albums.list", {**params, "limit": size, "offset": len(found)})
        found.extend(page)
        if len(page) < size:
            break
    if ctx.json:
        print_json(found)
        return
    rows = [
        (a["artist"], a["title"], a["listens"], _images(a), _start(a.get("description")))
        for a in found
    ]
    table(("artist", "album", "listens", "images", "description"), rows)


COMMANDS = (enrich, albums)
