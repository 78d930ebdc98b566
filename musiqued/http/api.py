"""The HTTP front end (``[http] listen``): the original application's API, the Settings page,
its JSON endpoints and its WebSocket, in one aiohttp server.

=====================  ===================================================================
part                   module
=====================  ===================================================================
the original API       ``original.py``: ``/api/v1/services/...``, answers unchanged
the page               ``page.py``: ``/``, ``/settings``, ``/static/...``
the page's JSON API    ``rest.py``: ``/api/v1/jobs``, ``/api/v1/imports``, ...
file upload            ``upload.py``: ``/api/v1/imports/files``, streamed to the importer
live events            ``live.py``: ``/api/v1/events`` (WebSocket)
images                 ``images.py``: ``/images/<name>``, from the daemon's image cache
safety                 ``guard.py``: Host/Origin checks, token and session cookie, CSP
sessions, throttle     ``sessions.py``, ``throttle.py``: browser sessions, the generated
                       token, failed authentications slowed down
limits                 ``limits.py``: connection cap, request and idle timeouts, the
                       pause a streamed body may make
=====================  ===================================================================

Errors are ``{"detail": ...}`` with a fitting status: 401 bad token, 403 refused (foreign
Host or Origin), 404 unknown, 408 body too slow, 409 conflict, 413 body too large, 415 an upload
that is not multipart, 422 bad parameter (or a file of no known format), 429 too many failed
authentications, 502 upstream failure, 503 not configured or too many connections, 507 no
room left for an upload. Every request needs a credential (``guard.py``); off loopback the
configuration must set ``[http] token`` itself (checked when the config loads).
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
from aiohttp import web

from musiqued.config import parse_listen
from musiqued.errors import MusiqueError
from musiqued.http.common import Handler, HttpProblem, error, status_of
from musiqued.http.guard import Guard, add_security_headers
from musiqued.http.images import ImageRoutes
from musiqued.http.library import LibraryApi
from musiqued.http.limits import MAX_BODY_BYTES, ConnectionLimiter
from musiqued.http.live import LiveEvents
from musiqued.http.original import OriginalApi
from musiqued.http.page import Page
from musiqued.http.rest import JobLogReader, PageApi
from musiqued.http.sessions import (
    SESSIONS_FILE_NAME,
    TOKEN_FILE_NAME,
    SessionStore,
    load_or_create_token,
)
from musiqued.http.upload import UploadApi

if TYPE_CHECKING:
    from musiqued.config import HttpConfig
    from musiqued.services.facade import Services

log = structlog.get_logger("musiqued.http")

BACKLOG = 128
"""Connections the kernel holds for us before we accept them (aiohttp's default)."""


class HttpApi:
    """A daemon component: an aiohttp server, running only when ``[http] listen`` is set.

    ``job_log(job_id)``: the daemon's recent log records of a job (the logging set-up
    keeps them), shown on the page. ``state_dir`` (the database's directory) keeps the
    token made when ``[http] token`` is empty, and the browser sessions (``sessions.py``).
    """

    def __init__(
        self,
        services: Services,
        config: HttpConfig,
        *,
        state_dir: Path,
        job_log: JobLogReader | None = None,
    ) -> None:
        self._services = services
        self._config = config
        self._token_file = state_dir / TOKEN_FILE_NAME
        self._guard = Guard(
            config,
            "",
            services.web_logins,
            sessions=SessionStore(state_dir / SESSIONS_FILE_NAME),
        )
        self._live = LiveEvents(services.events, max_sockets=config.max_websockets)
        self._upload = UploadApi(services, config, state_dir=state_dir)
        self._job_log = job_log
        self._runner: web.AppRunner | None = None
        self._server: asyncio.Server | None = None
        self._limiter: ConnectionLimiter | None = None
        self._listen = ""

    def build_app(self, limiter: ConnectionLimiter) -> web.Application:
        # The limiter inside _errors (its 408/413 become JSON), before the guard (a refused
        # request is a request too: its connection is busy meanwhile, then idle).
        middlewares = [self._errors, limiter.middleware, self._guard.middleware]
        app = web.Application(middlewares=middlewares, client_max_size=MAX_BODY_BYTES)
        app.on_response_prepare.append(add_security_headers)
        app.add_routes(OriginalApi(self._services).routes())
        app.add_routes(PageApi(self._services, self._job_log).routes())
        app.add_routes(self._upload.routes())
        app.add_routes(LibraryApi(self._services).routes())
        app.add_routes(self._live.routes())
        app.add_routes(self._guard.routes())
        app.add_routes(Page(self._guard).routes())
        app.add_routes(ImageRoutes(self._services.images).routes())
        return app

    async def open(self) -> None:
        listen = self._config.listen
        if not listen:
            return
        host, port = parse_listen(listen)
        self._guard.reconfigure(self._config, await self._token(self._config))
        limiter = ConnectionLimiter(self._config)
        runner = web.AppRunner(
            self.build_app(limiter),
            access_log=None,
            handle_signals=False,
            shutdown_timeout=2.0,
        )
        await runner.setup()
        assert runner.server is not None
        try:
            # Not web.TCPSite: it hands aiohttp's protocol factory (runner.server) to
            # create_server itself, and the limiter must stand between them.
            server = await asyncio.get_running_loop().create_server(
                limiter.wrap(runner.server), host or None, port, backlog=BACKLOG
            )
        except OSError as exc:
            await runner.cleanup()
            raise MusiqueError(
                f"cannot listen for HTTP on {listen} ([http] listen): {exc.strerror or exc}"
            ) from None
        self._runner, self._server, self._limiter = runner, server, limiter
        self._listen = listen
        self._services.web_logins.page_url = page_url(listen)
        log.info("http api listening", listen=listen, page=page_url(listen))

    async def _token(self, config: HttpConfig) -> str:
        """The token in force: the configured one, else the one kept in the state directory."""
        configured = config.token.get_secret_value()
        if configured:
            return configured
        return await asyncio.to_thread(load_or_create_token, self._token_file)

    async def close(self) -> None:
        runner, self._runner, self._listen = self._runner, None, ""
        server, self._server = self._server, None
        limiter, self._limiter = self._limiter, None
        self._services.web_logins.page_url = None
        if server is not None:
            server.close()
        if runner is not None:
            # Open pages first: a WebSocket would hold the shutdown for its whole timeout.
            await self._live.close()
            await runner.cleanup()
        if limiter is not None:
            limiter.close()
        self._guard.throttle.write()
        if server is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2.0):
                    await server.wait_closed()

    async def reconfigure(self, config: HttpConfig) -> None:
        """After a reload: rebind if ``[http] listen`` changed; a new token ends sessions."""
        self._guard.reconfigure(config, await self._token(config))
        self._config = config
        self._live.reconfigure(max_sockets=config.max_websockets)
        self._upload.reconfigure(config)
        if self._limiter is not None:
            self._limiter.reconfigure(config)
        if config.listen != self._listen:
            await self.close()
            await self.open()

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except HttpProblem as exc:
            response = error(exc.status, exc.detail, **exc.extra)
            response.headers.update(exc.headers)
            return response
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return error(exc.status, exc.reason)
        except MusiqueError as exc:
            status = status_of(exc)
            if status == 500:
                log.error("http request failed", path=request.path, error=exc.message)
            return error(status, exc.message, kind=exc.kind)
        except Exception:
            log.exception("http request crashed", path=request.path)
            return error(500, "internal error")


def page_url(listen: str) -> str:
    """Where a browser on this machine opens the page."""
    host, port = parse_listen(listen)
    if not host or host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"
