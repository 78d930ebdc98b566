"""Asyncio idioms that must be exactly right, in one place.

Python 3.11's ``asyncio.wait_for`` loses a cancellation when the awaited thing finishes at
the same moment (the result is returned and the caller never learns it was cancelled); a
lane of the enricher, woken just as the daemon stopped, then looped on and held the stop
forever. ``asyncio.timeout`` does not have that flaw. Likewise ``suppress(CancelledError)``
around ``await task`` swallows the caller's own cancellation along with the task's.
"""

from __future__ import annotations

import asyncio
from typing import Any


async def cancel_and_wait(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` and wait for it to end; the caller's own cancellation meanwhile is
    not swallowed (it propagates). Errors the task ends with propagate too."""
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise


async def wait_event(event: asyncio.Event, seconds: float) -> bool:
    """Wait until ``event`` is set (True) or ``seconds`` pass (False)."""
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True
