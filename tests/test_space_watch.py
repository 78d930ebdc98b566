"""The free-space watch for jobs a full disk paused: it resumes them once space is back by
a margin, keeps waiting while it is not, and gives up for good once the database is gone.
Driven by a fake clock: no test waits for real time to pass."""

from __future__ import annotations

from musiqued.errors import StorageFullError
from musiqued.services.space_watch import SPACE_MARGIN, SPACE_POLL_S, SpaceWatch
from tests.fixtures.clock import FakeClock


class Disk:
    """What the watch reads of the database's disk, set by the test."""

    def __init__(self) -> None:
        self.free = 1000
        self.gone: str | None = None
        self.resumed: list[int] = []
        self.full_on_resume = False

    async def resume(self, job_id: int) -> None:
        if self.full_on_resume:
            raise StorageFullError("still no space")
        self.resumed.append(job_id)


def _watch(disk: Disk, clock: FakeClock) -> SpaceWatch:
    async def nothing_held() -> bool:
        return False

    watch = SpaceWatch(
        free_bytes=lambda: disk.free,
        gone=lambda: disk.gone,
        resume=disk.resume,
        write_held=nothing_held,
        clock=clock,
    )
    watch.open()
    return watch


async def test_a_paused_job_resumes_once_space_is_back(fake_clock: FakeClock) -> None:
    """No resume while the free space has not grown by the margin; once it has, the job is
    resumed at the next look and the watch stops."""
    disk = Disk()
    watch = _watch(disk, fake_clock)
    watch.paused_for_space(7)
    await fake_clock.advance(SPACE_POLL_S * 3)
    assert disk.resumed == []
    assert watch.waiting == [7]
    disk.free += SPACE_MARGIN
    await fake_clock.advance(SPACE_POLL_S)
    assert disk.resumed == [7]
    assert watch.waiting == []
    assert fake_clock.sleepers == 0
    await watch.close()


async def test_a_resume_that_meets_a_full_disk_again_keeps_waiting(fake_clock: FakeClock) -> None:
    """Space that fills again before the resume writes: the job waits for more space."""
    disk = Disk()
    watch = _watch(disk, fake_clock)
    watch.paused_for_space(3)
    disk.free += SPACE_MARGIN
    disk.full_on_resume = True
    await fake_clock.advance(SPACE_POLL_S)
    assert watch.waiting == [3]
    disk.full_on_resume = False
    disk.free += SPACE_MARGIN
    await fake_clock.advance(SPACE_POLL_S)
    assert disk.resumed == [3]
    await watch.close()


async def test_a_gone_database_ends_the_watch(fake_clock: FakeClock) -> None:
    """Once the database file is gone nothing can be written: the watch stops looking."""
    disk = Disk()
    watch = _watch(disk, fake_clock)
    watch.paused_for_space(1)
    disk.gone = "the database file was deleted"
    disk.free += SPACE_MARGIN
    await fake_clock.advance(SPACE_POLL_S * 2)
    assert disk.resumed == []
    assert fake_clock.sleepers == 0
    await watch.close()
