"""The ListenBrainz mirror: every stored listen, once, to a server speaking ListenBrainz's API.

``Mirror`` follows a position per server (``storage/mirror.py``): the id of the last listen
acknowledged or refused. It reads the listens stored after it in the order they were
stored, sends them (``import`` payloads for a backlog, ``single`` for the few the tracker
has just stored), and moves the position in the transaction that records the
acknowledgement: after a kill at most the payload in flight goes again, and without one no
listen goes twice. The tracker's ``scrobble`` and ``now_playing`` events and the jobs'
progress wake it; a slow recheck covers listens stored by any other path.

Pacing (``upstream/listenbrainz_pacing.Pacer``) follows the server's budget, its 429s and
backs off on failures. A refused token (401) stops the mirror until the configuration
changes. A 400 refuses a whole payload for one bad listen: ListenBrainz names that listen
(its keys are merged into the error) and ``named_index`` (``mirror_refusals``) finds it
among those sent; a server that names none (Maloja, Koito) gets the payload split in halves
until each listen it refuses stands alone (``Bisection``). Either way the groups go in the order the listens
were stored, so the position only moves forward, and a refused listen is recorded with the
server's reason and skipped, never sent again.

The sending (``mirror_sending.py``: the ListenBrainz client, the payloads, the pacing) is
built when the mirror first has a server to send to: a daemon without ``[listenbrainz]``
never loads it.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from musiqued.aio import cancel_and_wait
from musiqued.clock import sleep_or_wake
from musiqued.config import ListenbrainzConfig
from musiqued.errors import FatalUpstreamError
from musiqued.services.events import EventBus, Subscription
from musiqued.storage import Database
from musiqued.storage.mirror import count_pending
from musiqued.storage.state import get_state, set_state

if TYPE_CHECKING:
    from musiqued.services.mirror_sending import Sending
    from musiqued.upstream.listenbrainz import ListenBrainzClient

log = structlog.get_logger("musiqued.mirror")

PAUSED_KEY = "mirror_paused"
RECHECK_S = 60.0
"""How long the mirror waits for a wake-up before it looks for new listens anyway: listens
stored by a path that publishes no event (a file import) are found by then."""
SINGLE_AT_MOST = 10
"""Listens the tracker has just stored go as ``single``, one per request, when no more than
this many are pending; more, or any stored by another path, go as an ``import``."""
RATE_WINDOW_S = 60.0
RETRY_S = 30.0
"""The pause after an unexpected failure (the database full or gone) before trying again."""
WAKE_TOPICS = ("scrobble", "job", "now_playing")


@dataclass(frozen=True, slots=True)
class MirrorClock:
    """The mirror's time: the pacer's monotonic clock, the wall clock it reports, its waits."""

    monotonic: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    sleep: Callable[[float], Coroutine[Any, Any, None]] = asyncio.sleep


class Restart(Exception):
    """The configuration changed, or the mirror was paused, while it waited."""


@dataclass(slots=True)
class MirrorState:
    """What the mirror knows and reports; its sending keeps the server's part up to date."""

    config: ListenbrainzConfig
    paused: bool = False
    stopped: str | None = None
    generation: int = 0
    """Moves on each change of configuration or pause: the sending in progress restarts."""
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    now_playing: dict[str, Any] | None = None
    validated: bool = False
    server: str | None = None
    user: str | None = None
    position: int = 0
    submitted: int = 0
    refused: int = 0
    pending: int | None = None
    last_error: str | None = None
    failing: bool = False
    waiting_until: float | None = None
    acknowledged: collections.deque[tuple[float, int]] = field(default_factory=collections.deque)
    """(monotonic time, listens) of each acknowledgement of the last minute."""

    @property
    def active(self) -> bool:
        return self.config.configured and not self.paused and self.stopped is None


class Mirror:
    """Keeps one ListenBrainz-API server in step with the stored listens."""

    def __init__(
        self,
        db: Database,
        events: EventBus,
        config: ListenbrainzConfig,
        *,
        clock: MirrorClock | None = None,
        client: ListenBrainzClient | None = None,
    ) -> None:
        self._db = db
        self._events = events
        self._clock = clock or MirrorClock()
        self._client = client
        self._state = MirrorState(config)
        self._sending: Sending | None = None
        self._task: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._subscription: Subscription | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def open(self) -> None:
        self._state.paused = bool(await get_state(self._db, PAUSED_KEY, False))
        self._subscription = self._events.subscribe(WAKE_TOPICS, internal=True)
        self._listener = asyncio.create_task(self._listen(self._subscription), name="mirror events")
        self._task = asyncio.create_task(self._run(), name="mirror")

    async def close(self) -> None:
        for task in (self._task, self._listener):
            if task is not None:
                await cancel_and_wait(task)
        self._task = self._listener = None
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None
        if self._sending is not None:
            await self._sending.close()
            self._sending = None

    async def reconfigure(self, config: ListenbrainzConfig) -> None:
        """A new ``[listenbrainz]`` section: a changed one is taken up, its token checked again
        (a mirror stopped by a refused token starts again)."""
        state = self._state
        if config == state.config:
            return
        state.config = config
        if self._sending is not None:
            self._sending.reconfigure(config)
        # Checked again before the next request; a payload in flight is still recorded for
        # the server it went to.
        state.validated = False
        state.stopped = None
        state.last_error = None
        state.pending = None
        self._restart()

    # -- control -----------------------------------------------------------------------------

    async def pause(self) -> dict[str, Any]:
        return await self._set_paused(True)

    async def resume(self) -> dict[str, Any]:
        return await self._set_paused(False)

    async def _set_paused(self, paused: bool) -> dict[str, Any]:
        await set_state(self._db, PAUSED_KEY, paused)
        if self._state.paused != paused:
            self._state.paused = paused
            self._restart()
            event = "paused" if paused else "resumed"
            log.info(f"mirror {event}")
            self._events.publish("mirror", event=event)
        return await self.status()

    async def status(self) -> dict[str, Any]:
        state = self._state
        if not state.config.configured:
            state.pending = 0
        elif state.pending is None or not state.active:
            state.pending = await count_pending(self._db, state.position)
        return {
            "enabled": state.config.configured,
            "state": self._phase,
            "paused": state.paused,
            "user": state.user,
            "submitted": state.submitted,
            "refused": state.refused,
            "pending": state.pending,
            "rate_per_s": round(self._rate(), 3),
            "last_error": state.last_error,
            "next_attempt_at": self._next_attempt_at(),
        }

    def status_line(self) -> str | None:
        phase = self._phase
        if phase == "off":
            return None
        if phase == "stopped":
            return f"mirror stopped: {self._state.stopped}"
        if phase == "paused":
            return "mirror paused"
        if self._state.pending:
            return f"mirror: {self._state.pending} to send"
        return None

    @property
    def _phase(self) -> str:
        state = self._state
        if not state.config.configured:
            return "off"
        if state.stopped is not None:
            return "stopped"
        if state.paused:
            return "paused"
        if state.waiting_until is not None:
            return "waiting"
        return "sending" if state.pending else "idle"

    def _next_attempt_at(self) -> float | None:
        state = self._state
        if state.waiting_until is None or not state.active:
            return None
        delay = max(0.0, state.waiting_until - self._clock.monotonic())
        return round(self._clock.wall() + delay, 3)

    def _rate(self) -> float:
        """Listens acknowledged per second over the last minute."""
        acknowledged = self._state.acknowledged
        now = self._clock.monotonic()
        while acknowledged and acknowledged[0][0] < now - RATE_WINDOW_S:
            acknowledged.popleft()
        if not acknowledged:
            return 0.0
        span = max(now - acknowledged[0][0], 1.0)
        return sum(n for _, n in acknowledged) / span

    def _restart(self) -> None:
        self._state.generation += 1
        self._state.changed.set()

    # -- waking ------------------------------------------------------------------------------

    async def _listen(self, subscription: Subscription) -> None:
        while True:
            event = await subscription.get()
            if event.topic == "now_playing":
                playing = event.data.get("now_playing")
                self._state.now_playing = playing if isinstance(playing, dict) else None
            self._state.wake.set()

    # -- the loop ----------------------------------------------------------------------------

    async def _run(self) -> None:
        state = self._state
        while True:
            state.changed.clear()
            if not state.active:
                await sleep_or_wake(self._clock.sleep, None, state.changed)
                continue
            try:
                sending = await self._opened_sending()
                await sending.step(state.generation)
            except Restart:
                continue
            except FatalUpstreamError as exc:
                self._stop(exc.message)
            except Exception as exc:
                # The database, most likely (full, gone): say so, try again later.
                log.exception("mirror failed; trying again", retry_s=RETRY_S)
                state.last_error = f"mirror failed: {exc}"
                await sleep_or_wake(self._clock.sleep, RETRY_S, state.changed)

    async def _opened_sending(self) -> Sending:
        """The sending, built the first time the mirror has a server to send to."""
        if self._sending is None:
            # The ListenBrainz client, payloads and pacing load only for a configured mirror.
            from musiqued.services.mirror_sending import Sending

            sending = Sending(self._db, self._events, self._clock, self._state, self._client)
            await sending.open()
            self._sending = sending
        return self._sending

    def _stop(self, message: str) -> None:
        state = self._state
        state.stopped = state.last_error = message
        state.waiting_until = None
        log.error("mirror stopped: needs a human", error=message)
        self._events.publish("mirror", event="stopped", error=message)
