"""Asyncio idioms that must be exactly right, in one place.

Python 3.11's ``asyncio.wait_for`` loses a cancellation when the awaited thing finishes at
the same moment (the result is returned and the caller never learns it was cancelled); a
lane of the enricher, woken just as the daemon stopped, then looped on and held the stop
forever. ``asyncio.timeout`` does not have that flaw. Likewise ``suppress(CancelledError)``
around ``await task`` swallows the caller's own cancellation along with the task's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from typing import Any, Generic, TypeAlias, TypeVar

T = TypeVar("T")

Turns: TypeAlias = Generator[None, None, T]
"""Work that may pause wherever it yields, and returns its result: run by ``in_turns`` on
the event loop (others run at each pause), or by ``at_once`` anywhere else."""


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


async def give_way() -> None:
    """Let the event loop poll for I/O, and run what that woke, before going on.

    One ``sleep(0)`` only moves the caller behind the callbacks already queued; whatever
    the poll that follows wakes (an RPC client's call) is queued behind the caller again.
    The second ``sleep(0)`` puts the caller after those too: a task doing a millisecond of
    work per step lets every waiting call be answered between its steps. (So on uvloop, the
    daemon's loop, whose I/O callbacks run during the poll; the standard loop queues them,
    and its woken tasks come one turn later.)
    """
    await asyncio.sleep(0)
    await asyncio.sleep(0)


def _next_step(work: Turns[T]) -> StopIteration | None:
    """Run ``work`` to its next pause (None) or to its end (the StopIteration holding its
    result)."""
    try:
        next(work)
    except StopIteration as done:
        return done
    return None


async def in_turns(work: Turns[T]) -> T:
    """The result of ``work``, with everything waiting on the event loop run (``give_way``)
    at each of its pauses: a page's milliseconds of parsing are then several short turns,
    and an RPC client's call waits for one of them, not for the whole page."""
    while (done := _next_step(work)) is None:
        await give_way()
    result: T = done.value
    return result


def at_once(work: Turns[T]) -> T:
    """The result of ``work``, without pausing."""
    while (done := _next_step(work)) is None:
        pass
    result: T = done.value
    return result


class TurnMemo(Generic[T]):
    """A value shared by everyone who asks for it during one turn of the event loop.

    Kept until the callbacks already queued when it was kept have run, so calls handled in
    the same turn share it and a call that arrives later (any reply sent meanwhile, or any
    I/O polled meanwhile, comes after) computes it afresh: a client never sees a value older
    than the answer to its previous call.
    """

    def __init__(self) -> None:
        self._value: T | None = None

    def get(self) -> T | None:
        """The value kept this turn, or None."""
        return self._value

    def keep(self, value: T) -> T:
        if self._value is None:
            asyncio.get_running_loop().call_soon(self._forget)
        self._value = value
        return value

    def _forget(self) -> None:
        self._value = None
