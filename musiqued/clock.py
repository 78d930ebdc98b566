"""The clock the services read and wait on, given to them so that tests can drive time.

``now`` is the wall clock (what a person reads: timestamps shown and stored); ``monotonic``
measures intervals and never jumps; ``sleep`` waits on the monotonic clock. A component that
waits takes a ``Clock`` in its constructor, with ``SYSTEM_CLOCK`` as the default.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

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


async def sleep_or_wake(
    sleep: Callable[[float], Coroutine[Any, Any, None]],
    seconds: float | None,
    *wakes: asyncio.Event,
) -> bool:
    """Wait ``sleep(seconds)`` (forever if None) or until one of ``wakes`` is set; True if
    one is."""
    if any(wake.is_set() for wake in wakes):
        return True
    waiters: list[asyncio.Task[Any]] = [asyncio.create_task(wake.wait()) for wake in wakes]
    if seconds is not None:
        waiters.append(asyncio.create_task(sleep(seconds)))
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        # All cancelled first: a cancellation of ours ends the waiting after the first.
        for task in waiters:
            task.cancel()
        for task in waiters:
            await cancel_and_wait(task)
    return any(wake.is_set() for wake in wakes)
