"""The JSON endpoints the Settings page uses, beside the original API.

::

    GET  /api/v1/status                    daemon.status
    GET  /api/v1/jobs?limit=               jobs.list (imports and verifies, newest first)
    GET  /api/v1/jobs/{id}                 jobs.get
    POST /api/v1/jobs/{id}/pause|resume|cancel
    GET  /api/v1/jobs/{id}/log             the daemon's recent log records for that job
    POST /api/v1/imports                   import.start; JSON body {limit?, all?,
                                           skip_existing?, since?, until?, incremental?}
    POST /api/v1/imports/files             import.file with files uploaded (``upload.py``)
    POST /api/v1/tracker/start             tracker.start; JSON body {interval_seconds?}
    POST /api/v1/tracker/stop              tracker.stop
    GET  /api/v1/enrichment                enrich.status
    POST /api/v1/mirror/pause|resume       mirror.pause, mirror.resume (its status is in
                                           daemon.status's ``mirror``)
    GET  /api/v1/albums?query=&artist=&limit=&offset=   albums.list, each with ``image``: its cover's
                                           local URL (``/images/<name>``)
    GET  /api/v1/history/recent?limit=     history.recent

Each calls the same service as the RPC method named, and checks its parameters with that
method's params model, so both front ends accept and refuse the same things.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from musiqued.contract.params import (
    MAX_JOB_ID,
    AlbumsParams,
    ImportParams,
    JobListParams,
    RecentParams,
    TrackerParams,
)
from musiqued.contract.shapes import listen_shape
from musiqued.http.common import HttpProblem, bulk_json, json_body, query_int, validated
from musiqued.services.image_cache import local_image_url
from musiqued.services.importer import ImportRequest

if TYPE_CHECKING:
    from musiqued.services.facade import Services

PREFIX = "/api/v1"
JobLogReader = Callable[[int], list[dict[str, Any]]]


class PageApi:
    def __init__(self, services: Services, job_log: JobLogReader | None) -> None:
        self._services = services
        self._job_log = job_log

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get(f"{PREFIX}/status", self.status),
            web.get(f"{PREFIX}/jobs", self.jobs),
            web.get(f"{PREFIX}/jobs/{{job_id}}", self.job),
            web.post(f"{PREFIX}/jobs/{{job_id}}/{{action}}", self.steer),
            web.get(f"{PREFIX}/jobs/{{job_id}}/log", self.job_log),
            web.post(f"{PREFIX}/imports", self.start_import),
            web.post(f"{PREFIX}/tracker/start", self.tracker_start),
            web.post(f"{PREFIX}/tracker/stop", self.tracker_stop),
            web.get(f"{PREFIX}/enrichment", self.enrichment),
            web.post(f"{PREFIX}/mirror/{{action}}", self.steer_mirror),
            web.get(f"{PREFIX}/albums", self.albums),
            web.get(f"{PREFIX}/history/recent", self.recent),
        ]

    async def status(self, _: web.Request) -> web.Response:
        return web.json_response(await self._services.control.status())

    async def jobs(self, request: web.Request) -> web.StreamResponse:
        params = validated(JobListParams, request.query)
        return await bulk_json(
            request, self._services.answers, lambda: self._services.jobs.recent(params.limit)
        )

    async def job(self, request: web.Request) -> web.Response:
        return web.json_response(await self._services.jobs.get(_job_id(request)))

    async def steer(self, request: web.Request) -> web.Response:
        job_id = _job_id(request)
        jobs = self._services.jobs
        actions = {"pause": jobs.pause, "resume": jobs.resume, "cancel": jobs.cancel}
        action = actions.get(request.match_info["action"])
        if action is None:
            raise HttpProblem(404, "a job can be paused, resumed or cancelled")
        return web.json_response(await action(job_id))

    async def job_log(self, request: web.Request) -> web.Response:
        job_id = _job_id(request)
        await self._services.jobs.get(job_id)  # 404 for a job that does not exist
        records = self._job_log(job_id) if self._job_log is not None else []
        return web.json_response(
            {
                "job_id": job_id,
                "records": records,
                "note": "records since the daemon started; older ones: "
                f"journalctl MUSIQUE_JOB_ID={job_id}",
            }
        )

    async def start_import(self, request: web.Request) -> web.Response:
        params = validated(ImportParams, await json_body(request))
        job_id = await self._services.importer.start_import(ImportRequest(**params.model_dump()))
        return web.json_response({"job_id": job_id}, status=202)

    async def tracker_start(self, request: web.Request) -> web.Response:
        params = validated(TrackerParams, await json_body(request))
        started = await self._services.tracker.start(params.interval_seconds)
        return web.json_response({"status": "started" if started else "already_running"})

    async def tracker_stop(self, _: web.Request) -> web.Response:
        await self._services.tracker.stop()
        return web.json_response({"status": "stopped"})

    async def enrichment(self, _: web.Request) -> web.Response:
        return web.json_response(await self._services.enricher.status())

    async def steer_mirror(self, request: web.Request) -> web.Response:
        mirror = self._services.mirror
        actions = {"pause": mirror.pause, "resume": mirror.resume}
        action = actions.get(request.match_info["action"])
        if action is None:
            raise HttpProblem(404, "the mirror can be paused or resumed")
        return web.json_response(await action())

    async def albums(self, request: web.Request) -> web.StreamResponse:
        params = validated(AlbumsParams, request.query)
        library = self._services.library

        async def albums() -> list[dict[str, Any]]:
            found = await library.albums(
                query=params.query, artist=params.artist, limit=params.limit, offset=params.offset
            )
            return [
                {**album, "image": local_image_url(album["image_spotify"] or album["image_lastfm"])}
                for album in found
            ]

        return await bulk_json(request, self._services.answers, albums)

    async def recent(self, request: web.Request) -> web.StreamResponse:
        params = validated(RecentParams, request.query)
        library = self._services.library
        return await bulk_json(
            request, self._services.answers, lambda: library.recent(params.limit, listen_shape)
        )


def _job_id(request: web.Request) -> int:
    return query_int(request.match_info["job_id"], "job_id", 1, MAX_JOB_ID)
