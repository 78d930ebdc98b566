"""The rate governor: spacing, in-flight places, priority, slow-down on 29 and recovery."""

from __future__ import annotations

import asyncio
import time

import pytest

from musiqued.upstream.ratelimit import Governor, Priority


async def test_requests_are_spaced_at_the_rate() -> None:
    """At 20 requests/s, 11 requests take at least half a second (no burst past the rate)."""
    governor = Governor(20, 4)
    started = time.monotonic()
    for _ in range(11):
        async with governor.slot():
            pass
    elapsed = time.monotonic() - started
    assert 0.45 <= elapsed < 1.0


async def test_in_flight_places_are_bounded() -> None:
    """Never more than max_in_flight requests run at once."""
    governor = Governor(1000, 3)
    running = peak = 0

    async def request() -> None:
        nonlocal running, peak
        async with governor.slot():
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.02)
            running -= 1

    await asyncio.gather(*(request() for _ in range(12)))
    assert peak == 3
    assert governor.in_flight == 0


async def test_waiting_requests_go_by_priority() -> None:
    """Waiting tracker requests go before imports, imports before enrichment."""
    governor = Governor(1000, 1)
    order: list[str] = []
    release = asyncio.Event()

    async def holder() -> None:
        async with governor.slot(Priority.IMPORT):
            await release.wait()

    async def waiter(name: str, priority: Priority) -> None:
        async with governor.slot(priority):
            order.append(name)

    hold = asyncio.create_task(holder())
    await asyncio.sleep(0.01)
    waiters = [
        asyncio.create_task(waiter("enrich", Priority.ENRICH)),
        asyncio.create_task(waiter("import", Priority.IMPORT)),
        asyncio.create_task(waiter("tracker", Priority.TRACKER)),
        asyncio.create_task(waiter("enrich2", Priority.ENRICH)),
    ]
    await asyncio.sleep(0.01)
    assert governor.waiting == 4
    release.set()
    await asyncio.gather(hold, *waiters)
    assert order == ["tracker", "import", "enrich", "enrich2"]


async def test_penalize_slows_down_then_recovers() -> None:
    """Error 29 halves the rate (once per burst); after the hold it climbs back to nominal."""
    governor = Governor(10, 2, hold_seconds=0.1, recovery_per_second=2.0)
    governor.penalize()
    governor.penalize()  # the same burst: not halved twice
    assert governor.rate == pytest.approx(5, rel=0.05)
    assert governor.nominal_rate == 10
    await asyncio.sleep(0.15)
    partway = governor.rate
    assert 5 < partway < 10
    await asyncio.sleep(0.4)
    assert governor.rate == 10


async def test_penalize_pauses_the_next_request() -> None:
    """After a penalty the bucket is empty: the next request waits a whole (slower) interval."""
    governor = Governor(20, 2, hold_seconds=10)
    async with governor.slot():
        pass
    governor.penalize()
    started = time.monotonic()
    async with governor.slot():
        pass
    assert time.monotonic() - started >= 1 / 10 * 0.9


async def test_rate_has_a_floor() -> None:
    """Repeated bursts never stop requests altogether."""
    governor = Governor(64, 1, hold_seconds=10, min_share=1 / 8)
    for _ in range(8):
        governor.penalize()
        await asyncio.sleep(1.05 / governor.rate)  # past the burst window: a new burst
    assert governor.rate == pytest.approx(8.0)


async def test_reconfigure_applies_at_once() -> None:
    """A reload's new rate and in-flight places apply to requests already waiting."""
    governor = Governor(1, 1)
    async with governor.slot():
        pass
    governor.reconfigure(1000, 4)
    assert (governor.rate, governor.nominal_rate, governor.max_in_flight) == (1000, 1000, 4)
    started = time.monotonic()
    for _ in range(5):
        async with governor.slot():
            pass
    assert time.monotonic() - started < 0.5


async def test_cancelled_waiter_gives_its_place_back() -> None:
    """A request cancelled while waiting leaves no place or token taken."""
    governor = Governor(1000, 1)
    release = asyncio.Event()

    async def holder() -> None:
        async with governor.slot():
            await release.wait()

    async def waiter() -> None:
        async with governor.slot():
            pass

    hold = asyncio.create_task(holder())
    await asyncio.sleep(0.01)
    doomed = asyncio.create_task(waiter())
    await asyncio.sleep(0.01)
    doomed.cancel()
    release.set()
    await hold
    with pytest.raises(asyncio.CancelledError):
        await doomed
    assert governor.in_flight == 0
    await asyncio.wait_for(waiter(), 1)
