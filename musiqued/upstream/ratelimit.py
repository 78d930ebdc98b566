"""The one rate governor every Last.fm request goes through.

A token bucket at ``requests_per_second`` (holding one token, so requests are evenly spaced
and never burst past what Last.fm allows) plus ``max_in_flight`` places. Waiting requests are
served by priority: the tracker before imports before enrichment, first come first served
within a priority. ``penalize()`` (Last.fm error 29, HTTP 429) halves the rate and drains the
bucket; after a short hold the rate climbs back to nominal by a fixed share per second.

Waiters are futures in a heap, woken when a request ends or, when the next token is due, by
one timer: a task sleeping on the governor's ``Clock`` (a test's clock drives it).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from enum import IntEnum

from musiqued.clock import SYSTEM_CLOCK, Clock


class Priority(IntEnum):
    TRACKER = 0
    IMPORT = 1
    ENRICH = 2


class Governor:
    def __init__(
        self,
        requests_per_second: float,
        max_in_flight: int,
        *,
        min_share: float = 1 / 32,
        hold_seconds: float = 1.0,
        recovery_per_second: float = 0.2,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        """``recovery_per_second``: share of the nominal rate regained per second after a hold."""
        self._clock = clock
        self._nominal = requests_per_second
        self._rate = requests_per_second
        self._max_in_flight = max_in_flight
        self._min_share = min_share
        self._hold = hold_seconds
        self._recovery = recovery_per_second
        self._tokens = 1.0
        self._stamp = self._clock.monotonic()
        self._penalized_at = -1e9
        self._in_flight = 0
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._timer: asyncio.Task[None] | None = None
        self.penalties = 0

    # -- what callers see ----------------------------------------------------------------

    @property
    def rate(self) -> float:
        self._refill(self._clock.monotonic())
        return self._rate

    @property
    def nominal_rate(self) -> float:
        return self._nominal

    @property
    def max_in_flight(self) -> int:
        return self._max_in_flight

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def waiting(self) -> int:
        return sum(1 for *_, fut in self._waiters if not fut.done())

    @asynccontextmanager
    async def slot(self, priority: Priority = Priority.IMPORT) -> AsyncIterator[None]:
        """Wait for a token and an in-flight place, then hold the place for the request."""
        if not self._waiters and self._try_take(self._clock.monotonic()):
            pass
        else:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            heapq.heappush(self._waiters, (int(priority), next(self._seq), future))
            self._dispatch()
            try:
                await future
            except asyncio.CancelledError:
                if future.done() and not future.cancelled():
                    self._release()  # woken and cancelled at once: give the place back
                raise
        try:
            yield
        finally:
            self._release()

    def penalize(self) -> None:
        """Slow everyone down: Last.fm said 29 (rate limit exceeded)."""
        now = self._clock.monotonic()
        self._refill(now)
        self.penalties += 1
        if now - self._penalized_at > 1.0 / max(self._rate, 1e-9):
            # One halving per burst: concurrent requests all hit by one burst count once.
            self._rate = max(self._nominal * self._min_share, self._rate / 2)
        self._penalized_at = now
        self._tokens = min(self._tokens, 0.0)

    def reconfigure(self, requests_per_second: float, max_in_flight: int) -> None:
        now = self._clock.monotonic()
        self._refill(now)
        penalized = self._rate < self._nominal
        self._nominal = requests_per_second
        self._rate = min(self._rate, requests_per_second) if penalized else requests_per_second
        self._max_in_flight = max_in_flight
        self._dispatch()

    # -- the bucket ----------------------------------------------------------------------

    def _refill(self, now: float) -> None:
        elapsed = now - self._stamp
        if elapsed <= 0:
            return
        if self._rate < self._nominal:
            recovering_since = max(self._stamp, self._penalized_at + self._hold)
            climb = now - recovering_since
            if climb > 0:
                self._rate = min(self._nominal, self._rate + self._nominal * self._recovery * climb)
        self._tokens = min(1.0, self._tokens + elapsed * self._rate)
        self._stamp = now

    def _try_take(self, now: float) -> bool:
        if self._in_flight >= self._max_in_flight:
            return False
        self._refill(now)
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        self._in_flight += 1
        return True

    def _release(self) -> None:
        self._in_flight -= 1
        self._dispatch()

    def _dispatch(self) -> None:
        """Wake waiters in priority order while tokens and places allow; else set a timer."""
        now = self._clock.monotonic()
        while self._waiters:
            future = self._waiters[0][2]
            if future.done():  # cancelled while waiting
                heapq.heappop(self._waiters)
                continue
            if not self._try_take(now):
                break
            heapq.heappop(self._waiters)
            future.set_result(None)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._waiters and self._in_flight < self._max_in_flight:
            delay = (1.0 - self._tokens) / max(self._rate, 1e-9)
            self._timer = asyncio.create_task(self._dispatch_after(max(delay, 0.0)))

    async def _dispatch_after(self, delay: float) -> None:
        await self._clock.sleep(delay)
        self._timer = None  # done: ``_dispatch`` must not cancel the task running it
        self._dispatch()
