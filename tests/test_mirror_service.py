"""The ListenBrainz mirror in the test's own process, against the simulated ListenBrainz: what
it sends, in which payloads, what it records, how it paces itself (on a clock the test moves)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from musiqued.config import ListenbrainzConfig
from musiqued.models import Scrobble
from musiqued.services.events import EventBus
from musiqued.services.mirror import Mirror, MirrorClock
from musiqued.sim.listenbrainz import ListenBrainzSim, Settings
from musiqued.storage.db import Database
from musiqued.storage.mirror import read_position
from tests.fixtures.listenbrainz import (
    LB_TOKEN,
    LB_USER,
    SimulatedListenBrainz,
    running_listenbrainz,
)
from tests.fixtures.services import eventually, next_event
from tests.history_support import store

BASE = 1_700_000_000


def scrobbles(count: int, start: int = BASE, tag: str = "") -> list[Scrobble]:
    return [
        Scrobble(timestamp=start + 60 * i, artist=f"Artist {i % 7}", title=f"Song {tag}{i}")
        for i in range(count)
    ]


def identities(listens: Sequence[Scrobble]) -> set[tuple[int, str, str]]:
    return {(s.timestamp, s.artist, s.title) for s in listens}


class FakeClock:
    """Time that moves only when the mirror waits (the simulator reads it too)."""

    def __init__(self) -> None:
        self.now = float(BASE)
        self.waits: list[float] = []

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds
        await asyncio.sleep(0.002)

    def mirror_clock(self) -> MirrorClock:
        return MirrorClock(monotonic=self.time, wall=self.time, sleep=self.sleep)


@asynccontextmanager
async def running_mirror(
    database: Database, bus: EventBus, config: ListenbrainzConfig, clock: MirrorClock | None = None
) -> AsyncIterator[Mirror]:
    mirror = Mirror(database, bus, config, clock=clock)
    await mirror.open()
    try:
        yield mirror
    finally:
        await mirror.close()


async def caught_up(mirror: Mirror) -> dict[str, Any] | None:
    status = await mirror.status()
    return status if status["pending"] == 0 and status["state"] == "idle" else None


async def test_backlog_arrives_once_in_import_payloads(
    database: Database, bus: EventBus, listenbrainz_sim: SimulatedListenBrainz
) -> None:
    """A backlog of 2,500 listens goes as three ``import`` payloads of at most 1,000; every
    listen arrives once; the position is kept, so a new mirror sends nothing again."""
    history = scrobbles(2500)
    for start in range(0, len(history), 500):
        await store(database, history[start : start + 500])
    async with running_mirror(database, bus, listenbrainz_sim.config()) as mirror:
        status = await eventually(lambda: caught_up(mirror))
    assert status["submitted"] == 2500
    assert listenbrainz_sim.identities() == identities(history)
    assert len(listenbrainz_sim.listens()) == 2500
    info = listenbrainz_sim.listens()[0]["track_metadata"]["additional_info"]
    assert (info["submission_client"], info["music_service"]) == ("musiqued", "last.fm")
    submissions = [r for r in listenbrainz_sim.requests() if r["path"] == "/1/submit-listens"]
    assert [(r["listen_type"], r["listens"]) for r in submissions] == [
        ("import", 1000),
        ("import", 1000),
        ("import", 500),
    ]
    async with running_mirror(database, bus, listenbrainz_sim.config()) as mirror:
        await eventually(lambda: caught_up(mirror))
    assert len(listenbrainz_sim.listens()) == 2500
    server = f"{listenbrainz_sim.api_url} {LB_USER}"
    assert (await read_position(database, server)).submitted == 2500


async def test_new_and_late_listens_follow(
    database: Database, bus: EventBus, listenbrainz_sim: SimulatedListenBrainz
) -> None:
    """Listens the tracker stores go as ``single``; listens stored later with older times
    (a late sweep, an import) are sent too."""
    await store(database, scrobbles(3))
    watching = bus.subscribe(["mirror"])
    async with running_mirror(database, bus, listenbrainz_sim.config()) as mirror:
        await eventually(lambda: caught_up(mirror))
        live = scrobbles(2, start=BASE + 10_000, tag="live ")
        await store(database, live, source="tracker")
        bus.publish("scrobble", timestamp=live[0].timestamp)
        await next_event(watching, "mirror", lambda d: d.get("submitted") == 5)
        late = scrobbles(4, start=BASE - 100_000, tag="late ")
        await store(database, late)
        bus.publish("job", event="progress")
        await next_event(watching, "mirror", lambda d: d.get("submitted") == 9)
    submissions = [r for r in listenbrainz_sim.requests() if r["path"] == "/1/submit-listens"]
    assert [(r["listen_type"], r["listens"]) for r in submissions] == [
        ("import", 3),
        ("single", 1),
        ("single", 1),
        ("import", 4),
    ]
    assert listenbrainz_sim.identities() == identities(scrobbles(3) + live + late)


async def test_refused_listen_is_recorded_and_skipped(
    database: Database, bus: EventBus, listenbrainz_sim: SimulatedListenBrainz
) -> None:
    """A listen the server refuses (dated too far ahead) is recorded with its reason and
    skipped; the others in its payload arrive; it is not sent again."""
    good = scrobbles(10)
    future = Scrobble(timestamp=int(time.time()) + 3 * 86400, artist="Ahead", title="Of Time")
    await store(database, [*good[:5], future, *good[5:]])
    async with running_mirror(database, bus, listenbrainz_sim.config()) as mirror:
        status = await eventually(lambda: caught_up(mirror))
    assert listenbrainz_sim.identities() == identities(good)
    assert status["submitted"] == 10
    assert status["refused"] == 1
    reasons = await database.fetchall("SELECT reason FROM mirror_refusals")
    assert [row[0] for row in reasons] == ["Value for key listened_at is too high."]
    sent_before = len(listenbrainz_sim.requests())
    async with running_mirror(database, bus, listenbrainz_sim.config()) as mirror:
        await eventually(lambda: caught_up(mirror))
    submissions = listenbrainz_sim.requests()[sent_before:]
    assert all(r["path"] != "/1/submit-listens" for r in submissions)


async def test_budget_and_429s_are_obeyed(database: Database, bus: EventBus) -> None:
    """With 3 requests per 10 s window and a 429 storm on top, no request is ever refused
    for the rate (the simulator refuses any over the budget) and each 429's wait is kept;
    every listen arrives, one request each."""
    clock = FakeClock()
    settings = Settings(tokens=((LB_TOKEN, LB_USER),), limit=3, ip_limit=3, window=10)
    sim = ListenBrainzSim(settings, clock=clock.time)
    history = scrobbles(8)
    await store(database, history, source="tracker")
    sim.faults.force("429", count=3, retry_after=10)
    with running_listenbrainz(sim) as simulated:
        config = simulated.config()
        async with running_mirror(database, bus, config, clock.mirror_clock()) as mirror:
            await eventually(lambda: caught_up(mirror))
    assert simulated.identities() == identities(history)
    answers = simulated.requests()
    assert [r["status"] for r in answers].count(429) == 3  # the forced ones only
    assert {r.get("fault") for r in answers if r["status"] == 429} == {"429"}
    assert clock.waits.count(10) >= 3
    assert [r.get("listen_type") for r in answers if r["status"] == 200][1:] == ["single"] * 8


async def test_refused_token_stops_until_it_changes(
    database: Database, bus: EventBus, listenbrainz_sim: SimulatedListenBrainz
) -> None:
    """A token the server does not know stops the mirror with a clear error; a new token
    (a reload) starts it again and the backlog arrives."""
    history = scrobbles(5)
    await store(database, history)
    watching = bus.subscribe(["mirror"])
    async with running_mirror(database, bus, listenbrainz_sim.config(token="wrong")) as mirror:
        stopped = await next_event(watching, "mirror", event="stopped")
        assert "check listenbrainz.token" in stopped["error"]
        status = await mirror.status()
        assert status["state"] == "stopped"
        assert "check listenbrainz.token" in status["last_error"]
        assert mirror.status_line() == f"mirror stopped: {status['last_error']}"
        await mirror.reconfigure(listenbrainz_sim.config())
        await eventually(lambda: caught_up(mirror))
    assert listenbrainz_sim.identities() == identities(history)


async def test_pause_holds_and_resume_sends(
    database: Database, bus: EventBus, listenbrainz_sim: SimulatedListenBrainz
) -> None:
    """A paused mirror sends nothing, and stays paused when the daemon starts again;
    resumed, it sends what waited."""
    async with running_mirror(database, bus, listenbrainz_sim.config()) as mirror:
        await eventually(lambda: caught_up(mirror))
        paused = await mirror.pause()
        assert paused["state"] == "paused"
    await store(database, scrobbles(4))
    async with running_mirror(database, bus, listenbrainz_sim.config()) as mirror:
        status = await mirror.status()
        assert (status["state"], status["pending"]) == ("paused", 4)
        assert listenbrainz_sim.listens() == []
        await mirror.resume()
        await eventually(lambda: caught_up(mirror))
    assert len(listenbrainz_sim.listens()) == 4


async def test_a_server_that_names_no_refused_listen_gets_halves(
    database: Database, bus: EventBus, listenbrainz_sim: SimulatedListenBrainz
) -> None:
    """A server that refuses a payload without naming the listen (as Maloja does) gets it in
    halves until the bad listen stands alone: it is recorded and skipped, the others arrive
    once, in a few requests."""
    listenbrainz_sim.configure(name_refused=False)
    good = scrobbles(16)
    future = Scrobble(timestamp=int(time.time()) + 3 * 86400, artist="Ahead", title="Of Time")
    await store(database, [*good[:11], future, *good[11:]])
    async with running_mirror(database, bus, listenbrainz_sim.config()) as mirror:
        status = await eventually(lambda: caught_up(mirror))
    assert (status["submitted"], status["refused"]) == (16, 1)
    assert len(listenbrainz_sim.listens()) == 16
    assert listenbrainz_sim.identities() == identities(good)
    submissions = [r for r in listenbrainz_sim.requests() if r["path"] == "/1/submit-listens"]
    assert len(submissions) <= 2 * 5 + 1  # two halves per level of a 17-listen payload


async def test_server_errors_back_off_then_recover(database: Database, bus: EventBus) -> None:
    """Three 503s in a row: the mirror waits longer after each (1-2 s, 2-4 s, 4-8 s), says it
    is failing, then that it recovered, and the backlog then arrives whole."""
    clock = FakeClock()
    settings = Settings(tokens=((LB_TOKEN, LB_USER),), limit=1000, ip_limit=1000, window=10)
    sim = ListenBrainzSim(settings, clock=clock.time)
    history = scrobbles(30)
    await store(database, history)
    sim.faults.force("http503", count=3)
    watching = bus.subscribe(["mirror"])
    with running_listenbrainz(sim) as simulated:
        async with running_mirror(database, bus, simulated.config(), clock.mirror_clock()) as m:
            failing = await next_event(watching, "mirror", event="failing")
            assert "HTTP 503" in failing["error"]
            await next_event(watching, "mirror", event="recovered")
            await eventually(lambda: caught_up(m))
    first, second, third = clock.waits[:3]
    assert 1 <= first <= 2
    assert 2 <= second <= 4
    assert 4 <= third <= 8
    assert simulated.identities() == identities(history)
