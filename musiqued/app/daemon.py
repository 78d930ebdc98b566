"""The daemon object: owns every component, starts them in order, stops them in reverse.

Signal handlers only schedule work (a stop or a reload) on the loop; the work itself runs
here. Every background task belongs to a component, which cancels and awaits it on stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import structlog

from musiqued import __version__, wire
from musiqued.app.config import Config, load_config
from musiqued.app.http_api import HttpApi
from musiqued.app.logs import register_config_secrets
from musiqued.app.systemd import Notifier
from musiqued.app.testhooks import with_test_hooks
from musiqued.errors import ConfigError
from musiqued.rpc.dispatch import Dispatcher
from musiqued.rpc.methods import METHODS
from musiqued.rpc.server import AccessPolicy, RpcServer
from musiqued.services.enricher import Enricher
from musiqued.services.events import EventBus
from musiqued.services.importer import Importer
from musiqued.services.jobs import JobRunner
from musiqued.services.lastfm_session import LastfmConnection
from musiqued.services.tracker import Tracker
from musiqued.services.verifier import Verifier
from musiqued.storage import Database
from musiqued.storage.listens import count_listens
from musiqued.upstream.lastfm import LastfmClient
from musiqued.upstream.ratelimit import Governor

log = structlog.get_logger("musiqued.daemon")

STOP_TIMEOUT_S = 8.0


class Daemon:
    def __init__(
        self,
        config: Config,
        *,
        config_path: Path | None = None,
        notifier: Notifier | None = None,
        inherited_socket: socket.socket | None = None,
    ) -> None:
        self.config = config
        self.config_path = config_path
        self.notifier = notifier or Notifier()
        self.events = EventBus()
        self.db = Database(config.daemon.database)
        self.started_at = time.time()
        self._started_monotonic = time.monotonic()
        self._inherited_socket = inherited_socket
        self._stop_requested = asyncio.Event()
        self._stops: list[tuple[str, Callable[[], Awaitable[None]]]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._status_providers: list[Callable[[], str | None]] = []
        self.dispatcher = Dispatcher(with_test_hooks(METHODS), self)
        # Job kinds register with the runner here, before it starts and resumes old jobs.
        # One governor for every Last.fm request (tracker first, then imports, enrichment).
        self.lastfm_connection = LastfmConnection(config.lastfm, self.db)
        self.governor: Governor = self.lastfm_connection.governor
        self.lastfm: LastfmClient = self.lastfm_connection.client
        self.jobs = JobRunner(self)
        self.importer = Importer(self)
        self.tracker = Tracker(self)
        self.verifier = Verifier(self)
        self.enricher = Enricher(self)
        self.http = HttpApi(self)
        self.rpc: RpcServer | None = None

    # -- lifecycle -----------------------------------------------------------------------

    async def run(self) -> int:
        """Start, serve until asked to stop, stop; returns the process exit status."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.request_stop)
        loop.add_signal_handler(signal.SIGHUP, self.request_reload)
        try:
            await self.start()
            await self._stop_requested.wait()
        finally:
            await self.stop()
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(signum)
        return 0

    async def start(self) -> None:
        log.info("musiqued starting", version=__version__, pid=os.getpid())
        if self.notifier.watchdog_interval:
            # From the start: opening (and migrating) a large database takes a while too.
            self.spawn("watchdog", self._watchdog(self.notifier.watchdog_interval))
        self.notifier.status("opening database")
        await self.db.open()
        self._on_stop("database", self.db.close)
        for name, start, stop in self._components():
            await start()
            self._on_stop(name, stop)
        self.rpc = RpcServer(
            self.dispatcher,
            path=self.config.daemon.socket,
            mode=self.config.daemon.socket_mode_bits,
            policy=AccessPolicy(self.config.daemon.allowed_uids, self.config.daemon.allowed_gids),
            idle_timeout=self.config.daemon.idle_timeout_seconds,
            inherited=self._inherited_socket,
        )
        await self.rpc.start()
        self._on_stop("rpc server", self.rpc.close)
        self.spawn("status", self._status_loop())
        self.notifier.ready(self.status_line())
        log.info(
            "musiqued ready",
            socket=str(self.socket_path),
            activated=self.rpc.activated,
            database=str(self.config.daemon.database),
            lastfm_configured=self.config.lastfm.configured,
        )

    def _components(
        self,
    ) -> list[tuple[str, Callable[[], Awaitable[None]], Callable[[], Awaitable[None]]]]:
        """The services, in start order; each is stopped in reverse after the RPC server."""
        return [
            # First: every service calls Last.fm through it.
            ("lastfm", self.lastfm_connection.start, self.lastfm_connection.close),
            # Before the job runner: resumed imports wake it.
            ("enricher", self.enricher.start, self.enricher.stop),
            # Last: it resumes interrupted jobs, which use every component before it.
            ("jobs", self.jobs.start, self.jobs.stop),
            # After the job runner: a long gap is handed to an import job.
            ("tracker", self.tracker.open, self.tracker.close),
            # After the services it calls (importer, tracker): the original's HTTP API.
            ("http api", self.http.start, self.http.stop),
        ]

    async def stop(self) -> None:
        """Stop accepting, cancel our tasks, stop components in reverse, close the database."""
        self.notifier.stopping()
        log.info("musiqued stopping")
        if self.rpc is not None:
            await self.rpc.stop_accepting()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        while self._stops:
            name, stop = self._stops.pop()
            try:
                await asyncio.wait_for(stop(), STOP_TIMEOUT_S)
            except TimeoutError:
                log.error("component did not stop in time", component=name)
            except Exception:
                log.exception("component failed to stop", component=name)
        self.notifier.close()
        log.info("musiqued stopped")

    def _on_stop(self, name: str, stop: Callable[[], Awaitable[None]]) -> None:
        self._stops.append((name, stop))

    def spawn(self, name: str, coro: Awaitable[None]) -> None:
        """Run ``coro`` as a daemon-owned task: cancelled and awaited on stop, errors logged."""

        async def guarded() -> None:
            try:
                await coro
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("background task failed", task=name)

        task = asyncio.create_task(guarded(), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def require_lastfm(self) -> LastfmClient:
        """The Last.fm client; NotConfiguredError when the credentials are missing."""
        return self.lastfm_connection.require()

    def request_stop(self) -> None:
        self._stop_requested.set()

    def request_reload(self) -> None:
        self.spawn("reload", self._reload_logged())

    async def _reload_logged(self) -> None:
        with contextlib.suppress(ConfigError):
            await self.reload()

    async def reload(self) -> dict[str, Any]:
        """Re-read the configuration; keep the old one if the new one is invalid."""
        self.notifier.reloading()
        try:
            new = await asyncio.to_thread(load_config, self.config_path)
        except ConfigError as exc:
            log.error("reload failed; keeping the previous configuration", error=exc.message)
            self.notifier.ready(self.status_line())
            raise ConfigError(
                f"configuration not reloaded, the previous one stays in force: {exc.message}",
                kind="config_invalid",
            ) from None
        changed = sorted(
            section
            for section in type(new).model_fields
            if getattr(new, section) != getattr(self.config, section)
        )
        self.config = new
        register_config_secrets(new)
        await self._apply_config()
        self.notifier.ready(self.status_line())
        log.info("configuration reloaded", changed=changed)
        self.events.publish("daemon", event="reloaded", changed=changed)
        return {"status": "reloaded", "changed": changed}

    async def _apply_config(self) -> None:
        """Hand the new configuration to components that can change while running."""
        if self.rpc is not None:
            self.rpc.policy = AccessPolicy(
                self.config.daemon.allowed_uids, self.config.daemon.allowed_gids
            )
            self.rpc.idle_timeout = self.config.daemon.idle_timeout_seconds
        await self.lastfm_connection.reconfigure(self.config.lastfm)
        await self.tracker.reconfigure()
        await self.enricher.reconfigure()
        await self.http.apply_config()

    async def _watchdog(self, interval: float) -> None:
        while True:
            self.notifier.watchdog()
            await asyncio.sleep(interval)

    async def _status_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.notifier.status(self.status_line())

    # -- what the daemon reports ---------------------------------------------------------

    def add_status_provider(self, provider: Callable[[], str | None]) -> None:
        """A component's contribution to systemd's STATUS= line (None: nothing to say)."""
        self._status_providers.append(provider)

    def status_line(self) -> str:
        parts = [text for provider in self._status_providers if (text := provider())]
        return "; ".join(parts) if parts else "idle"

    @property
    def socket_path(self) -> Path:
        if self._inherited_socket is not None:
            # Activated: the socket systemd bound, wherever the config says it would be.
            with contextlib.suppress(OSError):
                name = self._inherited_socket.getsockname()
                if isinstance(name, str) and name:
                    return Path(name)
        return self.config.daemon.socket

    @property
    def uptime_s(self) -> float:
        return round(time.monotonic() - self._started_monotonic, 3)

    async def status(self) -> dict[str, Any]:
        return {
            "version": __version__,
            "api_version": wire.API_VERSION,
            "pid": os.getpid(),
            "uptime_s": self.uptime_s,
            "database": str(self.config.daemon.database),
            "socket": str(self.socket_path),
            "configured": {
                "lastfm": self.config.lastfm.configured,
                "spotify": self.config.spotify.configured,
                "ai": self.config.ai.configured,
            },
            "tracker": await self.tracker.status(),
            "jobs": await self.jobs.active(),
            # The shared Last.fm request rate: below nominal after error 29, then recovering.
            "governor": {
                "rate": round(self.governor.rate, 3),
                "nominal_rate": self.governor.nominal_rate,
                "penalties": self.governor.penalties,
            },
            "enrichment": await self.enricher.summary(),
            "listens": await count_listens(self.db),
            "status": self.status_line(),
        }
