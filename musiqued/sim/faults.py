"""Fault injection and the optional requests-per-second limit of the simulated Last.fm.

Two ways to break a request, checked in this order:

* ``force(kind, count, page)``: the next ``count`` requests that match fail with ``kind``
  (``page``: only ``user.getRecentTracks`` for that page; deterministic tests);
* ``configure(rate=…, kinds=…)``: a share of requests fail with a random kind.

Page faults (``sim/pagefaults.py``: ``short``, ``empty``, ``nodate``, …) break the content
of a ``user.getRecentTracks`` page; drawn for another method, they leave it alone.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from musiqued.sim.pagefaults import PAGE_FAULTS

RECENT_TRACKS = "user.getrecenttracks"
WIRE_FAULTS = (
    "http500",  # HTTP 500 with error 8 in the body
    "http502",  # HTTP 502 with an HTML page from the "proxy"
    "http503",  # HTTP 503 with an empty body
    "error8",  # {"error": 8}: operation failed (HTTP 200 or 500)
    "error11",  # {"error": 11}: service offline (HTTP 200 or 503)
    "error16",  # {"error": 16}: temporary error (HTTP 200 or 503)
    "error29",  # a burst of {"error": 29} rate-limit answers (HTTP 429)
    "malformed",  # a truncated JSON body, an HTML page or nothing, with HTTP 200
    "slow",  # the right answer, late
    "reset",  # the connection is reset without an answer
    "errorbody",  # {"error": "x"} with HTTP 200: an error without a code
)
FAULT_KINDS = (*WIRE_FAULTS, *PAGE_FAULTS)


def _check_kinds(kinds: Sequence[str]) -> None:
    unknown = sorted(set(kinds) - set(FAULT_KINDS))
    if unknown:
        raise ValueError(f"unknown fault kinds {unknown}; known: {list(FAULT_KINDS)}")


@dataclass(slots=True)
class Forced:
    """``left`` more requests (of ``page``, if set) fail with ``kind``."""

    kind: str
    left: int
    page: int | None = None

    def matches(self, method: str, page: int | None) -> bool:
        targets_pages = self.kind in PAGE_FAULTS or self.page is not None
        if targets_pages and method != RECENT_TRACKS:
            return False
        return self.page is None or self.page == page

    def as_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "left": self.left, "page": self.page}


@dataclass(frozen=True)
class FaultPlan:
    rate: float = 0.0
    kinds: tuple[str, ...] = FAULT_KINDS
    burst: int = 4  # how many answers an error-29 burst lasts
    slow_seconds: float = 0.4
    seed: int = 0

    def __post_init__(self) -> None:
        _check_kinds(self.kinds)
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError("the fault rate is a share between 0 and 1")


@dataclass
class Faults:
    """Draws the fault (if any) for each API request; thread-safe."""

    plan: FaultPlan = field(default_factory=FaultPlan)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _rng: random.Random = field(default_factory=random.Random)
    _burst_left: int = 0
    _forced: list[Forced] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._rng.seed(self.plan.seed)

    def configure(
        self,
        rate: float | None = None,
        kinds: Sequence[str] | None = None,
        **others: float | int,
    ) -> FaultPlan:
        with self._lock:
            changes: dict[str, object] = dict(others)
            if rate is not None:
                changes["rate"] = rate
            if kinds is not None:
                changes["kinds"] = tuple(kinds) or FAULT_KINDS
            self.plan = replace(self.plan, **changes)  # type: ignore[arg-type]
            self._rng.seed(self.plan.seed)
            self._burst_left = 0
            return self.plan

    def force(self, kind: str, count: int = 1, page: int | None = None) -> None:
        """The next ``count`` requests (for ``page`` of recent tracks, if set) fail with ``kind``."""
        _check_kinds([kind])
        if count < 1:
            raise ValueError("count is at least 1")
        if page is not None and page < 1:
            raise ValueError("pages start at 1")
        with self._lock:
            self._forced.append(Forced(kind, count, page))

    def clear(self) -> None:
        """No more forced faults, no random ones."""
        with self._lock:
            self._forced.clear()
            self._burst_left = 0
            self.plan = replace(self.plan, rate=0.0)

    def forced(self) -> list[dict[str, object]]:
        with self._lock:
            return [f.as_dict() for f in self._forced]

    def draw(self, method: str = "", page: int | None = None) -> str | None:
        """The fault for a request of ``method`` (lower case) for ``page``, if any."""
        with self._lock:
            for forced in self._forced:
                if forced.matches(method, page):
                    forced.left -= 1
                    if not forced.left:
                        self._forced.remove(forced)
                    return forced.kind
            if self._burst_left > 0:
                self._burst_left -= 1
                return "error29"
            plan = self.plan
            if plan.rate <= 0 or self._rng.random() >= plan.rate:
                return None
            kind = self._rng.choice(plan.kinds)
            if kind in PAGE_FAULTS and method != RECENT_TRACKS:
                return None
            if kind == "error29":
                self._burst_left = max(0, plan.burst - 1)
            return kind

    def coin(self) -> bool:
        with self._lock:
            return self._rng.random() < 0.5


class RateLimit:
    """Token bucket holding one second's worth of requests; 0 means no limit."""

    def __init__(self, per_second: float = 0.0) -> None:
        self._lock = threading.Lock()
        self.per_second = per_second
        self._tokens = max(1.0, per_second)
        self._at = time.monotonic()

    def set(self, per_second: float) -> None:
        with self._lock:
            self.per_second = per_second
            self._tokens = max(1.0, per_second)
            self._at = time.monotonic()

    def allow(self) -> bool:
        with self._lock:
            if self.per_second <= 0:
                return True
            now = time.monotonic()
            capacity = max(1.0, self.per_second)
            self._tokens = min(capacity, self._tokens + (now - self._at) * self.per_second)
            self._at = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False
