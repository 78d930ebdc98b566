"""The refusal log: one line per uid per interval, with how many refusals it stands for."""

from __future__ import annotations

from musiqued.rpc.peers import RefusalLog


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_refusals_are_logged_once_per_uid_per_interval() -> None:
    """The first refusal of a uid is logged at once; later ones within the interval are held
    back and counted; the next line (or the flush after the interval) carries the count."""
    clock = _Clock()
    refusals = RefusalLog(interval=60.0, clock=clock)
    assert refusals.refused(65534) == 1
    assert [refusals.refused(65534) for _ in range(99)] == [None] * 99
    assert refusals.refused(1000) == 1, "another uid has its own window"
    assert refusals.flush() == [], "nothing is due within the interval"
    clock.now += 61
    assert refusals.refused(65534) == 100, "the new line carries the 99 held back"
    clock.now += 61
    assert refusals.flush() == [], "uid 1000's window ended with nothing held back"
    assert [refusals.refused(65534) for _ in range(5)] == [1, None, None, None, None]
    clock.now += 61
    assert refusals.flush() == [(65534, 4)]
    assert refusals.flush() == []
