"""When the next ListenBrainz submission may go: the server's budget, its 429s, failures.

ListenBrainz says with every answer how many requests are left in its window
(``X-RateLimit-Remaining``) and when the window ends (``X-RateLimit-Reset-In``, seconds). The
pacer lets a request go while some remain and holds the next one until the window ends when
none do; a 429 holds it as long as the server says; a failure (5xx, a timeout, no
connection) backs off exponentially, half of each pause random so that several clients
cut off together do not all come back at once. The clock is injected: tests move it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RateLimit:
    """The server's budget as its last answer told it."""

    limit: int
    remaining: int
    reset_in: float
    """Seconds until the window ends, counted from the answer."""


class Pacer:
    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        *,
        base_delay: float = 2.0,
        max_delay: float = 600.0,
        rng: random.Random | None = None,
    ) -> None:
        self._clock = clock
        self._base = base_delay
        self._max = max_delay
        self._rng = rng or random.Random()
        self._not_before = 0.0
        self.failures = 0
        """Failures in a row since the last answer that was not one."""

    def delay(self) -> float:
        """Seconds to wait before the next request (0: it may go now)."""
        return max(0.0, self._not_before - self._clock())

    def answered(self, rate: RateLimit | None) -> None:
        """The server answered (accepted or refused what was sent): its budget decides."""
        self.failures = 0
        now = self._clock()
        wait = rate.reset_in if rate is not None and rate.remaining <= 0 else 0.0
        self._not_before = now + max(0.0, wait)

    def rate_limited(self, retry_after: float) -> None:
        """A 429: nothing goes for ``retry_after`` seconds."""
        self.failures = 0
        self._not_before = self._clock() + max(0.0, retry_after)

    def failed(self) -> float:
        """A 5xx, a timeout or no connection: the pause before trying again, which grows."""
        self.failures += 1
        ceiling = min(self._max, self._base * 2 ** (self.failures - 1))
        pause: float = ceiling / 2 + self._rng.uniform(0, ceiling / 2)
        self._not_before = self._clock() + pause
        return pause
