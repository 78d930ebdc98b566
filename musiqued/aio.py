"""Asyncio idioms that must be exactly right, in one place.

``suppress(CancelledError)`` around ``await task`` swallows the caller's own cancellation
along with the task's; ``cancel_and_wait`` lets it through.
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
