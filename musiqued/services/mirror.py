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
(its keys are merged into the error) and ``named_index`` (``mirror_refusals``) finds it among those sent; a
server that names none (Maloja, Koito) gets the payload split in halves until each listen
it refuses stands alone (``Bisection``). Either way the groups go in the order the listens
were stored, so the position only moves forward, and a refused listen is recorded with the
server's reason and skipped, never sent again.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog

from musiqued.aio import cancel_and_wait
from musiqued.config import ListenbrainzConfig
from musiqued.errors import FatalUpstreamError, RateLimitedError, TransientUpstreamError
from musiqued.services.events import EventBus, Subscription
from musiqued.services.mirror_refusals import Bisection, named_index
from musiqued.storage import Database
from musiqued.storage.mirror import (
    PendingListen,
    acknowledge,
    count_pending,
    pending_listens,
    read_position,
)
from musiqued.storage.state import get_state, set_state
from musiqued.upstream.listenbrainz import ListenBrainzClient, SubmissionRefused
from musiqued.upstream.listenbrainz_listens import (
    MAX_LISTENS_PER_REQUEST,
    SendableListen,
    Unsendable,
    payloads,
    to_listenbrainz,
)
from musiqued.upstream.listenbrainz_pacing import Pacer

log = structlog.get_logger("musiqued.mirror")
T = TypeVar("T")

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
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep


@dataclass(frozen=True, slots=True)
class _Item:
    listen_id: int
    sendable: SendableListen


def _body(item: _Item) -> bytes:
    return item.sendable.body


class _Restart(Exception):
    """The configuration changed, or the mirror was paused, while it waited."""


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
        self._config = config
        self._clock = clock or MirrorClock()
        # Its own HTTP session: the tracker's Last.fm requests never queue behind it.
        self._client = client or ListenBrainzClient(config)
        self._pacer = Pacer(self._clock.monotonic)
        self._wake = asyncio.Event()
        self._changed = asyncio.Event()
        self._generation = 0
        self._task: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._subscription: Subscription | None = None
        self._paused = False
        self._server: str | None = None
        self._validated = False
        self._user: str | None = None
        self._position = 0
        self._submitted = 0
        self._refused = 0
        self._pending: int | None = None
        self._stopped: str | None = None
        self._last_error: str | None = None
        self._failing = False
        self._waiting_until: float | None = None
        self._now_playing: dict[str, Any] | None = None
        self._acknowledged: collections.deque[tuple[float, int]] = collections.deque()

    # -- lifecycle ---------------------------------------------------------------------------

    async def open(self) -> None:
        self._paused = bool(await get_state(self._db, PAUSED_KEY, False))
        await self._client.open()
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
        await self._client.close()

    async def reconfigure(self, config: ListenbrainzConfig) -> None:
        """A new ``[listenbrainz]`` section: a changed one is taken up, its token checked again
        (a mirror stopped by a refused token starts again)."""
        if config == self._config:
            return
        self._config = config
        self._client.reconfigure(config)
        # Checked again before the next request; a payload in flight is still recorded for
        # the server it went to.
        self._validated = False
        self._stopped = None
        self._last_error = None
        self._pending = None
        self._pacer = Pacer(self._clock.monotonic)
        self._restart()

    # -- control -----------------------------------------------------------------------------

    async def pause(self) -> dict[str, Any]:
        await set_state(self._db, PAUSED_KEY, True)
        if not self._paused:
            self._paused = True
            self._restart()
            log.info("mirror paused")
            self._events.publish("mirror", event="paused")
        return await self.status()

    async def resume(self) -> dict[str, Any]:
        await set_state(self._db, PAUSED_KEY, False)
        if self._paused:
            self._paused = False
            self._restart()
            log.info("mirror resumed")
            self._events.publish("mirror", event="resumed")
        return await self.status()

    async def status(self) -> dict[str, Any]:
        if not self._config.configured:
            self._pending = 0
        elif self._pending is None or not self._active:
            self._pending = await count_pending(self._db, self._position)
        return {
            "enabled": self._config.configured,
            "state": self._state,
            "paused": self._paused,
            "user": self._user,
            "submitted": self._submitted,
            "refused": self._refused,
            "pending": self._pending,
            "rate_per_s": round(self._rate(), 3),
            "last_error": self._last_error,
            "next_attempt_at": self._next_attempt_at(),
        }

    def status_line(self) -> str | None:
        state = self._state
        if state == "off":
            return None
        if state == "stopped":
            return f"mirror stopped: {self._stopped}"
        if state == "paused":
            return "mirror paused"
        if self._pending:
            return f"mirror: {self._pending} to send"
        return None

    @property
    def _active(self) -> bool:
        return self._config.configured and not self._paused and self._stopped is None

    @property
    def _state(self) -> str:
        if not self._config.configured:
            return "off"
        if self._stopped is not None:
            return "stopped"
        if self._paused:
            return "paused"
        if self._waiting_until is not None:
            return "waiting"
        return "sending" if self._pending else "idle"

    def _next_attempt_at(self) -> float | None:
        if self._waiting_until is None or not self._active:
            return None
        delay = max(0.0, self._waiting_until - self._clock.monotonic())
        return round(self._clock.wall() + delay, 3)

    def _rate(self) -> float:
        """Listens acknowledged per second over the last minute."""
        now = self._clock.monotonic()
        while self._acknowledged and self._acknowledged[0][0] < now - RATE_WINDOW_S:
            self._acknowledged.popleft()
        if not self._acknowledged:
            return 0.0
        span = max(now - self._acknowledged[0][0], 1.0)
        return sum(n for _, n in self._acknowledged) / span

    def _restart(self) -> None:
        self._generation += 1
        self._changed.set()

    # -- waking ------------------------------------------------------------------------------

    async def _listen(self, subscription: Subscription) -> None:
        while True:
            event = await subscription.get()
            if event.topic == "now_playing":
                playing = event.data.get("now_playing")
                self._now_playing = playing if isinstance(playing, dict) else None
            self._wake.set()

    async def _wait(self, seconds: float | None, *events: asyncio.Event) -> None:
        """Until ``seconds`` pass (never, if None) or one of ``events`` is set."""
        waiters: list[asyncio.Task[Any]] = [asyncio.create_task(event.wait()) for event in events]
        if seconds is not None:
            waiters.append(asyncio.create_task(self._sleep(seconds)))
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            # All cancelled first: a cancellation of ours ends the waiting after the first.
            for waiter in waiters:
                waiter.cancel()
            for waiter in waiters:
                await cancel_and_wait(waiter)

    async def _sleep(self, seconds: float) -> None:
        await self._clock.sleep(seconds)

    # -- the loop ----------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            self._changed.clear()
            if not self._active:
                await self._wait(None, self._changed)
                continue
            try:
                await self._step(self._generation)
            except _Restart:
                continue
            except FatalUpstreamError as exc:
                self._stop(exc.message)
            except Exception as exc:
                # The database, most likely (full, gone): say so, try again later.
                log.exception("mirror failed; trying again", retry_s=RETRY_S)
                self._last_error = f"mirror failed: {exc}"
                await self._wait(RETRY_S, self._changed)

    async def _step(self, generation: int) -> None:
        if not self._validated:
            user = await self._call(generation, self._client.validate_token)
            self._user = user
            self._validated = True
            self._server = f"{self._config.api_url} {user}"
            position = await read_position(self._db, self._server)
            self._position = position.acknowledged_id
            self._submitted, self._refused = position.submitted, position.refused
            log.info("mirror started", user=user, acknowledged_id=self._position)
        playing, self._now_playing = self._now_playing, None
        if playing is not None:
            await self._send_now_playing(generation, playing)
        self._wake.clear()
        listens = await pending_listens(self._db, self._position, MAX_LISTENS_PER_REQUEST)
        if not listens:
            self._pending = 0
            await self._wait(RECHECK_S, self._wake, self._changed)
            return
        if self._pending is None or self._pending < len(listens):
            self._pending = await count_pending(self._db, self._position)
        live = len(listens) <= SINGLE_AT_MOST and all(
            listen.fields["source"] == "tracker" for listen in listens
        )
        await self._send(generation, listens, "single" if live else "import")

    def _stop(self, message: str) -> None:
        self._stopped = self._last_error = message
        self._waiting_until = None
        log.error("mirror stopped: needs a human", error=message)
        self._events.publish("mirror", event="stopped", error=message)

    async def _call(self, generation: int, request: Callable[[], Awaitable[T]]) -> T:
        """``request`` when the pacer lets it go, again after a 429 or a failure; a refusal
        (400) or a fatal error is raised. ``_Restart`` if the configuration changes."""
        while True:
            delay = self._pacer.delay()
            if delay > 0:
                self._waiting_until = self._clock.monotonic() + delay
                await self._wait(delay, self._changed)
                self._waiting_until = None
            if generation != self._generation or not self._active:
                raise _Restart
            try:
                result = await request()
            except SubmissionRefused as refused:
                self._pacer.answered(refused.rate)
                raise
            except RateLimitedError as exc:
                self._pacer.rate_limited(exc.retry_after or 1.0)
                log.info("mirror rate limited", wait_s=exc.retry_after)
                continue
            except TransientUpstreamError as exc:
                pause = self._pacer.failed()
                if not self._failing:
                    self._failing = True
                    log.warning("mirror failing; trying again", error=exc.message)
                    self._events.publish("mirror", event="failing", error=exc.message)
                self._last_error = exc.message
                log.debug("mirror backs off", pause_s=round(pause, 3))
                continue
            self._pacer.answered(self._client.rate)
            if self._failing:
                self._failing = False
                log.info("mirror recovered")
                self._events.publish("mirror", event="recovered")
                self._last_error = None
            return result

    async def _send_now_playing(self, generation: int, playing: dict[str, Any]) -> None:
        listen = to_listenbrainz(playing, "playing_now")
        if isinstance(listen, Unsendable):
            log.info("now playing not mirrored", reason=listen.reason)
            return

        async def submit() -> None:
            await self._client.submit("playing_now", [listen])

        try:
            await self._call(generation, submit)
        except SubmissionRefused as refused:
            log.info("now playing refused by the mirror's server", reason=refused.reason)

    async def _send(self, generation: int, listens: list[PendingListen], listen_type: str) -> None:
        """Send ``listens`` (in stored order) and move the position past the last of them."""
        items: list[_Item] = []
        refusals: list[tuple[int, str]] = []
        for listen in listens:
            made = to_listenbrainz(listen.fields, listen_type)
            if isinstance(made, Unsendable):
                log.warning("listen not mirrored", listen_id=listen.id, reason=made.reason)
                refusals.append((listen.id, made.reason))
            else:
                if made.cut:
                    log.info("listen cut to fit", listen_id=listen.id, cut=made.cut)
                items.append(_Item(listen.id, made))
        if listen_type == "single":
            groups: list[list[_Item]] = [[item] for item in items]
        else:
            groups = list(payloads(items, _body, listen_type=listen_type))
        for group in groups:
            await self._settle(generation, group, listen_type, refusals)
        if refusals or not groups:
            await self._acknowledge(listens[-1].id, 0, refusals)

    async def _settle(
        self, generation: int, group: list[_Item], listen_type: str, refusals: list[tuple[int, str]]
    ) -> None:
        """Send ``group`` until each of its listens is acknowledged or refused."""
        try:
            await self._submit(generation, group, listen_type)
        except SubmissionRefused as refused:
            index = 0 if len(group) == 1 else named_index(group, _body, refused.listen)
            if index is None:
                await self._bisect(generation, group, listen_type, refusals)
                return
            self._record_refusal(group[index], refused.reason, refusals)
            rest = group[:index] + group[index + 1 :]
            if rest:
                await self._settle(generation, rest, listen_type, refusals)
            return
        await self._acknowledge(group[-1].listen_id, len(group), refusals)

    async def _bisect(
        self, generation: int, group: list[_Item], listen_type: str, refusals: list[tuple[int, str]]
    ) -> None:
        bisection = Bisection(group)
        while (part := bisection.next_group()) is not None:
            try:
                await self._submit(generation, part, listen_type)
            except SubmissionRefused as refused:
                bisection.refused(refused.reason)
                if len(part) == 1:
                    self._record_refusal(part[0], refused.reason, refusals)
                continue
            bisection.accepted()
            await self._acknowledge(part[-1].listen_id, len(part), refusals)

    def _record_refusal(self, item: _Item, reason: str, refusals: list[tuple[int, str]]) -> None:
        log.warning(
            "listen refused by the mirror's server", listen_id=item.listen_id, reason=reason
        )
        self._last_error = f"a listen was refused: {reason}"
        refusals.append((item.listen_id, reason))

    async def _submit(self, generation: int, group: list[_Item], listen_type: str) -> None:
        sendable = [item.sendable for item in group]

        async def submit() -> None:
            await self._client.submit(listen_type, sendable)

        await self._call(generation, submit)

    async def _acknowledge(
        self, up_to_id: int, submitted: int, refusals: list[tuple[int, str]]
    ) -> None:
        """Record what the server acknowledged (and what it refused before it), then the
        position, in one transaction."""
        server = self._server
        if server is None:
            raise RuntimeError("no server to acknowledge for")
        up_to_id = max(up_to_id, self._position)
        settled = [refusal for refusal in refusals if refusal[0] <= up_to_id]
        # The awaited write completes even if the task is cancelled meanwhile: what the
        # server has, the position records.
        await asyncio.shield(
            acknowledge(self._db, server, up_to_id, submitted=submitted, refusals=settled)
        )
        refusals[:] = [refusal for refusal in refusals if refusal[0] > up_to_id]
        done = submitted + len(settled)
        self._position = up_to_id
        self._submitted += submitted
        self._refused += len(settled)
        if self._pending is not None:
            self._pending = max(0, self._pending - done)
        if submitted:
            self._acknowledged.append((self._clock.monotonic(), submitted))
        self._events.publish(
            "mirror",
            event="progress",
            submitted=self._submitted,
            refused=self._refused,
            pending=self._pending,
        )
