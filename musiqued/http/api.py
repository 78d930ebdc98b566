"""The original application's HTTP API, for its existing web front end (``[http] listen``).

::

    POST /api/v1/services/lastfm/import-history?limit=&skip_existing=   run an import, wait
    GET  /api/v1/services/import/{job_id}                               a job's progress
    GET  /api/v1/services/tracker/status
    POST /api/v1/services/tracker/start[?interval_seconds=]
    POST /api/v1/services/tracker/stop

Handlers call the same services as the RPC methods (``Services``: importer, jobs, tracker).
Errors are ``{"detail": ...}`` with a fitting status: 401 bad token, 404 unknown, 409
conflict, 422 bad parameter, 502 upstream failure, 503 not configured. Off loopback the
configuration must set ``[http] token`` (checked when the config loads); once a token is
set, every request needs ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import structlog
from aiohttp import web

from musiqued.config import parse_listen
from musiqued.errors import (
    ConflictError,
    MusiqueError,
    NotConfiguredError,
    NotFoundError,
    UpstreamError,
)
from musiqued.services.importer import DEFAULT_LIMIT, ImportRequest

if TYPE_CHECKING:
    from musiqued.config import HttpConfig
    from musiqued.services.facade import Services

log = structlog.get_logger("musiqued.http")

PREFIX = "/api/v1/services"
FINISHED = frozenset({"done", "failed", "cancelled", "interrupted", "paused"})
ORIGINAL_FIELDS = (
    "tracks_imported",
    "tracks_skipped",
    "tracks_errors",
    "albums_enriched",
    "total_albums_to_enrich",
    "total_scrobbles",
)
_STATUS_OF: tuple[tuple[type[MusiqueError], int], ...] = (
    (NotFoundError, 404),
    (ConflictError, 409),
    (NotConfiguredError, 503),
    (UpstreamError, 502),
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, detail: str, **extra: Any) -> web.Response:
    return web.json_response({"detail": detail, **extra}, status=status)


def _bool(value: str, name: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise web.HTTPUnprocessableEntity(reason=f"{name} must be true or false, not {value!r}")


def _int(value: str, name: str, minimum: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise web.HTTPUnprocessableEntity(reason=f"{name} must be an integer") from None
    if number < minimum:
        raise web.HTTPUnprocessableEntity(reason=f"{name} must be at least {minimum}")
    return number


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


class HttpApi:
    """A daemon component: an aiohttp server, running only when ``[http] listen`` is set."""

    def __init__(self, services: Services, config: HttpConfig) -> None:
        self._services = services
        self._config = config
        self._runner: web.AppRunner | None = None
        self._listen = ""

    @property
    def address(self) -> str | None:
        return self._listen or None

    async def open(self) -> None:
        listen = self._config.listen
        if not listen:
            return
        host, port = parse_listen(listen)
        app = web.Application(middlewares=[self._errors, self._auth])
        app.add_routes(
            [
                web.post(f"{PREFIX}/lastfm/import-history", self.import_history),
                web.get(f"{PREFIX}/import/{{job_id}}", self.job),
                web.get(f"{PREFIX}/tracker/status", self.tracker_status),
                web.post(f"{PREFIX}/tracker/start", self.tracker_start),
                web.post(f"{PREFIX}/tracker/stop", self.tracker_stop),
            ]
        )
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            await web.TCPSite(runner, host or None, port, shutdown_timeout=2.0).start()
        except OSError as exc:
            await runner.cleanup()
            raise MusiqueError(
                f"cannot listen for HTTP on {listen} ([http] listen): {exc.strerror or exc}"
            ) from None
        self._runner = runner
        self._listen = listen
        log.info("http api listening", listen=listen)

    async def close(self) -> None:
        runner, self._runner, self._listen = self._runner, None, ""
        if runner is not None:
            await runner.cleanup()

    async def reconfigure(self, config: HttpConfig) -> None:
        """After a reload: rebind if ``[http] listen`` changed (the token is read per request)."""
        self._config = config
        if config.listen != self._listen:
            await self.close()
            await self.open()

    # -- middlewares ----------------------------------------------------------------------

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            headers = {k: v for k, v in exc.headers.items() if k == "WWW-Authenticate"}
            response = _error(exc.status, exc.reason)
            response.headers.update(headers)
            return response
        except MusiqueError as exc:
            status = next((code for cls, code in _STATUS_OF if isinstance(exc, cls)), 500)
            if status == 500:
                log.error("http request failed", path=request.path, error=exc.message)
            return _error(status, exc.message, kind=exc.kind)
        except Exception:
            log.exception("http request crashed", path=request.path)
            return _error(500, "internal error")

    @web.middleware
    async def _auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        token = self._config.token.get_secret_value()
        if token:
            given = request.headers.get("Authorization", "")
            scheme, _, value = given.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                value.strip().encode(), token.encode()
            ):
                raise web.HTTPUnauthorized(
                    reason="missing or wrong bearer token",
                    headers={"WWW-Authenticate": 'Bearer realm="musiqued"'},
                )
        return await handler(request)

    # -- handlers -------------------------------------------------------------------------

    async def import_history(self, request: web.Request) -> web.Response:
        """Start an import job and answer, once it is over, with the original's JSON."""
        query = request.query
        limit = _int(query.get("limit", str(DEFAULT_LIMIT)), "limit", 1)
        skip_existing = _bool(query.get("skip_existing", "true"), "skip_existing")
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
        return _error(status, detail, job=job)

    async def _wait(self, job_id: int, next_event: Callable[[], Awaitable[Any]]) -> dict[str, Any]:
        """Until the job stops running; events wake us, a periodic read covers dropped ones."""
        while True:
            job = await self._services.jobs.get(job_id)
            if job["state"] in FINISHED:
                return job
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(next_event(), 1.0)

    async def job(self, request: web.Request) -> web.Response:
        job_id = _int(request.match_info["job_id"], "job_id", 1)
        return web.json_response(await self._services.jobs.get(job_id))

    async def tracker_status(self, _: web.Request) -> web.Response:
        return web.json_response(original_tracker_status(await self._services.tracker.status()))

    async def tracker_start(self, request: web.Request) -> web.Response:
        interval = request.query.get("interval_seconds")
        seconds = float(_int(interval, "interval_seconds", 1)) if interval else None
        started = await self._services.tracker.start(seconds)
        return web.json_response({"status": "started", "already_running": not started})

    async def tracker_stop(self, _: web.Request) -> web.Response:
        await self._services.tracker.stop()
        return web.json_response({"status": "stopped"})
