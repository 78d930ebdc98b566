"""The mirror's refusals: the listen ListenBrainz names is found among those sent, and a
payload refused without a name is split until each refused listen stands alone."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest

from musiqued.errors import RefusedError
from musiqued.services.mirror_refusals import Bisection, named_index
from musiqued.upstream.listenbrainz import ListenBrainzClient
from musiqued.upstream.listenbrainz_listens import SendableListen, to_listenbrainz
from tests.fixtures.listenbrainz import SimulatedListenBrainz

BASE = 1_700_000_000
TOO_LOW = "Value for key listened_at is too low."


def listen(i: int, *, bad: bool = False) -> SendableListen:
    made = to_listenbrainz({"timestamp": BASE + 60 * i, "artist": f"A{i}", "title": f"T{i}"})
    assert isinstance(made, SendableListen)
    if not bad:
        return made
    # What the client never makes, but a server may refuse for its own reasons.
    return SendableListen(orjson.dumps(orjson.loads(made.body) | {"listened_at": i + 1}))


@pytest.fixture
async def lb_client(listenbrainz_sim: SimulatedListenBrainz) -> AsyncIterator[ListenBrainzClient]:
    client = ListenBrainzClient(listenbrainz_sim.config(), timeout=5)
    await client.open()
    try:
        yield client
    finally:
        await client.close()


async def test_the_listen_listenbrainz_names_is_found(lb_client: ListenBrainzClient) -> None:
    """The listen a 400 names is the one at its place in what was sent; an answer naming
    none, or one not sent, finds nothing."""
    sent = [listen(0), listen(1), listen(2, bad=True), listen(3)]
    with pytest.raises(RefusedError) as caught:
        await lb_client.submit("import", sent)
    assert named_index(sent, lambda s: s.body, caught.value.listen) == 2
    assert named_index(sent, lambda s: s.body, None) is None
    assert named_index(sent[:2], lambda s: s.body, caught.value.listen) is None


async def test_bisection_sends_every_good_listen_once_and_skips_the_refused(
    listenbrainz_sim: SimulatedListenBrainz, lb_client: ListenBrainzClient
) -> None:
    """A payload of 11 with 2 refused listens, split in halves as a server that names none
    requires: every good listen arrives exactly once, in stored order, each refused one is
    left with the server's reason, and the groups sent never go back."""
    sent = [listen(i, bad=i in (3, 9)) for i in range(11)]
    bisection = Bisection(sent)
    starts = []
    accepted: list[SendableListen] = []
    refused: list[tuple[SendableListen, str]] = []
    while (group := bisection.next_group()) is not None:
        starts.append(sent.index(group[0]))
        try:
            await lb_client.submit("import", group)
        except RefusedError as exc:
            bisection.refused()
            if len(group) == 1:
                refused.append((group[0], exc.reason))
        else:
            bisection.accepted()
            accepted.extend(group)
    assert starts == sorted(starts)
    good = [s for i, s in enumerate(sent) if i not in (3, 9)]
    assert accepted == good
    assert [item for item, _ in refused] == [sent[3], sent[9]]
    assert all(reason.startswith(TOO_LOW) for _, reason in refused)
    assert [orjson.loads(s.body) for s in good] == listenbrainz_sim.listens()


def test_bisection_of_one_and_of_none() -> None:
    """A refused payload of one listen is that listen refused; an empty one has nothing to
    send; an answer comes after a group is sent, never before, never twice."""
    one = Bisection(["x"])
    assert one.next_group() == ["x"]
    with pytest.raises(RuntimeError):
        one.next_group()
    one.refused()
    assert one.next_group() is None
    with pytest.raises(RuntimeError):
        one.accepted()
    assert Bisection([]).next_group() is None


def test_bisection_when_everything_is_refused() -> None:
    """Every listen refused: each ends up sent alone, in order."""
    items = list(range(5))
    bisection = Bisection(items)
    alone = []
    while (group := bisection.next_group()) is not None:
        bisection.refused()
        if len(group) == 1:
            alone.extend(group)
    assert alone == items
