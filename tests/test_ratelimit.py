"""The rate governor: spacing, in-flight places, priority, slow-down on 29 and recovery."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from musiqued.upstream.ratelimit import Governor, Priority
from tests.fixtures.clock import FakeClock


async def settled(condition: Callable[[], bool]) -> None:
    """Let the tasks run until ``condition`` holds (it needs only turns of the loop)."""
    for _ in range(100):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the tasks never got there")


async def requests_at(clock: FakeClock, governor: Governor, count: int) -> list[float]:
    """When (on ``clock``) each of ``count`` requests made one after another got its slot."""
    moments: list[float] = []

    async def one_after_another() -> None:
        for _ in range(count):
            async with governor.slot():
                moments.append(clock.monotonic())

    task = asyncio.create_task(one_after_another())
    while not task.done():
        await clock.advance(0.01)
    await task
    return [round(moment - moments[0], 6) for moment in moments]


async def test_requests_are_spaced_at_the_rate(fake_clock: FakeClock) -> None:
    """At 20 requests/s, 11 requests go one every 1/20 s, the first at once (no burst past
    the rate)."""
    governor = Governor(20, 4, clock=fake_clock)
    moments = await requests_at(fake_clock, governor, 11)
    assert moments == pytest.approx([n / 20 for n in range(11)])


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
    await settled(lambda: governor.in_flight == 1)
    waiters = [
        asyncio.create_task(waiter("enrich", Priority.ENRICH)),
        asyncio.create_task(waiter("import", Priority.IMPORT)),
        asyncio.create_task(waiter("tracker", Priority.TRACKER)),
        asyncio.create_task(waiter("enrich2", Priority.ENRICH)),
    ]
    await settled(lambda: governor.waiting == 4)
    release.set()
    await asyncio.gather(hold, *waiters)
    assert order == ["tracker", "import", "enrich", "enrich2"]


async def test_penalize_slows_down_then_recovers(fake_clock: FakeClock) -> None:
    """Error 29 halves the rate (once per burst); after the hold it climbs back to nominal
    by the recovery share per second."""
    governor = Governor(10, 2, hold_seconds=0.1, recovery_per_second=2.0, clock=fake_clock)
    governor.penalize()
    governor.penalize()  # the same burst: not halved twice
    assert governor.rate == pytest.approx(5)
    assert governor.nominal_rate == 10
    await fake_clock.advance(0.1)
    assert governor.rate == pytest.approx(5)
    await fake_clock.advance(0.1)
    assert governor.rate == pytest.approx(5 + 10 * 2.0 * 0.1)
    await fake_clock.advance(0.25)
    assert governor.rate == 10


async def test_penalize_pauses_the_next_request(fake_clock: FakeClock) -> None:
    """After a penalty the bucket is empty: the next request waits a whole interval at the
    halved rate."""
    governor = Governor(20, 2, hold_seconds=10, clock=fake_clock)
    async with governor.slot():
        pass
    governor.penalize()
    started = fake_clock.monotonic()
    waited: list[float] = []

    async def request() -> None:
        async with governor.slot():
            waited.append(fake_clock.monotonic() - started)

    task = asyncio.create_task(request())
    await fake_clock.advance(1 / 10 - 0.001)
    assert not waited
    await fake_clock.advance(0.001)
    await task
    assert waited == [pytest.approx(1 / 10)]


async def test_rate_has_a_floor(fake_clock: FakeClock) -> None:
    """Repeated bursts never stop requests altogether."""
    governor = Governor(64, 1, hold_seconds=10, min_share=1 / 8, clock=fake_clock)
    for _ in range(8):
        governor.penalize()
        await fake_clock.advance(1.05 / governor.rate)  # past the burst window: a new burst
    assert governor.rate == pytest.approx(8.0)


async def test_reconfigure_applies_at_once(fake_clock: FakeClock) -> None:
    """A reload's new rate and in-flight places apply to requests already waiting."""
    governor = Governor(1, 1, clock=fake_clock)
    async with governor.slot():
        pass
    governor.reconfigure(1000, 4)
    assert (governor.rate, governor.nominal_rate, governor.max_in_flight) == (1000, 1000, 4)
    moments = await requests_at(fake_clock, governor, 5)
    assert moments[-1] <= 5 / 1000


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
    await settled(lambda: governor.in_flight == 1)
    doomed = asyncio.create_task(waiter())
    await settled(lambda: governor.waiting == 1)
    doomed.cancel()
    release.set()
    await hold
    with pytest.raises(asyncio.CancelledError):
        await doomed
    assert governor.in_flight == 0
    await asyncio.wait_for(waiter(), 1)
