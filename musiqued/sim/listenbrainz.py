"""A simulated ListenBrainz API (aiohttp): what Maloja and Koito also speak.

API, as ListenBrainz answers it:

* ``POST /1/submit-listens`` with ``Authorization: Token T`` and
  ``{"listen_type": "single"|"playing_now"|"import", "payload": [listens]}``: checked as
  ListenBrainz checks it (``sim/listenbrainz_rules.py``), answered ``{"status": "ok"}`` or
  ``{"code": 400|401, "error": "…"}`` (a refused listen's keys merged in, as ListenBrainz does).
* ``GET /1/validate-token`` (the token in ``Authorization: Token T``, else ``?token=T``):
  ``{"code": 200, "message": "Token valid.", "valid": true, "user_name": U}``, or
  ``"Token invalid."`` with ``valid: false`` (still HTTP 200).

Every API answer carries ``X-RateLimit-Limit``, ``-Remaining``, ``-Reset`` (Unix s) and
``-Reset-In`` (s). As ListenBrainz's limiter (brainzutils), the windows are fixed and aligned
on multiples of ``window`` seconds since the epoch, one count per valid token (else per
client address, with a lower limit); a request beyond the limit is answered 429
``{"code": 429, "error": "You have exceeded your rate limit. …"}``.

Admin API (JSON) for tests and demos:

=======  =====================  ==========================================================
GET      /admin/listens         ``{"users": {name: {"listens": [received, in order],
                                "playing_now": track_metadata or null}}}``
GET      /admin/requests        every API request: path, status, time (Unix s), listen type,
                                count, error
GET      /admin/stats           request counts by status, listens received, faults
POST     /admin/faults          ``webfaults.admin_faults``; kinds: those of ``webfaults``,
                                ``401`` (token refused) and ``slow`` (answered late)
POST     /admin/settings        ``{limit?, ip_limit?, window?, slow_seconds?, tokens?,
                                keep_listens?, name_refused?}``
                                (``tokens``: ``{token: user_name}``, replacing them all)
POST     /admin/reset           forget what was received and every rate window
=======  =====================  ==========================================================

Nothing is dropped silently: a listen accepted is in ``/admin/listens``, a request refused
or broken on command is in ``/admin/requests`` with its answer. All state is behind one
lock, so tests may call ``ListenBrainzSim`` from another thread while it serves.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any

import orjson
from aiohttp import web

from musiqued.sim.listenbrainz_rules import (
    MAX_LISTEN_PAYLOAD_SIZE,
    Refused,
    Submission,
    check_submission,
)
from musiqued.sim.webfaults import KINDS, ServiceFaults, admin_faults, fault_response

API_PREFIX = "/1/"
FAULT_KINDS = (*KINDS, "401", "slow")
RATE_LIMITED = (
    "You have exceeded your rate limit. See the X-RateLimit-* response headers for more "
    "information on your current rate limit."
)
UNKNOWN_ERROR = "An unknown error occured."  # sic: ListenBrainz's spelling
REQUEST_LOG_SIZE = 100_000


@dataclass(frozen=True)
class Settings:
    tokens: tuple[tuple[str, str], ...] = (("simlbtoken", "simuser"),)
    """(token, user name) pairs the server knows."""
    limit: int = 50
    """Requests per window for a valid token (brainzutils' default)."""
    ip_limit: int = 30
    """Requests per window for a client without a valid token."""
    window: int = 10
    """Seconds per rate-limit window."""
    slow_seconds: float = 0.5
    """How late a ``slow`` fault answers."""
    keep_listens: bool = True
    """Keep every listen received; False counts them only (a long bench stays small)."""
    name_refused: bool = True
    """Merge a refused listen's keys into the 400 as ListenBrainz does; False answers with
    the reason alone, as Maloja and Koito do."""

    def __post_init__(self) -> None:
        if self.limit < 1 or self.ip_limit < 1 or self.window < 1:
            raise ValueError("limit, ip_limit and window are at least 1")

    def user(self, token: str) -> str | None:
        return dict(self.tokens).get(token)


@dataclass(frozen=True, slots=True)
class RateState:
    limit: int
    remaining: int
    reset: int
    reset_in: int
    over: bool

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset),
            "X-RateLimit-Reset-In": str(self.reset_in),
        }


class RateWindows:
    """Fixed windows aligned on the epoch, one count per key (brainzutils' ``RateLimit``)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._counts: dict[tuple[str, int], int] = {}

    def count(self, key: str, limit: int, window: int) -> RateState:
        now = int(self._clock())
        reset = (now // window) * window + window
        current = self._counts.get((key, reset), 0) + 1
        # Windows gone by are forgotten: the dictionary holds the current ones only.
        self._counts = {k: n for k, n in self._counts.items() if k[1] >= reset}
        self._counts[(key, reset)] = current
        return RateState(limit, max(limit - current, 0), reset, reset - now, current > limit)

    def clear(self) -> None:
        self._counts.clear()


def token_of(authorization: str) -> str | None:
    """The token of an ``Authorization: Token T`` header as ListenBrainz reads it (the second
    word), None if there is none."""
    words = authorization.split(" ")
    return words[1] if len(words) > 1 else None


class ListenBrainzSim:
    """The simulated service's state; every method is thread-safe."""

    def __init__(
        self, settings: Settings | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self._lock = threading.Lock()
        self.settings = settings or Settings()
        self.clock = clock
        self.faults = ServiceFaults(known=FAULT_KINDS)
        self._windows = RateWindows(clock)
        self._listens: dict[str, list[dict[str, Any]]] = {}
        self._counts: Counter[str] = Counter()
        self._playing_now: dict[str, dict[str, Any]] = {}
        self._requests: deque[dict[str, Any]] = deque(maxlen=REQUEST_LOG_SIZE)
        self._statuses: Counter[str] = Counter()

    # -- control ---------------------------------------------------------------------------

    def configure(self, **changes: Any) -> Settings:
        known = {f.name for f in fields(Settings)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown settings {unknown}")
        if isinstance(changes.get("tokens"), dict):
            changes["tokens"] = tuple(changes["tokens"].items())
        with self._lock:
            self.settings = replace(self.settings, **changes)
            return self.settings

    def reset(self) -> None:
        with self._lock:
            self._listens.clear()
            self._counts.clear()
            self._playing_now.clear()
            self._requests.clear()
            self._statuses.clear()
            self._windows.clear()

    def listens(self, user: str | None = None) -> list[dict[str, Any]]:
        """The listens received for ``user`` (the first configured one by default), in the
        order they came, duplicates included."""
        with self._lock:
            name = user if user is not None else self.settings.tokens[0][1]
            return list(self._listens.get(name, []))

    def playing_now(self, user: str | None = None) -> dict[str, Any] | None:
        with self._lock:
            name = user if user is not None else self.settings.tokens[0][1]
            return self._playing_now.get(name)

    def request_log(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._requests)

    def received(self) -> dict[str, Any]:
        with self._lock:
            users = set(self._listens) | set(self._playing_now)
            return {
                "users": {
                    name: {
                        "listens": list(self._listens.get(name, [])),
                        "playing_now": self._playing_now.get(name),
                    }
                    for name in sorted(users)
                }
            }

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": len(self._requests),
                "statuses": dict(self._statuses),
                "listens": sum(self._counts.values()),
                "faults": dict(self.faults.stats),
            }

    # -- the API ---------------------------------------------------------------------------

    def rate(self, authorization: str, peer: str) -> RateState:
        """Count one request against its window: the token's if valid, else the address's."""
        with self._lock:
            settings = self.settings
            token = token_of(authorization)
            if token is not None and settings.user(token) is not None:
                return self._windows.count(f"token:{token}", settings.limit, settings.window)
            return self._windows.count(f"ip:{peer}", settings.ip_limit, settings.window)

    def submit(self, authorization: str, raw: bytes) -> tuple[int, dict[str, Any], Submission]:
        """Check and keep one submission: status, answer, and what was kept."""
        with self._lock:
            if not authorization:
                raise Refused("You need to provide an Authorization header.", status=401)
            token = token_of(authorization)
            if token is None:
                raise Refused("Provided Authorization header is invalid.", status=401)
            user = self.settings.user(token)
            if user is None:
                raise Refused("Invalid authorization token.", status=401)
            submission = check_submission(raw, int(self.clock()))
            if submission.listen_type == "playing_now":
                self._playing_now[user] = submission.listens[0]["track_metadata"]
            else:
                self._counts[user] += len(submission.listens)
                if self.settings.keep_listens:
                    self._listens.setdefault(user, []).extend(submission.listens)
            return 200, {"status": "ok"}, submission

    def validate_token(self, authorization: str, query_token: str) -> dict[str, Any]:
        with self._lock:
            token = query_token
            if authorization.lower().startswith("token "):
                token = authorization.split(" ")[1]
            if not token:
                raise Refused("You need to provide an Authorization token.")
            user = self.settings.user(token)
        if user is None:
            return {"code": 200, "message": "Token invalid.", "valid": False}
        return {"code": 200, "message": "Token valid.", "valid": True, "user_name": user}

    def record(self, path: str, status: int, **details: Any) -> None:
        with self._lock:
            self._requests.append({"path": path, "status": status, "at": self.clock(), **details})
            self._statuses[str(status)] += 1


# -- HTTP ------------------------------------------------------------------------------------


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(data), status=status, content_type="application/json", headers=headers
    )


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return _json({"code": status, "error": message}, status, headers)


async def _fault(
    request: web.Request, sim: ListenBrainzSim, rate: RateState
) -> web.StreamResponse | None:
    """The broken answer ordered for this request, if any (``slow`` answers late, rightly)."""
    fault = sim.faults.draw()
    if fault is None:
        return None
    if fault.kind == "slow":
        await asyncio.sleep(sim.settings.slow_seconds)
        return None
    sim.record(request.path, _FAULT_STATUS.get(fault.kind, 0), fault=fault.kind)
    if fault.kind == "401":
        return _error(401, "Invalid authorization token.", rate.headers())
    if fault.kind == "429":
        wait = max(0, round(fault.retry_after))
        exhausted = replace(
            rate, remaining=0, reset_in=wait, reset=rate.reset - rate.reset_in + wait
        )
        return _error(429, RATE_LIMITED, exhausted.headers())
    error_body = orjson.dumps({"code": 500, "error": UNKNOWN_ERROR})
    return fault_response(request, fault, error_body)


_FAULT_STATUS = {
    "401": 401,
    "429": 429,
    "http500": 500,
    "http502": 502,
    "http503": 503,
    "down": 503,
    "malformed": 200,
}
"""The status each broken answer carries (0: the connection is dropped without one)."""


def _peer(request: web.Request) -> str:
    return request.remote or "unknown"


def make_app(sim: ListenBrainzSim) -> web.Application:
    async def submit_listens(request: web.Request) -> web.StreamResponse:
        authorization = request.headers.get("Authorization", "")
        rate = sim.rate(authorization, _peer(request))
        broken = await _fault(request, sim, rate)
        if broken is not None:
            return broken
        if rate.over:
            sim.record(request.path, 429, error=RATE_LIMITED)
            return _error(429, RATE_LIMITED, rate.headers())
        raw = await request.read()
        try:
            status, answer, submission = sim.submit(authorization, raw)
        except Refused as refused:
            sim.record(request.path, refused.status, error=refused.message, bytes=len(raw))
            body = refused.body()
            if not sim.settings.name_refused:
                body = {"code": body["code"], "error": body["error"]}
            return _json(body, refused.status, rate.headers())
        sim.record(
            request.path,
            status,
            listen_type=submission.listen_type,
            listens=len(submission.listens),
            bytes=len(raw),
        )
        return _json(answer, status, rate.headers())

    async def validate_token(request: web.Request) -> web.StreamResponse:
        authorization = request.headers.get("Authorization", "")
        rate = sim.rate(authorization, _peer(request))
        broken = await _fault(request, sim, rate)
        if broken is not None:
            return broken
        if rate.over:
            sim.record(request.path, 429, error=RATE_LIMITED)
            return _error(429, RATE_LIMITED, rate.headers())
        try:
            answer = sim.validate_token(authorization, request.query.get("token", ""))
        except Refused as refused:
            sim.record(request.path, refused.status, error=refused.message)
            return _json(refused.body(), refused.status, rate.headers())
        sim.record(request.path, 200, valid=answer["valid"])
        return _json(answer, 200, rate.headers())

    async def listens(_: web.Request) -> web.Response:
        return _json(sim.received())

    async def requests(_: web.Request) -> web.Response:
        return _json(sim.request_log())

    async def stats(_: web.Request) -> web.Response:
        return _json(sim.stats())

    async def faults(request: web.Request) -> web.Response:
        return await admin_faults(request, sim.faults)

    async def settings(request: web.Request) -> web.Response:
        try:
            data = await request.json()
            if not isinstance(data, dict):
                raise TypeError("a JSON object is expected")
            changed = sim.configure(**data)
        except (ValueError, TypeError) as exc:
            return _json({"error": str(exc)}, 400)
        public = {f.name: getattr(changed, f.name) for f in fields(changed)}
        public["tokens"] = dict(changed.tokens)
        return _json(public)

    async def reset(_: web.Request) -> web.Response:
        sim.reset()
        return _json({"status": "ok"})

    # Bodies a little over ListenBrainz's limit reach its own check ("Payload too large").
    app = web.Application(client_max_size=2 * MAX_LISTEN_PAYLOAD_SIZE)
    app.router.add_post(f"{API_PREFIX}submit-listens", submit_listens)
    app.router.add_get(f"{API_PREFIX}validate-token", validate_token)
    app.router.add_get("/admin/listens", listens)
    app.router.add_get("/admin/requests", requests)
    app.router.add_get("/admin/stats", stats)
    app.router.add_post("/admin/faults", faults)
    app.router.add_post("/admin/settings", settings)
    app.router.add_post("/admin/reset", reset)
    return app
