"""The mirror's sending: the ListenBrainz client, the payloads and the pacing, for one server.

``Mirror`` (``services/mirror.py``, which tells the whole story) builds it the first time it
has a server to send to, and shares its ``MirrorState`` with it: ``step`` checks the token
once, sends now playing, then the pending listens in the order they were stored, and moves
the position in the transaction that records what the server acknowledged or refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog

from musiqued.clock import sleep_or_wake
from musiqued.config import ListenbrainzConfig
from musiqued.errors import RateLimitedError, TransientUpstreamError
from musiqued.services.events import EventBus
from musiqued.services.mirror import (
    RECHECK_S,
    SINGLE_AT_MOST,
    MirrorClock,
    MirrorState,
    Restart,
)
from musiqued.services.mirror_refusals import Bisection, named_index
from musiqued.storage import Database
from musiqued.storage.mirror import (
    PendingListen,
    acknowledge,
    count_pending,
    pending_listens,
    read_position,
)
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


@dataclass(frozen=True, slots=True)
class _Item:
    listen_id: int
    sendable: SendableListen


def _body(item: _Item) -> bytes:
    return item.sendable.body


class Sending:
    """Sends the stored listens to the configured server; ``Restart`` when the mirror's
    configuration or pause changes under it."""

    def __init__(
        self,
        db: Database,
        events: EventBus,
        clock: MirrorClock,
        state: MirrorState,
        client: ListenBrainzClient | None = None,
    ) -> None:
        self._db = db
        self._events = events
        self._clock = clock
        self._state = state
        # Its own HTTP session: the tracker's Last.fm requests never queue behind it.
        self._client = client or ListenBrainzClient(state.config)
        self._pacer = Pacer(clock.monotonic)

    async def open(self) -> None:
        await self._client.open()

    async def close(self) -> None:
        await self._client.close()

    def reconfigure(self, config: ListenbrainzConfig) -> None:
        self._client.reconfigure(config)
        self._pacer = Pacer(self._clock.monotonic)

    async def step(self, generation: int) -> None:
        """Check the token (once), send now playing, then the next pending listens; wait for
        a wake-up when none are pending."""
        state = self._state
        if not state.validated:
            user = await self._call(generation, self._client.validate_token)
            state.user = user
            state.validated = True
            state.server = f"{state.config.api_url} {user}"
            position = await read_position(self._db, state.server)
            state.position = position.acknowledged_id
            state.submitted, state.refused = position.submitted, position.refused
            log.info("mirror started", user=user, acknowledged_id=state.position)
        playing, state.now_playing = state.now_playing, None
        if playing is not None:
            await self._send_now_playing(generation, playing)
        state.wake.clear()
        listens = await pending_listens(self._db, state.position, MAX_LISTENS_PER_REQUEST)
        if not listens:
            state.pending = 0
            await sleep_or_wake(self._clock.sleep, RECHECK_S, state.wake, state.changed)
            return
        if state.pending is None or state.pending < len(listens):
            state.pending = await count_pending(self._db, state.position)
        live = len(listens) <= SINGLE_AT_MOST and all(
            listen.fields["source"] == "tracker" for listen in listens
        )
        await self._send(generation, listens, "single" if live else "import")

    async def _call(self, generation: int, request: Callable[[], Awaitable[T]]) -> T:
        """``request`` when the pacer lets it go, again after a 429 or a failure; a refusal
        (400) or a fatal error is raised. ``Restart`` if the configuration changes."""
        state = self._state
        while True:
            delay = self._pacer.delay()
            if delay > 0:
                state.waiting_until = self._clock.monotonic() + delay
                await sleep_or_wake(self._clock.sleep, delay, state.changed)
                state.waiting_until = None
            if generation != state.generation or not state.active:
                raise Restart
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
                if not state.failing:
                    state.failing = True
                    log.warning("mirror failing; trying again", error=exc.message)
                    self._events.publish("mirror", event="failing", error=exc.message)
                state.last_error = exc.message
                log.debug("mirror backs off", pause_s=round(pause, 3))
                continue
            self._pacer.answered(self._client.rate)
            if state.failing:
                state.failing = False
                log.info("mirror recovered")
                self._events.publish("mirror", event="recovered")
                state.last_error = None
            return result

    async def _send_now_playing(self, generation: int, playing: dict[str, Any]) -> None:
        listen = to_listenbrainz(playing, "playing_now")
        if isinstance(listen, Unsendable):
            log.info("now playing not mirrored", reason=listen.reason)
            return
        try:
            await self._call(generation, lambda: self._client.submit("playing_now", [listen]))
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
                bisection.refused()
                if len(part) == 1:
                    self._record_refusal(part[0], refused.reason, refusals)
                continue
            bisection.accepted()
            await self._acknowledge(part[-1].listen_id, len(part), refusals)

    def _record_refusal(self, item: _Item, reason: str, refusals: list[tuple[int, str]]) -> None:
        log.warning(
            "listen refused by the mirror's server", listen_id=item.listen_id, reason=reason
        )
        self._state.last_error = f"a listen was refused: {reason}"
        refusals.append((item.listen_id, reason))

    async def _submit(self, generation: int, group: list[_Item], listen_type: str) -> None:
        sendable = [item.sendable for item in group]
        await self._call(generation, lambda: self._client.submit(listen_type, sendable))

    async def _acknowledge(
        self, up_to_id: int, submitted: int, refusals: list[tuple[int, str]]
    ) -> None:
        """Record what the server acknowledged (and what it refused before it), then the
        position, in one transaction."""
        server = self._state.server
        if server is None:
            raise RuntimeError("no server to acknowledge for")
        up_to_id = max(up_to_id, self._state.position)
        settled = [refusal for refusal in refusals if refusal[0] <= up_to_id]
        # The awaited write completes even if the task is cancelled meanwhile: what the
        # server has, the position records.
        await asyncio.shield(
            acknowledge(self._db, server, up_to_id, submitted=submitted, refusals=settled)
        )
        refusals[:] = [refusal for refusal in refusals if refusal[0] > up_to_id]
        done = submitted + len(settled)
        self._state.position = up_to_id
        self._state.submitted += submitted
        self._state.refused += len(settled)
        if self._state.pending is not None:
            self._state.pending = max(0, self._state.pending - done)
        if submitted:
            self._state.acknowledged.append((self._clock.monotonic(), submitted))
        self._events.publish(
            "mirror",
            event="progress",
            submitted=self._state.submitted,
            refused=self._state.refused,
            pending=self._state.pending,
        )
