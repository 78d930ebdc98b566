"""The clock the services read and wait on, given to them so that tests can drive time.

``now`` is the wall clock (what a person reads: timestamps shown and stored); ``monotonic``
measures intervals and never jumps; ``sleep`` waits on the monotonic clock. A component that
waits takes a ``Clock`` in its constructor, with ``SYSTEM_CLOCK`` as the default.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from musiqued.aio import cancel_and_wait


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch (the wall clock; it may jump)."""

    def monotonic(self) -> float:
        """Seconds on a clock that never jumps, for intervals and deadlines."""

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` on the monotonic clock."""


class SystemClock:
    """The machine's clocks; ``sleep`` is the event loop's."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


SYSTEM_CLOCK: Clock = SystemClock()


async def sleep_or_wake(clock: Clock, wake: asyncio.Event, seconds: float) -> bool:
    """Wait ``seconds`` on ``clock`` or until ``wake`` is set; True if ``wake`` ended it."""
    if wake.is_set():
        return True
    waiting = asyncio.ensure_future(wake.wait())
    sleeping = asyncio.ensure_future(clock.sleep(seconds))
    try:
        await asyncio.wait({waiting, sleeping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        # Both cancelled first: a cancellation of ours ends the waiting after the first.
        for task in (waiting, sleeping):
            task.cancel()
        for task in (waiting, sleeping):
            await cancel_and_wait(task)
    return wake.is_set()
