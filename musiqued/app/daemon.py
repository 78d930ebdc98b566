"""The daemon object: the composition root.

It builds every component, hands each exactly what it uses through its constructor, opens
them in order and closes them in reverse; components never see the daemon, they talk
through the event bus or the callbacks wired here. Signal handlers only schedule work (a
stop or a reload) on the loop; the work itself runs here. Every background task is owned
by a component (or by the daemon: watchdog, status line) and cancelled and awaited on stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from musiqued import __version__, wire
from musiqued.aio import cancel_and_wait
from musiqued.app.config import load_config
from musiqued.app.logs import JobLogs, register_config_secrets, register_obtained_secret
from musiqued.app.reload import keep_restart_only, refuse_lost_lastfm
from musiqued.app.systemd import Notifier
from musiqued.config import Config
from musiqued.errors import ConfigError
from musiqued.rpc.dispatch import Dispatcher
from musiqued.rpc.listener import SocketListener
from musiqued.rpc.peers import AccessPolicy
from musiqued.rpc.server import RpcServer
from musiqued.services.enrichment import Enricher, EnrichmentSections
from musiqued.services.events import EventBus
from musiqued.services.facade import DaemonControl, Services
from musiqued.services.file_import import FileImporter
from musiqued.services.image_cache import ImageCache
from musiqued.services.importer import Importer
from musiqued.services.jobs import JobRunner
from musiqued.services.lastfm_session import LastfmConnection
from musiqued.services.library import Library
from musiqued.services.mirror import Mirror
from musiqued.services.tracker import Tracker
from musiqued.services.verifier import Verifier
from musiqued.services.window import WindowPager
from musiqued.storage import Database
from musiqued.storage.lock import DatabaseLock
from musiqued.upstream.images import ImageFetcher

if TYPE_CHECKING:
    from collections.abc import Mapping

    from musiqued.http.api import HttpApi
    from musiqued.rpc.table import Method

log = structlog.get_logger("musiqued.daemon")

STOP_TIMEOUT_S = 8.0
SLOW_STOP_S = 5.0
"""A stop still going on after this long logs what it waits for."""


def _report_slow_stop() -> None:
    """Log every task still pending, with where it waits: what a slow stop is stuck on."""
    for task in asyncio.all_tasks():
        frames = [
            f"{frame.f_code.co_filename}:{frame.f_lineno} {frame.f_code.co_name}"
            for frame in task.get_stack(limit=8)
        ]
        log.warning("stop is slow; a task is still pending", task=task.get_name(), stack=frames)


class Component(Protocol):
    """What the daemon opens at start and closes at stop."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...


def rpc_methods(extra: Sequence[Method]) -> Mapping[str, Method]:
    """Every RPC method, and ``extra`` (the test entry point's)."""
    # Loaded with the first request on the socket: each method's module and params model.
    from musiqued.rpc.methods import METHODS, with_extra

    return with_extra(METHODS, extra)


def enrichment_sections(config: Config) -> EnrichmentSections:
    return EnrichmentSections(config.enrichment, config.spotify, config.ai)


def build_services(
    config: Config, db: Database, events: EventBus, *, control: DaemonControl
) -> Services:
    """Build the services bottom up, each with what it uses and nothing more."""
    # Late-bound: the tracker is built after the connection whose changes it follows.
    tracker: Tracker | None = None

    def lastfm_changed() -> None:
        if tracker is not None:
            tracker.lastfm_changed()

    # One connection (and governor) for every Last.fm request: tracker first, then
    # imports, enrichment. New credentials wake a tracker that waits for them.
    lastfm = LastfmConnection(
        config.lastfm, db, on_change=lastfm_changed, on_secret=register_obtained_secret
    )
    jobs = JobRunner(db, events)
    pager = WindowPager(lastfm)
    # Covers and artist images, downloaded once beside the database, served by the front ends.
    images = ImageCache(
        db.path.parent / "images",
        ImageFetcher(config.enrichment.image_url_prefixes),
        config.enrichment.image_cache_bytes,
    )
    enricher = Enricher(db, lastfm, events, enrichment_sections(config), images)
    # Job kinds register with the runner as they are built, before it resumes old jobs.
    importer = Importer(jobs, db, pager, lastfm, config.lastfm, on_new_albums=enricher.wake)
    verifier = Verifier(jobs, db, pager, lastfm, config.lastfm, on_new_albums=enricher.wake)
    tracker = Tracker(db, lastfm, importer, events, config.tracker, on_new_albums=enricher.wake)
    files = FileImporter(
        jobs, db, config.imports, on_new_albums=enricher.wake, zone=config.daemon.zone
    )
    return Services(
        control=control,
        events=events,
        jobs=jobs,
        importer=importer,
        verifier=verifier,
        tracker=tracker,
        enricher=enricher,
        lastfm=lastfm,
        library=Library(db, config.daemon.zone),
        files=files,
        images=images,
        mirror=Mirror(db, events, config.listenbrainz),
    )


class Daemon:
    def __init__(
        self,
        config: Config,
        *,
        config_path: Path | None = None,
        notifier: Notifier | None = None,
        inherited_socket: socket.socket | None = None,
        extra_methods: Sequence[Method] = (),
        job_logs: JobLogs | None = None,
    ) -> None:
        self.config = config
        self.config_path = config_path
        self.notifier = notifier or Notifier()
        # Each job's recent log records, kept by the logging set-up, for the Settings page.
        self.job_logs = job_logs or JobLogs()
        self._started_monotonic = time.monotonic()
        self._stop_requested = asyncio.Event()
        self._opened: list[tuple[str, Callable[[], Awaitable[None]]]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._database_error: str | None = None

        self.events = EventBus()
        database = config.daemon.database
        self.db_lock = DatabaseLock(database)
        self.listener = SocketListener(
            config.daemon.socket, mode=config.daemon.socket_mode_bits, inherited=inherited_socket
        )
        # Exclusive: the lock file beside it can be deleted by hand; the database cannot be
        # without this daemon noticing.
        self.db = Database(database, exclusive=True)
        self.services = build_services(config, self.db, self.events, control=self)
        self.rpc = RpcServer(
            Dispatcher(functools.partial(rpc_methods, extra_methods), self.services),
            listener=self.listener,
            policy=AccessPolicy(config.daemon.allowed_uids, config.daemon.allowed_gids),
            idle_timeout=config.daemon.idle_timeout_seconds,
        )
        self.http = self._http_api(config) if config.http.listen else None
        self._status_lines: tuple[Callable[[], str | None], ...] = (
            self.services.jobs.status_line,
            self.services.tracker.status_line,
            self.services.enricher.status_line,
            self.services.mirror.status_line,
        )

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

    def _http_api(self, config: Config) -> HttpApi:
        """The HTTP front end (``[http] listen``); aiohttp.web loads only then."""
        from musiqued.http.api import HttpApi

        return HttpApi(
            self.services,
            config.http,
            state_dir=config.daemon.database.parent,
            job_log=self.job_logs.records,
        )

    def _components(self) -> list[tuple[str, Component]]:
        """In open order; closed in reverse."""
        services = self.services
        http: list[tuple[str, Component]] = [("http api", self.http)] if self.http else []
        return [
            # First, before anything touches the database or the socket: one daemon per
            # database, then one per socket (a second daemon stops here, exit 75).
            ("database lock", self.db_lock),
            # Bound and listening from here on; served once everything is up.
            ("socket", self.listener),
            ("database", self.db),
            # First of the services: every one calls Last.fm through it.
            ("lastfm", services.lastfm),
            ("images", services.images),
            # Before the job runner: resumed imports wake it.
            ("enricher", services.enricher),
            # It resumes interrupted jobs, which use every component before it.
            ("jobs", services.jobs),
            # After the job runner: a long gap is handed to an import job.
            ("tracker", services.tracker),
            # After the tracker: it follows the listens the tracker and the jobs store.
            ("mirror", services.mirror),
            # Last: clients are served once everything they may call is up.
            *http,
            ("rpc server", self.rpc),
        ]

    async def start(self) -> None:
        log.info("musiqued starting", version=__version__, pid=os.getpid())
        if self.notifier.watchdog_interval:
            # From the start: opening (and migrating) a large database takes a while too.
            self.spawn("watchdog", self._watchdog(self.notifier.watchdog_interval))
        self.notifier.status("opening database")
        for name, component in self._components():
            await component.open()
            self._opened.append((name, component.close))
        self.spawn("status", self._status_loop())
        self.notifier.ready(self.status_line())
        log.info(
            "musiqued ready",
            socket=str(self.socket_path),
            activated=self.rpc.activated,
            database=str(self.config.daemon.database),
            lastfm_configured=self.config.lastfm.configured,
        )

    async def stop(self) -> None:
        """Stop accepting, cancel our tasks, close components in reverse."""
        self.notifier.stopping()
        log.info("musiqued stopping")
        slow = asyncio.get_running_loop().call_later(SLOW_STOP_S, _report_slow_stop)
        await self.rpc.stop_accepting()
        for task in list(self._tasks):
            await cancel_and_wait(task)
        while self._opened:
            name, close = self._opened.pop()
            log.debug("closing component", component=name)
            try:
                async with asyncio.timeout(STOP_TIMEOUT_S):
                    await close()
            except TimeoutError:
                log.error("component did not stop in time", component=name)
            except Exception:
                log.exception("component failed to stop", component=name)
        slow.cancel()
        self.notifier.close()
        log.info("musiqued stopped")

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

    def request_stop(self) -> None:
        self._stop_requested.set()

    def request_reload(self) -> None:
        self.spawn("reload", self._reload_logged())

    async def _reload_logged(self) -> None:
        with contextlib.suppress(ConfigError):
            await self.reload()

    # -- DaemonControl -------------------------------------------------------------------

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
        new, needs_restart = keep_restart_only(self.config, new)
        try:
            refuse_lost_lastfm(self.config, new, await self.services.jobs.active())
        except ConfigError as exc:
            log.error("reload refused; keeping the previous configuration", error=exc.message)
            self.notifier.ready(self.status_line())
            raise
        if needs_restart:
            log.warning(
                "reload: settings that need a restart keep their value", needs_restart=needs_restart
            )
        changed = sorted(
            section
            for section in type(new).model_fields
            if getattr(new, section) != getattr(self.config, section)
        )
        self.config = new
        register_config_secrets(new)
        await self._reconfigure(new)
        self.notifier.ready(self.status_line())
        log.info("configuration reloaded", changed=changed)
        self.events.publish("daemon", event="reloaded", changed=changed)
        if needs_restart:
            return {"status": "reloaded", "changed": changed, "needs_restart": needs_restart}
        return {"status": "reloaded", "changed": changed}

    async def _reconfigure(self, config: Config) -> None:
        """Hand each component its new section."""
        self.rpc.set_policy(AccessPolicy(config.daemon.allowed_uids, config.daemon.allowed_gids))
        self.rpc.idle_timeout = config.daemon.idle_timeout_seconds
        services = self.services
        services.library.zone = config.daemon.zone
        services.importer.reconfigure(config.lastfm)
        services.verifier.reconfigure(config.lastfm)
        services.files.reconfigure(config.imports)
        await services.tracker.reconfigure(config.tracker)
        await services.lastfm.reconfigure(config.lastfm)
        services.images.reconfigure(
            config.enrichment.image_url_prefixes, config.enrichment.image_cache_bytes
        )
        await services.enricher.reconfigure(enrichment_sections(config))
        await services.mirror.reconfigure(config.listenbrainz)
        if self.http is not None:
            await self.http.reconfigure(config.http)
        elif config.http.listen:
            # A reload that sets [http] listen starts the listener; it then closes with
            # the rest, before the RPC server (opened after it at start).
            self.http = self._http_api(config)
            await self.http.open()
            self._opened.insert(len(self._opened) - 1, ("http api", self.http.close))

    async def status(self) -> dict[str, Any]:
        """What ``daemon.status`` answers."""
        self._check_database()
        governor = self.services.lastfm.governor
        # Asked together, the reads queue on the reader at once: the answer waits for the
        # busy event loop of an import once, not once per read.
        tracker, jobs, enrichment, mirror, listens = await asyncio.gather(
            self.services.tracker.status(),
            self.services.jobs.active(),
            self.services.enricher.summary(),
            self.services.mirror.status(),
            self.services.library.count(),
        )
        return {
            "version": __version__,
            "api_version": wire.API_VERSION,
            "pid": os.getpid(),
            "uptime_s": self.uptime_s,
            "database": str(self.config.daemon.database),
            # Set when the database file was deleted or replaced under the daemon.
            "database_error": self._database_error,
            "socket": str(self.socket_path),
            "configured": {
                "lastfm": self.config.lastfm.configured,
                "spotify": self.config.spotify.configured,
                "ai": self.config.ai.configured,
            },
            "tracker": tracker,
            "jobs": jobs,
            # The shared Last.fm request rate: below nominal after error 29, then recovering.
            "governor": {
                "rate": round(governor.rate, 3),
                "nominal_rate": governor.nominal_rate,
                "penalties": governor.penalties,
            },
            "enrichment": enrichment,
            "mirror": mirror,
            "listens": listens,
            "subscribers": self.events.subscriber_count,
            "status": self.status_line(),
        }

    # -- what the daemon reports ---------------------------------------------------------

    async def _watchdog(self, interval: float) -> None:
        while True:
            self.notifier.watchdog()
            await asyncio.sleep(interval)

    async def _status_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self._check_database()
            self.notifier.status(self.status_line())

    def _check_database(self) -> None:
        """Is the database file still the one we write? Say so loudly, once, when it is not
        (the writer refuses every write from then on)."""
        if self._database_error is not None:
            return
        problem = self.db.check_file()
        if problem is None:
            return
        self._database_error = f"{problem}; writes stopped, restart musiqued"
        log.error(
            "database file gone; writes stopped",
            database=str(self.config.daemon.database),
            error=self._database_error,
        )
        self.events.publish("daemon", event="database_gone", error=self._database_error)

    def status_line(self) -> str:
        parts = [text for line in self._status_lines if (text := line())]
        if self._database_error is not None:
            parts.insert(0, f"DATABASE GONE: {self._database_error}")
        return "; ".join(parts) if parts else "idle"

    @property
    def socket_path(self) -> Path:
        """The socket clients use (when activated, the one systemd bound)."""
        return self.listener.served_path

    @property
    def uptime_s(self) -> float:
        return round(time.monotonic() - self._started_monotonic, 3)
