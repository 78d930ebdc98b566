"""Failed authentications cost time: per client and overall, with a log line that counts them.

Every wrong token (bearer header or login form) and every unknown login link takes one
"guess" from two buckets: the client's (``CLIENT_BURST`` guesses, then one per
``CLIENT_REFILL_S``) and everyone's (``OVERALL_BURST``, then one per ``OVERALL_REFILL_S``).
While either is empty, a credential that would have to be compared is not even looked at:
the answer is 429 with ``Retry-After``. Guessing thus runs at the refill rate at best, a
thousand guesses taking at least ``1000 * OVERALL_REFILL_S`` seconds less the burst.
A session cookie (256 random bits, nothing to guess) is always honoured.

Failures and refusals are logged at warning, one line per ``LOG_INTERVAL_S`` at most, with
how many happened since the last line.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

log = structlog.get_logger("musiqued.http")

CLIENT_BURST = 5
CLIENT_REFILL_S = 5.0
OVERALL_BURST = 20
OVERALL_REFILL_S = 1.0
MAX_CLIENTS = 4096
"""Clients remembered at once; beyond this the longest quiet is forgotten (the overall
bucket still holds)."""
LOG_INTERVAL_S = 10.0


@dataclass(slots=True)
class _Bucket:
    capacity: float
    refill_s: float
    tokens: float
    updated: float

    def _fill(self, now: float) -> None:
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(self.capacity, self.tokens + elapsed / self.refill_s)
        self.updated = now

    def wait(self, now: float) -> float:
        """Seconds until a guess may be taken (0: now)."""
        self._fill(now)
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) * self.refill_s

    def take(self, now: float) -> None:
        self._fill(now)
        self.tokens = max(0.0, self.tokens - 1)


class AuthThrottle:
    """``retry_after(client)`` before comparing a credential; ``failed(client)`` after a
    wrong one. ``clock`` is monotonic seconds (injected: tests move it by hand)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        now = clock()
        self._overall = _Bucket(OVERALL_BURST, OVERALL_REFILL_S, OVERALL_BURST, now)
        self._clients: dict[str, _Bucket] = {}
        self._failures = 0
        self._refused = 0
        self._clients_seen: set[str] = set()
        self._logged_at = float("-inf")
        self._flush: asyncio.TimerHandle | None = None

    def retry_after(self, client: str) -> float:
        """0 when a credential from ``client`` may be checked now; else seconds to wait (the
        refusal is counted)."""
        now = self._clock()
        bucket = self._clients.get(client)
        wait = max(self._overall.wait(now), bucket.wait(now) if bucket is not None else 0.0)
        if wait > 0:
            self._refused += 1
            self._clients_seen.add(client)
            self._note(now)
        return wait

    def failed(self, client: str) -> None:
        now = self._clock()
        bucket = self._clients.pop(client, None)
        if bucket is None:
            if len(self._clients) >= MAX_CLIENTS:
                del self._clients[next(iter(self._clients))]  # the longest quiet
            bucket = _Bucket(CLIENT_BURST, CLIENT_REFILL_S, CLIENT_BURST, now)
        self._clients[client] = bucket  # last: the dict stays ordered by last failure
        bucket.take(now)
        self._overall.take(now)
        self._failures += 1
        self._clients_seen.add(client)
        self._note(now)

    def _note(self, now: float) -> None:
        if now - self._logged_at >= LOG_INTERVAL_S:
            self.write(now)
        elif self._flush is None:
            with_loop = _running_loop()
            if with_loop is not None:
                self._flush = with_loop.call_later(
                    self._logged_at + LOG_INTERVAL_S - now, self.write
                )

    def write(self, now: float | None = None) -> None:
        """Log what is pending (also on shutdown)."""
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        if not (self._failures or self._refused):
            return
        log.warning(
            "http authentication failed",
            failures=self._failures,
            refused_429=self._refused,
            clients=len(self._clients_seen),
        )
        self._failures = self._refused = 0
        self._clients_seen.clear()
        self._logged_at = self._clock() if now is None else now


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
