"""The asyncio idioms in ``musiqued.aio`` and ``sleep_or_wake``: a wait on an event that is
set at the moment its task is cancelled still ends the task; cancelling a task never swallows
the canceller's own cancellation."""

from __future__ import annotations

import asyncio

import pytest

from musiqued.aio import cancel_and_wait
from musiqued.clock import SYSTEM_CLOCK, sleep_or_wake


async def _loop_on(event: asyncio.Event) -> None:
    """What a lane of the enricher does: wait to be woken, do a step, wait again."""
    while True:
        await sleep_or_wake(SYSTEM_CLOCK.sleep, 300, event)
        event.clear()
        await asyncio.sleep(0)


async def test_a_wait_woken_as_it_is_cancelled_still_ends() -> None:
    """The event set and the task cancelled in the same turn of the loop, 300 times, at
    several offsets: the task always ends cancelled, at once (the old wait_for could return
    the result instead and the loop went on for 300 s)."""
    for offset in range(300):
        event = asyncio.Event()
        task = asyncio.create_task(_loop_on(event))
        for _ in range(offset % 4):
            await asyncio.sleep(0)
        event.set()
        task.cancel()
        async with asyncio.timeout(2):
            with pytest.raises(asyncio.CancelledError):
                await task


async def test_sleep_or_wake_says_whether_it_was_woken() -> None:
    """False when the time passed, True when the event was set."""
    event = asyncio.Event()
    assert await sleep_or_wake(SYSTEM_CLOCK.sleep, 0.01, event) is False
    event.set()
    assert await sleep_or_wake(SYSTEM_CLOCK.sleep, 1, event) is True


async def test_cancel_and_wait_keeps_the_callers_own_cancellation() -> None:
    """A task stopping another task is itself cancelled meanwhile: it ends cancelled."""
    stubborn_done = asyncio.Event()

    async def stubborn() -> None:
        try:
            await asyncio.sleep(300)
        finally:
            await stubborn_done.wait()  # takes a while to clean up

    inner = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    stopper = asyncio.create_task(cancel_and_wait(inner))
    await asyncio.sleep(0)
    stopper.cancel()
    await asyncio.sleep(0)
    stubborn_done.set()
    with pytest.raises(asyncio.CancelledError):
        await stopper
    with pytest.raises(asyncio.CancelledError):
        await inner


async def test_cancel_and_wait_on_a_task_that_ends_cancelled() -> None:
    task = asyncio.create_task(asyncio.sleep(300))
    await asyncio.sleep(0)
    await cancel_and_wait(task)
    assert task.cancelled()


async def test_a_cancelled_sleep_or_wake_leaves_no_task_behind() -> None:
    """Cancelling a task in ``sleep_or_wake`` ends both of its waits (the sleep went on
    after the wait on the event was cancelled, and outlived the daemon's loop)."""
    before = asyncio.all_tasks()
    sleeper = asyncio.create_task(sleep_or_wake(SYSTEM_CLOCK.sleep, 3600, asyncio.Event()))
    await asyncio.sleep(0)  # the sleeper starts its two waits
    await cancel_and_wait(sleeper)
    await asyncio.sleep(0)  # the waits it cancelled end
    assert [task for task in asyncio.all_tasks() - before if not task.done()] == []
