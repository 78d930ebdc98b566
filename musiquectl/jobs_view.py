"""How a job reads: its progress line, its details (``jobs show``) and its closing summary.

Imports and verifies share the job object but not its meaning: an import counts pages and
scrobbles, a verify counts UTC days and listens missing or only here (its ``result``). Every
moment is shown in local time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from musiquectl.output import (
    compact,
    count,
    duration,
    echo,
    key_values,
    local_time,
    number,
    table,
)

ACTIVE = frozenset({"queued", "running"})
UNSUCCESSFUL = frozenset({"failed", "cancelled", "interrupted"})
"""A job shown or followed that ends in one of these makes ``musiquectl`` exit 1."""
LISTEN_COLUMNS = ("played (local)", "artist", "title", "album", "source", "loved")
LOVED = "♥"
SHOWN_REASONS = 10


def listen_rows(listens: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (
            local_time(x["timestamp"]),
            x["artist"],
            x["title"],
            x.get("album") or "",
            x["source"],
            LOVED if x.get("loved") else "",
        )
        for x in listens
    ]


def _percent(done: int, total: int) -> str:
    return f" ({100 * done // total}%)" if total else ""


def _result(job: dict[str, Any]) -> dict[str, Any]:
    result = job.get("result")
    return result if isinstance(result, dict) else {}


def _eta(job: dict[str, Any]) -> str:
    eta = job.get("eta_s")
    return f"{duration(eta)} left" if eta is not None else "? left"


def progress_parts(job: dict[str, Any], *, short: bool = False) -> tuple[str, list[str]]:
    """The label and the details of a job's progress, the details most important first: for
    an import its speed and time left, then its page and counters. ``short``: the live
    line's forms (``import 3``, ``80.0k new``), for 80 columns."""
    done, total = job.get("pages_done") or 0, job.get("pages_total") or 0
    shown = compact if short else number
    state = "" if short and job["state"] == "running" else f": {job['state']}"
    head = f"{job['kind']} job {job['job_id']}{state}"
    of_total = shown(total) if total else "?"
    if job["kind"] == "verify":
        result = _result(job)
        days = int(result.get("days_different") or 0)
        missing = int(result.get("listens_missing") or 0)
        parts = [
            f"day {shown(done)}/{of_total}" + ("" if short else _percent(done, total)),
            f"{shown(days)} {'diff' if short else 'day' if days == 1 else 'days'}"
            + ("" if short else " different"),
            f"{shown(missing)} missing" if short else count(missing, "listen") + " missing",
        ]
        if result.get("repair", True):
            parts.append(f"{shown(result.get('listens_added') or 0)} added")
        parts.append(f"{shown(result.get('listens_only_here') or 0)} only here")
    else:
        rate = job.get("rate_per_s") or 0
        parts = [
            f"{shown(round(rate))} scrobbles/s" if not short else f"{shown(rate)}/s",
            *([_eta(job)] if job["state"] in ACTIVE else []),
            f"page {shown(done)}/{of_total}" + ("" if short else _percent(done, total)),
            f"{shown(job.get('tracks_imported') or 0)} {'new' if short else 'imported'}",
            f"{shown(job.get('tracks_skipped') or 0)} {'skip' if short else 'skipped'}",
            *_refreshed_part(job, short, shown),
            f"{shown(job.get('tracks_errors') or 0)} {'err' if short else 'errors'}",
        ]
        missing_listens = job.get("missing")
        if isinstance(missing_listens, dict) and missing_listens.get("count"):
            parts.append(count(int(missing_listens["count"]), "listen") + " missing")
    if job.get("upstream_trouble"):
        parts.append(f"Last.fm: {job['upstream_trouble']}")
    return head, parts


def _refreshed_part(job: dict[str, Any], short: bool, shown: Callable[[int], str]) -> list[str]:
    """The refreshed listens, when the job refreshed any (``skip_existing=false``)."""
    refreshed = job.get("tracks_refreshed") or 0
    if not refreshed:
        return []
    return [f"{shown(refreshed)} {'ref' if short else 'refreshed'}"]


def progress_line(job: dict[str, Any]) -> str:
    """One line of progress, as printed when not on a terminal."""
    head, parts = progress_parts(job)
    return ", ".join([head, *parts])


def _window(job: dict[str, Any]) -> str:
    window = job.get("window") or {}
    start = window.get("from")
    return f"{local_time(start) if start is not None else 'the beginning'} → " + local_time(
        window.get("to")
    )


def _iso_local(text: Any) -> str:
    if not isinstance(text, str):
        return "?"
    try:
        return local_time(dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return text


def _import_pairs(job: dict[str, Any]) -> list[tuple[str, Any]]:
    params = job.get("params") or {}
    shown = {k: v for k, v in params.items() if k not in ("since", "until") and v is not None}
    enriched, queued = job.get("albums_enriched") or 0, job.get("total_albums_to_enrich") or 0
    pairs: list[tuple[str, Any]] = [
        ("params", " ".join(f"{k}={v}" for k, v in shown.items()) or "-"),
        (
            "pages",
            f"{number(job['pages_done'])}/{number(job['pages_total']) if job['pages_total'] else '?'}",
        ),
        ("imported", job["tracks_imported"]),
        ("skipped", job["tracks_skipped"]),
        ("refreshed", job.get("tracks_refreshed", 0)),
        ("errors", job["tracks_errors"]),
        ("albums enriched", albums_enriched(enriched, queued)),
        ("total scrobbles", job["total_scrobbles"]),
        ("rate", f"{number(job['rate_per_s'])} scrobbles/s"),
    ]
    if job.get("eta_s") is not None and job["state"] in ACTIVE:
        pairs.append(("eta", duration(job["eta_s"])))
    return pairs


def albums_enriched(enriched: int, queued: int) -> str:
    """The figure as it is when printed: enrichment goes on in the background after a job."""
    if enriched >= queued:
        return f"{number(enriched)} of {number(queued)}"
    return (
        f"{number(enriched)} of {number(queued)} so far; the rest goes on in the background "
        "(`musiquectl enrich status`)"
    )


def _verify_pairs(job: dict[str, Any]) -> list[tuple[str, Any]]:
    result = _result(job)
    repair = bool(result.get("repair", (job.get("params") or {}).get("repair", True)))
    checked = result.get("days_checked", job.get("pages_done") or 0)
    total = result.get("days_total", job.get("pages_total") or 0)
    different = int(result.get("days_different") or 0)
    days = list(result.get("different_days") or [])
    named = ", ".join(days)
    if different > len(days):
        named += f" and {different - len(days)} more"
    missing = int(result.get("listens_missing") or 0)
    added = int(result.get("listens_added") or 0)
    return [
        ("days checked", f"{number(checked)} of {number(total)}"),
        ("days different", f"{number(different)}: {named} (UTC days)" if days else different),
        ("listens missing", f"{number(missing)} (Last.fm has them, they were not here)"),
        ("listens added", added if repair else f"{number(added)} (--no-repair: reported only)"),
        (
            "listens only here",
            f"{number(result.get('listens_only_here') or 0)} (Last.fm no longer has them; kept)",
        ),
    ]


def _moments(job: dict[str, Any]) -> list[tuple[str, Any]]:
    return [
        ("window", _window(job)),
        ("created", local_time(job.get("created_at"))),
        ("started", local_time(job.get("started_at"))),
        ("finished", local_time(job.get("finished_at"))),
    ]


def _trouble(job: dict[str, Any]) -> list[tuple[str, Any]]:
    pairs: list[tuple[str, Any]] = []
    missing = job.get("missing")
    if isinstance(missing, dict) and missing.get("count"):
        pairs.append(("missing", count(int(missing["count"]), "listen") + " not stored"))
    if job.get("upstream_trouble"):
        pairs.append(("upstream trouble", job["upstream_trouble"]))
    if job.get("error"):
        pairs.append(("error", job["error"]))
    return pairs


def _trouble_details(job: dict[str, Any]) -> None:
    missing = job.get("missing")
    if isinstance(missing, dict):
        for where in missing.get("where") or []:
            if where.get("last_page") is not None:
                pages = f"pages {where.get('page')}-{where.get('last_page')}"
                if where.get("last_page") == where.get("page"):
                    pages = f"page {where.get('page')}"
                echo(f"  {pages}: {where.get('missing')} missing (never fetched)")
                continue
            echo(
                f"  page {where.get('page')}: {where.get('missing')} missing between "
                f"{_iso_local(where.get('from'))} and {_iso_local(where.get('to'))}"
            )
    for reason in (job.get("error_reasons") or [])[:SHOWN_REASONS]:
        echo(f"  {reason}")


def _only_here(job: dict[str, Any]) -> None:
    sample = _result(job).get("only_here_sample") or []
    if sample:
        echo()
        table(
            LISTEN_COLUMNS,
            listen_rows(sample),
            title="Listens held here that Last.fm no longer has (kept, not deleted)",
            no_wrap=(LISTEN_COLUMNS[0],),
        )


def render_job(job: dict[str, Any]) -> None:
    """``jobs show``: everything about one job, in its kind's terms."""
    if job["kind"] == "verify":
        kind_pairs = _verify_pairs(job)
    elif job["kind"] == "file":
        kind_pairs = [*_import_pairs(job), *file_pairs(job.get("result") or {})]
    else:
        kind_pairs = _import_pairs(job)
    key_values(
        [
            ("job", f"{job['job_id']} ({job['kind']})"),
            ("state", job["state"]),
            *_moments(job),
            *kind_pairs,
            *_trouble(job),
        ]
    )
    _trouble_details(job)
    if job["kind"] == "verify":
        _only_here(job)
    _resume_hint(job)


def _resume_hint(job: dict[str, Any]) -> None:
    if job["state"] == "paused":
        echo(f"paused; resume with `musiquectl jobs resume {job['job_id']}`")


_TITLES = {"done": "finished", "failed": "FAILED"}


def file_pairs(summary: dict[str, Any]) -> list[tuple[str, Any]]:
    """A file import's summary: what became of the entries read (the counts add up)."""
    skipped = summary.get("skipped") or {}
    pairs: list[tuple[str, Any]] = [
        ("entries read", summary.get("entries", 0)),
        ("added", summary.get("added", 0)),
        ("already stored", summary.get("already_stored", 0)),
        *((f"skipped ({reason})", n) for reason, n in sorted(skipped.items())),
        ("unreadable", summary.get("unreadable", 0)),
    ]
    if summary.get("undone"):
        pairs.append(("undone", summary["undone"]))
    return pairs


def render_summary(job: dict[str, Any]) -> None:
    """The closing summary of a followed job: for an import, the original script's figures."""
    echo(
        f"{job['kind'].capitalize()} job {job['job_id']} {_TITLES.get(job['state'], job['state'])}"
    )
    if job["kind"] == "verify":
        pairs = [("window", _window(job)), *_verify_pairs(job)]
    elif job["kind"] == "file":
        pairs = file_pairs(job.get("result") or {})
    else:
        started, finished = job.get("started_at"), job.get("finished_at")
        took = finished - started if started and finished else job.get("active_s")
        enriched, queued = job.get("albums_enriched") or 0, job.get("total_albums_to_enrich") or 0
        pairs = [
            ("duration", duration(took)),
            ("imported", job.get("tracks_imported", 0)),
            ("skipped", job.get("tracks_skipped", 0)),
            ("refreshed", job.get("tracks_refreshed", 0)),
            ("errors", job.get("tracks_errors", 0)),
            ("albums enriched", albums_enriched(enriched, queued)),
            ("albums to enrich", queued),
            ("total scrobbles", job.get("total_scrobbles", 0)),
        ]
    key_values([(f"  {k}", v) for k, v in [*pairs, *_trouble(job)]])
    _trouble_details(job)
    if job["kind"] == "verify":
        _only_here(job)
    _resume_hint(job)


def paused_by_daemon(job: dict[str, Any]) -> bool:
    """A job the daemon paused by itself (no space left): its pause carries the reason; a
    person's pause has none."""
    return job["state"] == "paused" and bool(job.get("error"))


def outcome_line(job: dict[str, Any]) -> str:
    """The last line printed for a job that did not succeed (exit status 1, or 75 when the
    daemon paused it)."""
    name = f"{job['kind']} job {job['job_id']}"
    error = job.get("error")
    if paused_by_daemon(job):
        return f"{name} was paused by the daemon: {error}"
    if job["state"] == "cancelled":
        return f"{name} was cancelled" + (f": {error}" if error else "")
    if job["state"] == "interrupted":
        return (
            f"{name} is interrupted"
            + (f": {error}" if error else "")
            + f"; `musiquectl jobs resume {job['job_id']}` once it can run"
        )
    return f"{name} failed: {error or 'no reason given'}"
