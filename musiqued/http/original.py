"""The original application's HTTP API, for its existing web front end.

::

    POST /api/v1/services/lastfm/import-history?limit=&skip_existing=   run an import, wait
    GET  /api/v1/services/import/{job_id}                               a job's progress
    GET  /api/v1/services/tracker/status
    POST /api/v1/services/tracker/start[?interval_seconds=]   seconds (2.5) or 90s, 1m…
    POST /api/v1/services/tracker/stop

Paths and answers are the original's: ``last_track`` is its ``"Artist|Title|Album"``
string (the same track as an object is ``last_track_info``). Handlers call the same
services as the RPC methods (``Services``: importer, jobs, tracker).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from musiqued.contract.params import MAX_JOB_ID, MAX_LIMIT, TrackerParams
from musiqued.http.common import error, query_bool, query_int, validated
from musiqued.services.importer import DEFAULT_LIMIT, ImportRequest

if TYPE_CHECKING:
    from musiqued.services.facade import Services

PREFIX = "/api/v1/services"
FINISHED = frozenset({"done", "failed", "cancelled", "interrupted", "paused"})
ORIGINAL_FIELDS = (
    "tracks_imported",
    "tracks_skipped",
    "tracks_refreshed",
    "tracks_errors",
    "albums_enriched",
    "total_albums_to_enrich",
    "total_scrobbles",
)


def original_tracker_status(status: dict[str, Any]) -> dict[str, Any]:
    """``tracker.status`` as the original front end reads it: ``last_track`` is its
    ``"Artist|Title|Album"`` string; the same track as an object is ``last_track_info``."""
    track = status.get("last_track")
    line = (
        f"{track['artist']}|{track['title']}|{track.get('album') or ''}"
        if isinstance(track, dict)
        else None
    )
    return {**status, "last_track": line, "last_track_info": track}


class OriginalApi:
    def __init__(self, services: Services) -> None:
        self._services = services

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post(f"{PREFIX}/lastfm/import-history", self.import_history),
            web.get(f"{PREFIX}/import/{{job_id}}", self.job),
            web.get(f"{PREFIX}/tracker/status", self.tracker_status),
            web.post(f"{PREFIX}/tracker/start", self.tracker_start),
            web.post(f"{PREFIX}/tracker/stop", self.tracker_stop),
        ]

    async def import_history(self, request: web.Request) -> web.Response:
        """Start an import job and answer, once it is over, with the original's JSON."""
        query = request.query
        limit = query_int(query.get("limit", str(DEFAULT_LIMIT)), "limit", 1, MAX_LIMIT)
        skip_existing = query_bool(query.get("skip_existing", "true"), "skip_existing")
        importer = self._services.importer
        subscription = self._services.events.subscribe(["job"])
        try:
            job_id = await importer.start_import(
                ImportRequest(limit=limit, skip_existing=skip_existing)
            )
            job = await self._wait(job_id, subscription.get)
        finally:
            subscription.close()
        if job["state"] == "done":
            return web.json_response(
                {"status": "success", **{k: job[k] for k in ORIGINAL_FIELDS}, "job_id": job_id}
            )
        detail = job.get("error") or f"import job {job_id} ended {job['state']}"
        status = 502 if job["state"] == "failed" else 409
        return error(status, detail, job=job)

    async def _wait(self, job_id: int, next_event: Callable[[], Awaitable[Any]]) -> dict[str, Any]:
        """Until the job stops running; events wake us, a periodic read covers dropped ones."""
        while True:
            job = await self._services.jobs.get(job_id)
            if job["state"] in FINISHED:
                return job
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await next_event()

    async def job(self, request: web.Request) -> web.Response:
        job_id = query_int(request.match_info["job_id"], "job_id", 1, MAX_JOB_ID)
        return web.json_response(await self._services.jobs.get(job_id))

    async def tracker_status(self, _: web.Request) -> web.Response:
        return web.json_response(original_tracker_status(await self._services.tracker.status()))

    async def tracker_start(self, request: web.Request) -> web.Response:
        params = validated(TrackerParams, request.query)
        started = await self._services.tracker.start(params.interval_seconds)
        return web.json_response({"status": "started", "already_running": not started})

    async def tracker_stop(self, _: web.Request) -> web.Response:
        await self._services.tracker.stop()
        return web.json_response({"status": "stopped"})
