"""``tracker start|stop|status`` and ``watch`` (live events, like ``tail -f``)."""

from __future__ import annotations

import json
import time
from typing import Any

import click

from musiquectl.cli import Context, pass_context
from musiquectl.live import LiveConnection
from musiquectl.options import interval_option
from musiquectl.output import (
    duration,
    echo,
    key_values,
    local_time,
    number,
    print_json,
    print_json_line,
    print_result,
    warn,
)
from musiqued.timespec import DURATION_FORMS

WATCH_TOPICS = ("scrobble", "now_playing", "job", "tracker", "mirror")
ALL_TOPICS = ("daemon", "job", "scrobble", "now_playing", "tracker", "enrichment", "mirror")


def _clock(timestamp: float | None) -> str:
    return "-" if timestamp is None else local_time(timestamp)


def tracker_pairs(status: dict[str, Any], *, detailed: bool = True) -> list[tuple[str, Any]]:
    """The tracker's lines for ``tracker status`` (detailed) and ``status`` (short)."""
    interval = status.get("interval_seconds")
    state = "running" if status.get("running") else "stopped"
    pairs: list[tuple[str, Any]] = [
        ("tracker", f"{state}, every {interval:g} s" if interval else state),
        ("last track", _last_track(status.get("last_track"))),
    ]
    playing = status.get("now_playing")
    if playing:
        pairs.append(("now playing", f"{_song(playing)} (since {_clock(playing.get('since'))})"))
    elif detailed:
        pairs.append(("now playing", "-"))
    if detailed or status.get("running"):
        pairs.append(("last poll", _clock(status.get("last_poll_at"))))
        pairs.append(("next poll", _clock(status.get("next_poll_at"))))
    if detailed:
        recorded = status.get("scrobbles_recorded", 0)
        plural = "" if recorded == 1 else "s"
        pairs.append(("recorded", f"{number(recorded)} scrobble{plural} since the daemon started"))
        sweep_at = status.get("last_sweep_at")
        if sweep_at:
            found = status.get("last_sweep_found")
            pairs.append(("late sweep", f"{_clock(sweep_at)}, found {number(found or 0)}"))
    if status.get("catching_up_job_id") is not None:
        pairs.append(("catching up", f"import job {status['catching_up_job_id']}"))
    if status.get("last_error"):
        failures = status.get("consecutive_failures") or 0
        suffix = f" ({failures} failures in a row)" if failures else ""
        pairs.append(("tracker error", f"{status['last_error']}{suffix}"))
    return pairs


def render_tracker(status: dict[str, Any]) -> None:
    key_values(tracker_pairs(status))


def _last_track(value: dict[str, Any] | None) -> str:
    """The newest stored listen (``{artist, title, album, timestamp}``), like other songs."""
    return _song(value) if value else "-"


def _song(item: dict[str, Any]) -> str:
    text = f"{item.get('artist')} — {item.get('title')}"
    return f"{text} [{item['album']}]" if item.get("album") else text


@click.group()
def tracker() -> None:
    """Start, stop or inspect the real-time tracker.

    \b
    Examples:
      musiquectl tracker start --interval 60
      musiquectl tracker status
      musiquectl tracker stop
    """


@tracker.command("start")
@click.option(
    "--interval",
    callback=interval_option,
    metavar="S",
    help=f"Time between polls, at least 1 s: {DURATION_FORMS} (also changes the interval "
    "of a running tracker).",
)
@pass_context
def tracker_start(ctx: Context, interval: float | None) -> None:
    """Start polling Last.fm; it stays on across daemon restarts.

    \b
    Examples:
      musiquectl tracker start
      musiquectl tracker start --interval 60
    """
    params = {} if interval is None else {"interval_seconds": interval}
    result = ctx.call("tracker.start", params)
    if ctx.json:
        print_json(result)
        return
    status = ctx.call("tracker.status")
    every = f"every {status.get('interval_seconds'):g} s"
    if result.get("status") == "started":
        echo(f"tracker started, polling {every}")
    elif interval is not None:
        echo(f"tracker already running, now polling {every}")
    else:
        echo(f"tracker already running, polling {every}")


@tracker.command("stop")
@pass_context
def tracker_stop(ctx: Context) -> None:
    """Stop polling Last.fm; it stays off across daemon restarts.

    \b
    Example:
      musiquectl tracker stop
    """
    result = ctx.call("tracker.stop")
    print_json(result) if ctx.json else echo("tracker stopped")


@tracker.command("status")
@pass_context
def tracker_status(ctx: Context) -> None:
    """Whether the tracker runs, what it last recorded, what is playing now.

    \b
    Examples:
      musiquectl tracker status
      musiquectl --json tracker status
    """
    print_result(ctx.call("tracker.status"), render_tracker, as_json=ctx.json)


def describe_event(event: dict[str, Any]) -> str:
    """One readable line for an ``event`` notification (local time first, like a log)."""
    topic = str(event.get("topic", "?"))
    data = event.get("data") or {}
    at = event.get("at")
    text = _describe(topic, data)
    return f"{_clock(at)}  {topic:<11} {text}"


def _describe(topic: str, data: dict[str, Any]) -> str:
    if topic == "scrobble":
        text = _song(data)
        listened = data.get("timestamp")
        if isinstance(listened, int | float) and time.time() - listened > 600:
            text += f" (listened {local_time(listened)})"
        return text
    if topic == "now_playing":
        playing = data.get("now_playing")
        return _song(playing) if playing else "(nothing playing)"
    if topic == "job":
        return _describe_job(data)
    if topic in ("tracker", "daemon", "mirror") and "event" in data:
        return _describe_change(data)
    return " ".join(f"{k}={_plain(v)}" for k, v in data.items())


def _describe_job(data: dict[str, Any]) -> str:
    nested = data.get("job")
    job: dict[str, Any] = nested if isinstance(nested, dict) else data
    parts = [f"job {job.get('job_id', '?')}"]
    for key in ("kind", "state"):
        if job.get(key):
            parts.append(str(job[key]))
    if data.get("event") and data.get("event") != job.get("state"):
        parts.append(str(data["event"]))
    if job.get("pages_done") is not None:
        parts.append(f"page {job['pages_done']}/{job.get('pages_total') or '?'}")
    if job.get("tracks_imported") is not None:
        parts.append(f"{number(job['tracks_imported'])} imported")
    if job.get("eta_s"):
        parts.append(f"eta {duration(job['eta_s'])}")
    if job.get("error"):
        parts.append(f"error: {job['error']}")
    return ", ".join(parts)


def _describe_change(data: dict[str, Any]) -> str:
    event = data.get("event", "?")
    rest = {k: v for k, v in data.items() if k != "event"}
    details = " ".join(f"{k}={_plain(v)}" for k, v in rest.items())
    return f"{event} {details}".strip()


def _plain(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


@click.command()
@click.option(
    "--topic",
    "topics",
    multiple=True,
    type=click.Choice(ALL_TOPICS),
    help="Topics to follow (repeatable). Default: scrobble, now_playing, job, tracker, mirror.",
)
@click.option("--all", "all_topics", is_flag=True, help="Follow every topic.")
@pass_context
def watch(ctx: Context, topics: tuple[str, ...], all_topics: bool) -> None:
    """Print events as they happen (new scrobbles, now playing, jobs) until Ctrl-C.

    With --json, each event is printed as one JSON line. Like `journalctl -f`, it survives
    a daemon restart: a notice on stderr, then the events go on. Ctrl-C ends it with
    status 0.

    \b
    Examples:
      musiquectl watch
      musiquectl --json watch --topic scrobble
    """
    chosen = list(ALL_TOPICS if all_topics else topics or WATCH_TOPICS)
    try:
        with LiveConnection(ctx.socket_path, chosen, notice=warn) as live:
            while True:
                event = live.next_event(None)
                if not isinstance(event, dict):
                    continue  # back after a restart: the next events follow
                if ctx.json:
                    print_json_line(event)
                else:
                    echo(describe_event(event))
    except KeyboardInterrupt:
        return


COMMANDS = (tracker, watch)
