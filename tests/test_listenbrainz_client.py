"""The ListenBrainz client against the simulator served in the test's process: what it
sends, how each failure becomes one of our errors, payloads and the 10,240-byte limit, and
the pacing read from the server's answers."""

from __future__ import annotations

import random
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
import pytest
from aiohttp import web

from musiqued.errors import (
    FatalUpstreamError,
    RateLimitedError,
    RefusedError,
    TransientUpstreamError,
)
from musiqued.sim.listenbrainz import ListenBrainzSim, Settings
from musiqued.sim.server import ThreadedServer
from musiqued.upstream.listenbrainz import ListenBrainzClient, SubmissionRefused
from musiqued.upstream.listenbrainz_listens import (
    MAX_LISTEN_BYTES,
    SendableListen,
    Unsendable,
    payloads,
    to_listenbrainz,
)
from musiqued.upstream.listenbrainz_pacing import Pacer, RateLimit
from tests.fixtures.listenbrainz import (
    LB_TOKEN,
    LB_USER,
    SimulatedListenBrainz,
    running_listenbrainz,
)

BASE = 1_700_000_000
RECORDING = "0f8b6e3e-3c55-4b9f-9a8c-2b1d33d7a0c1"
RELEASE = "5a1e2b7c-94b4-4a56-8f7c-1d2e3f4a5b6c"
ARTIST = "b10bbbfc-cf9e-42e0-be17-e2c3e1d2600d"


def stored(i: int = 0, **changes: Any) -> dict[str, Any]:
    """A stored listen as the RPC shows it (``storage.listens.listen_shape``)."""
    listen: dict[str, Any] = {
        "timestamp": BASE + i * 60,
        "date": "",
        "artist": f"Artist {i}",
        "title": f"Title {i}",
        "album": None,
        "artist_mbid": None,
        "album_mbid": None,
        "track_mbid": None,
        "source": "import",
        "origin": "lastfm",
    }
    listen.update(changes)
    return listen


def sendable(listen: dict[str, Any], listen_type: str = "import") -> SendableListen:
    made = to_listenbrainz(listen, listen_type)
    assert isinstance(made, SendableListen), made
    return made


@pytest.fixture
async def lb_client(listenbrainz_sim: SimulatedListenBrainz) -> AsyncIterator[ListenBrainzClient]:
    client = ListenBrainzClient(listenbrainz_sim.config(), timeout=5)
    await client.open()
    try:
        yield client
    finally:
        await client.close()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_stored_listen_as_a_listenbrainz_listen() -> None:
    """A stored listen becomes ``listened_at`` and ``track_metadata`` with the album, the
    client's name and version, the music service of its origin, its duration, its MBIDs
    (those that are UUIDs) and its Spotify track URL; ``playing_now`` has no time; names are
    sent stripped and without NUL, a blank album is left out."""
    listen = stored(
        artist=" Björk\x00 ",
        title="Jóga",
        album="Homogenic",
        track_mbid=RECORDING,
        album_mbid=RELEASE,
        artist_mbid=ARTIST,
        duration_ms=305_000,
        spotify_id="spotify:track:1jbbEkNNxyTV3Ivb0MSnY8",
        origin="spotify",
    )
    body = orjson.loads(sendable(listen).body)
    assert body == {
        "listened_at": BASE,
        "track_metadata": {
            "artist_name": "Björk",
            "track_name": "Jóga",
            "release_name": "Homogenic",
            "additional_info": {
                "submission_client": "musiqued",
                "submission_client_version": "0.1.0",
                "music_service": "spotify.com",
                "duration_ms": 305_000,
                "recording_mbid": RECORDING,
                "release_mbid": RELEASE,
                "artist_mbids": [ARTIST],
                "spotify_id": "https://open.spotify.com/track/1jbbEkNNxyTV3Ivb0MSnY8",
            },
        },
    }
    plain = orjson.loads(sendable(stored(album="  ", track_mbid="not-a-uuid")).body)
    assert plain["track_metadata"] == {
        "artist_name": "Artist 0",
        "track_name": "Title 0",
        "additional_info": {
            "submission_client": "musiqued",
            "submission_client_version": "0.1.0",
            "music_service": "last.fm",
        },
    }
    assert "listened_at" not in orjson.loads(sendable(stored(), "playing_now").body)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"artist": " \t"}, r"no artist name \(ListenBrainz needs one\)"),
        ({"title": ""}, r"no track name \(ListenBrainz needs one\)"),
        (
            {"timestamp": 1033430399},
            "listened at 1033430399, before 2002-10-01, which ListenBrainz does not take",
        ),
        (
            {"artist": "A" * 6000, "title": "T" * 6000},
            r"the artist and track names alone take 12\d\d\d bytes, more than the "
            f"{MAX_LISTEN_BYTES} a ListenBrainz listen holds",
        ),
    ],
)
def test_a_listen_listenbrainz_cannot_take_is_refused_with_its_reason(
    changes: dict[str, Any], reason: str
) -> None:
    """Blank names, a time before 2002-10-01 and names too long for one listen are not sent:
    the reason says why."""
    refused = to_listenbrainz(stored(**changes))
    assert isinstance(refused, Unsendable)
    assert re.fullmatch(reason, refused.reason)


async def test_an_oversized_listen_is_cut_to_fit_and_accepted(
    listenbrainz_sim: SimulatedListenBrainz, lb_client: ListenBrainzClient
) -> None:
    """A listen over 10,240 bytes loses the end of its album name (marked "…"), then its
    album and details, and ListenBrainz takes it even alone in a submission, whose envelope
    counts too; nothing is cut from a listen that fits."""
    album = "Ä" * 6000
    long_album = sendable(stored(album=album))
    assert len(long_album.body) <= MAX_LISTEN_BYTES < len(orjson.dumps(album)) + 100
    assert long_album.cut == f"album name cut to fit {MAX_LISTEN_BYTES} bytes"
    release = orjson.loads(long_album.body)["track_metadata"]["release_name"]
    assert release.endswith("…")
    assert album.startswith(release[:-1])
    assert len(long_album.body) > MAX_LISTEN_BYTES - 10  # cut no more than needed
    long_names = sendable(
        stored(1, artist="B" * 4950, title="C" * 5050, album="D" * 500, track_mbid=RECORDING)
    )
    assert long_names.cut == f"album and details left out to fit {MAX_LISTEN_BYTES} bytes"
    assert orjson.loads(long_names.body)["track_metadata"] == {
        "artist_name": "B" * 4950,
        "track_name": "C" * 5050,
        "additional_info": {"submission_client": "musiqued", "submission_client_version": "0.1.0"},
    }
    assert sendable(stored(2, album="Short")).cut == ""
    for listen in (long_album, long_names):
        await lb_client.submit("single", [listen])
        await lb_client.submit("playing_now", [sendable(stored(album=album), "playing_now")])
    assert [orjson.loads(s.body) for s in (long_album, long_names)] == listenbrainz_sim.listens()


async def test_a_backlog_goes_in_payloads_of_at_most_1000_and_arrives_exactly(
    listenbrainz_sim: SimulatedListenBrainz, lb_client: ListenBrainzClient
) -> None:
    """2,500 listens go as ``import`` in payloads of 1,000, 1,000 and 500, each under
    10,240,000 bytes; the server receives each listen once, exactly as stored."""
    backlog = [stored(i) for i in range(2500)]
    groups = list(payloads([sendable(s) for s in backlog], lambda listen: listen.body))
    assert [len(g) for g in groups] == [1000, 1000, 500]
    for group in groups:
        await lb_client.submit("import", group)
    assert listenbrainz_sim.identities() == {
        (s["timestamp"], s["artist"], s["title"]) for s in backlog
    }
    assert len(listenbrainz_sim.listens()) == 2500
    requests = listenbrainz_sim.requests()
    assert [(r["listen_type"], r["listens"]) for r in requests] == [
        ("import", 1000),
        ("import", 1000),
        ("import", 500),
    ]
    assert all(r["bytes"] <= 10_240_000 for r in requests)


def test_payloads_respect_the_byte_limits() -> None:
    """Groups close before the payload's byte limit or 10,240 bytes per listen would be
    passed, keep the order, and a listen over the limit of one is a programming error."""
    big = [bytes(10_000) for _ in range(5)]
    groups = list(payloads(big, bytes, max_bytes=25_000))
    assert [len(g) for g in groups] == [2, 2, 1]
    assert [item for group in groups for item in group] == big
    with pytest.raises(ValueError, match="over"):
        list(payloads([bytes(MAX_LISTEN_BYTES + 1)], bytes))


async def test_validate_token(
    listenbrainz_sim: SimulatedListenBrainz, lb_client: ListenBrainzClient
) -> None:
    """A valid token names its user; an unknown one is an error for a human, which does not
    show the token."""
    assert await lb_client.validate_token() == LB_USER
    lb_client.reconfigure(listenbrainz_sim.config(token="lb-wrong-token"))
    with pytest.raises(FatalUpstreamError) as caught:
        await lb_client.validate_token()
    assert caught.value.kind == "credentials"
    assert "lb-wrong-token" not in caught.value.message
    assert "listenbrainz.token" in caught.value.message


async def test_a_refused_token_needs_a_human(
    listenbrainz_sim: SimulatedListenBrainz, lb_client: ListenBrainzClient
) -> None:
    """A 401, ordered or for an unknown token, is a credentials error naming the key to fix
    and quoting the server, never the token; nothing was received."""
    listenbrainz_sim.sim.faults.force("401")
    for _ in range(2):
        with pytest.raises(FatalUpstreamError) as caught:
            await lb_client.submit("single", [sendable(stored())])
        assert (caught.value.kind, caught.value.status) == ("credentials", 401)
        assert caught.value.message == (
            "ListenBrainz refused the token (HTTP 401: Invalid authorization token.): "
            "check listenbrainz.token"
        )
        lb_client.reconfigure(listenbrainz_sim.config(token="lb-wrong-token"))
    assert listenbrainz_sim.listens() == []


async def test_a_refused_listen_carries_the_reason_and_the_listen(
    listenbrainz_sim: SimulatedListenBrainz, lb_client: ListenBrainzClient
) -> None:
    """A 400 is a RefusedError with the server's reason and the listen it named, and the
    budget that came with it; the next submission goes on."""
    early = SendableListen(orjson.dumps(orjson.loads(sendable(stored()).body) | {"listened_at": 5}))
    with pytest.raises(RefusedError) as caught:
        await lb_client.submit("import", [sendable(stored(1)), early])
    error = caught.value
    assert isinstance(error, SubmissionRefused)
    assert error.reason.startswith("Value for key listened_at is too low.")
    assert error.listen is not None
    assert error.listen["listened_at"] == 5
    assert error.rate is not None
    assert error.rate.limit == 1_000_000
    await lb_client.submit("single", [sendable(stored(2))])
    assert listenbrainz_sim.identities() == {(BASE + 120, "Artist 2", "Title 2")}


async def test_failures_are_transient(
    listenbrainz_sim: SimulatedListenBrainz, lb_client: ListenBrainzClient
) -> None:
    """500, 502 and 503, a dropped connection, a malformed validate-token answer and an
    answer later than the timeout are transient errors; nothing is kept of a failed
    request."""
    faults = listenbrainz_sim.sim.faults
    for kind in ("http500", "http502", "http503", "reset"):
        faults.force(kind)
        with pytest.raises(TransientUpstreamError) as caught:
            await lb_client.submit("single", [sendable(stored())])
        assert type(caught.value) is TransientUpstreamError
        assert caught.value.kind == ("connection" if kind == "reset" else "upstream_transient")
    faults.force("malformed")
    with pytest.raises(TransientUpstreamError) as caught:
        await lb_client.validate_token()
    assert caught.value.kind == "malformed"
    assert listenbrainz_sim.listens() == []
    listenbrainz_sim.configure(slow_seconds=1.0)
    faults.force("slow")
    impatient = ListenBrainzClient(listenbrainz_sim.config(), timeout=0.2)
    await impatient.open()
    try:
        with pytest.raises(TransientUpstreamError) as caught:
            await impatient.submit("single", [sendable(stored(3))])
        assert caught.value.kind == "timeout"
    finally:
        await impatient.close()


@pytest.fixture
def limited() -> Iterator[tuple[SimulatedListenBrainz, Clock]]:
    """A simulator with a budget of 2 requests per 60 s window, at a fixed moment 25 s into
    a window (its clock moves only when the test moves it)."""
    clock = Clock(1_900_000_045.0)
    settings = Settings(tokens=((LB_TOKEN, LB_USER),), limit=2, ip_limit=2, window=60)
    with running_listenbrainz(ListenBrainzSim(settings, clock=clock)) as lb:
        yield lb, clock


async def test_the_budget_paces_and_a_429_waits_as_told(
    limited: tuple[SimulatedListenBrainz, Clock],
) -> None:
    """Each answer's X-RateLimit headers come back as the budget; the pacer lets requests go
    while some remain, holds the next one until the window ends when none do, and after a
    429 (over the budget, or ordered) waits for the Reset-In the server gave."""
    lb, server_clock = limited
    local = Clock(100.0)
    pacer = Pacer(local)
    client = ListenBrainzClient(lb.config(), timeout=5)
    await client.open()
    try:
        rate = await client.submit("single", [sendable(stored(0))])
        assert rate == RateLimit(limit=2, remaining=1, reset_in=35)
        pacer.answered(rate)
        assert pacer.delay() == 0
        rate = await client.submit("single", [sendable(stored(1))])
        assert rate == RateLimit(limit=2, remaining=0, reset_in=35)
        pacer.answered(rate)
        assert pacer.delay() == 35
        with pytest.raises(RateLimitedError) as caught:
            await client.submit("single", [sendable(stored(2))])
        assert caught.value.retry_after == 35
        pacer.rate_limited(caught.value.retry_after)
        local.now += 34
        assert pacer.delay() == 1
        local.now += 1
        server_clock.now += 35
        assert pacer.delay() == 0
        rate = await client.submit("single", [sendable(stored(2))])
        assert rate == RateLimit(limit=2, remaining=1, reset_in=60)
        lb.sim.faults.force("429", retry_after=17)
        with pytest.raises(RateLimitedError) as caught:
            await client.submit("single", [sendable(stored(3))])
        assert caught.value.retry_after == 17
    finally:
        await client.close()
    assert len(lb.listens()) == 3


def test_failures_back_off_exponentially_with_jitter() -> None:
    """Each failure in a row doubles the ceiling of the pause (half of it random), up to the
    maximum; an answer ends the series."""
    clock = Clock(0.0)
    pacer = Pacer(clock, base_delay=2.0, max_delay=20.0, rng=random.Random(7))
    pauses = [pacer.failed() for _ in range(6)]
    for pause, ceiling in zip(pauses, (2, 4, 8, 16, 20, 20), strict=True):
        assert ceiling / 2 <= pause <= ceiling
    assert pacer.delay() == pauses[-1]
    pacer.answered(None)
    assert (pacer.failures, pacer.delay()) == (0, 0)
    assert pacer.failed() <= 2


async def test_a_redirect_is_not_followed(listenbrainz_sim: SimulatedListenBrainz) -> None:
    """An API root that redirects is an error for a human: the token does not follow the
    redirect to the server it points at."""

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect(f"{listenbrainz_sim.base_url}{request.path}")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", moved)
    server = ThreadedServer(lambda: app).start()
    client = ListenBrainzClient(listenbrainz_sim.config(api_url=f"{server.base_url}/"))
    await client.open()
    try:
        with pytest.raises(FatalUpstreamError) as caught:
            await client.submit("single", [sendable(stored())])
        assert caught.value.kind == "redirect"
    finally:
        await client.close()
        server.stop()
    assert listenbrainz_sim.requests() == []
