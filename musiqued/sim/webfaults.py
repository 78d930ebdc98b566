"""Faults for the simulated Spotify and AI services: random, forced, or the service down.

Three ways to break a request, checked in this order:

* ``down_for(seconds)``: every request (token included) answers 503 until then;
* ``force(kind, count)``: the next ``count`` requests fail with ``kind`` (deterministic tests);
* ``configure(rate=…, kinds=…)``: a share of requests fail with a random kind.

Kinds: ``http500``, ``http502``, ``http503``, ``429`` (with ``Retry-After``), ``malformed``
(HTTP 200 with a body that is not the expected JSON), ``reset`` (the connection is dropped).
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web

KINDS = ("http500", "http502", "http503", "429", "malformed", "reset")


@dataclass(frozen=True, slots=True)
class Fault:
    kind: str
    retry_after: float


class ServiceFaults:
    """Thread-safe: tests drive it from their own thread while the server runs."""

    def __init__(self, seed: int = 0, known: Sequence[str] = KINDS) -> None:
        """``known``: the kinds this service's answers can break with (``KINDS`` and any of
        its own, which its handler answers itself)."""
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self.known: tuple[str, ...] = tuple(known)
        self.rate = 0.0
        self.kinds: tuple[str, ...] = self.known
        self.retry_after = 2.0
        self._forced: list[Fault] = []
        self._down_until = 0.0
        self.stats: Counter[str] = Counter()

    def configure(
        self,
        *,
        rate: float | None = None,
        kinds: Sequence[str] | None = None,
        retry_after: float | None = None,
        seed: int | None = None,
    ) -> None:
        if kinds is not None:
            unknown = sorted(set(kinds) - set(self.known))
            if unknown:
                raise ValueError(f"unknown fault kinds {unknown}; known: {list(self.known)}")
        if rate is not None and not 0.0 <= rate <= 1.0:
            raise ValueError("the fault rate is a share between 0 and 1")
        with self._lock:
            if rate is not None:
                self.rate = rate
            if kinds is not None:
                self.kinds = tuple(kinds) or self.known
            if retry_after is not None:
                self.retry_after = retry_after
            if seed is not None:
                self._rng.seed(seed)

    def force(self, kind: str, count: int = 1, retry_after: float | None = None) -> None:
        if kind not in self.known:
            raise ValueError(f"unknown fault kind {kind!r}; known: {list(self.known)}")
        with self._lock:
            after = self.retry_after if retry_after is None else retry_after
            self._forced.extend(Fault(kind, after) for _ in range(count))

    def down_for(self, seconds: float) -> None:
        with self._lock:
            self._down_until = time.monotonic() + seconds

    def up(self) -> None:
        with self._lock:
            self._down_until = 0.0
            self._forced.clear()
            self.rate = 0.0

    @property
    def down(self) -> bool:
        with self._lock:
            return time.monotonic() < self._down_until

    def draw(self) -> Fault | None:
        with self._lock:
            if time.monotonic() < self._down_until:
                fault: Fault | None = Fault("down", 0.0)
            elif self._forced:
                fault = self._forced.pop(0)
            elif self.rate > 0 and self._rng.random() < self.rate:
                fault = Fault(self._rng.choice(self.kinds), self.retry_after)
            else:
                fault = None
            self.stats[fault.kind if fault else "ok"] += 1
            return fault


def fault_response(request: web.Request, fault: Fault, error_body: bytes) -> web.StreamResponse:
    """The broken answer for ``fault``; ``error_body`` is the service's own error JSON."""
    json_type = "application/json"
    if fault.kind == "down":
        return web.Response(status=503, text="Service Unavailable", content_type="text/plain")
    if fault.kind == "http500":
        return web.Response(status=500, body=error_body, content_type=json_type)
    if fault.kind == "http502":
        html = "<html><body><h1>502 Bad Gateway</h1></body></html>"
        return web.Response(status=502, text=html, content_type="text/html")
    if fault.kind == "http503":
        return web.Response(status=503, body=b"")
    if fault.kind == "429":
        headers = {"Retry-After": str(max(0, round(fault.retry_after)))}
        return web.Response(status=429, body=error_body, content_type=json_type, headers=headers)
    if fault.kind == "malformed":
        return web.Response(status=200, body=b'{"truncated": [', content_type=json_type)
    # "reset": drop the connection without an answer.
    transport = request.transport
    if transport is not None:
        transport.abort()
    return web.Response(status=500)


async def admin_faults(request: web.Request, faults: ServiceFaults) -> web.Response:
    """``POST /admin/faults {rate?, kinds?, retry_after?, seed?, force?, count?, down_s?, up?}``."""
    try:
        data = await request.json()
        if not isinstance(data, dict):
            raise TypeError("a JSON object is expected")
        if data.get("up"):
            faults.up()
        faults.configure(
            rate=data.get("rate"),
            kinds=data.get("kinds"),
            retry_after=data.get("retry_after"),
            seed=data.get("seed"),
        )
        if data.get("force"):
            faults.force(str(data["force"]), int(data.get("count", 1)), data.get("retry_after"))
        if data.get("down_s"):
            faults.down_for(float(data["down_s"]))
    except (ValueError, TypeError) as exc:
        return web.json_response({"error": str(exc)}, status=400)
    return web.json_response({"rate": faults.rate, "kinds": list(faults.kinds)})
