"""What one HTTP client can hold: the daemon's descriptors belong to its control socket first.

aiohttp accepts every connection it is offered, and waits as long as a client likes for a
request's headers or body. Here, with the ``[http]`` settings:

=========================  ==================================================================
``max_connections``        connections at once (WebSockets included); one more is answered
                           503 and closed as soon as its request is read (closing with it
                           unread would reset the connection and lose the 503), within
                           ``REFUSED_LINGER_S``; at most ``MAX_LINGERING`` wait so, the rest
                           are closed at once. Never more than half the descriptor limit.
``request_timeout_seconds``  from a request's first byte, its line, headers and body must
                           have arrived: a stalled request's connection is dropped (headers)
                           or answered 408 and closed (body, read before the handler runs).
``idle_timeout_seconds``   a connection with no request under way (just opened, or kept
                           alive after an answer, or an answer the client does not read)
                           is dropped.
=========================  ==================================================================

A handler marked ``streams_body`` (the file upload) reads its own body, in pieces, each
through ``in_time``: the body must keep coming, no pause longer than
``request_timeout_seconds`` (a stalled one is answered 408 and closed), however long the
whole takes.

``ConnectionLimiter`` is the protocol factory given to ``loop.create_server``: each connection
is a thin protocol in front of aiohttp's own (``web.Server``, documented as such a factory),
passing every call on. Its middleware tells the connection when a request's head has arrived
and when its handler is done; while a handler runs (a long upstream call, a WebSocket) no
deadline applies. Refusals and timeouts are logged as one line a minute with a count.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import resource
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar, cast

import structlog
from aiohttp import web

from musiqued.http.common import Handler, error

if TYPE_CHECKING:
    from musiqued.config import HttpConfig

log = structlog.get_logger("musiqued.http")

MAX_BODY_BYTES = 64 * 1024
"""Every body the HTTP API takes is a small JSON object; a larger one is answered 413."""
LOG_INTERVAL_S = 60.0
REFUSED_LINGER_S = 1.0
MAX_LINGERING = 32
STREAMS_BODY = "streams_its_body"
STALL_S = web.RequestKey("stall_s", float)
"""On a request to a ``streams_body`` handler: the longest pause its body may make."""

H = TypeVar("H", bound=Callable[..., Awaitable[web.StreamResponse]])
T = TypeVar("T")


class StalledBody(Exception):
    """A streamed body stopped arriving: nothing came for the request timeout."""


def streams_body(handler: H) -> H:
    """Mark ``handler`` as reading its own body (through ``in_time``): the limits middleware
    leaves the body unread for it."""
    handler.__dict__[STREAMS_BODY] = True
    return handler


async def in_time(request: web.Request, read: Awaitable[T]) -> T:
    """``await read``, a read of ``request``'s body, within the pause a body may make;
    ``StalledBody`` when nothing came meanwhile."""
    stall = request.get(STALL_S)
    if stall is None:
        return await read
    try:
        async with asyncio.timeout(stall):
            return await read
    except TimeoutError:
        raise StalledBody from None


def overloaded_answer(limit: int) -> bytes:
    """The whole 503 sent to a connection over the limit, before closing it."""
    body = json.dumps(
        {
            "detail": f"too many HTTP connections (the limit is {limit}); try again shortly",
            "kind": "too_many_connections",
        }
    ).encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Content-Type: application/json; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Retry-After: 5\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        "Cache-Control: no-store\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + body


def descriptor_budget() -> int:
    """How many connections HTTP may hold: half the soft descriptor limit, so the control
    socket, SQLite and the upstream clients always have the other half."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1 << 20
    return max(1, soft // 2)


class _Tally:
    """One log line per ``LOG_INTERVAL_S`` at most, with how many happened since the last."""

    def __init__(self, event: str, level: str) -> None:
        self._event = event
        self._level = level
        self._pending = 0
        self._fields: dict[str, object] = {}
        self._logged_at = float("-inf")
        self._flush: asyncio.TimerHandle | None = None

    def add(self, **fields: object) -> None:
        self._pending += 1
        self._fields = fields
        if self._flush is not None:
            return
        loop = asyncio.get_running_loop()
        wait = self._logged_at + LOG_INTERVAL_S - loop.time()
        if wait <= 0:
            self.write()
        else:
            self._flush = loop.call_later(wait, self.write)

    def write(self) -> None:
        """Log what is pending now (also on shutdown)."""
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        if self._pending:
            getattr(log, self._level)(self._event, count=self._pending, **self._fields)
            self._pending = 0
            self._logged_at = asyncio.get_running_loop().time()


class _State(enum.Enum):
    IDLE = "idle"  # no request under way: idle timeout
    RECEIVING = "receiving"  # a request's first bytes arrived: request timeout
    HANDLING = "handling"  # a handler runs: no deadline
    REFUSED = "refused"  # over the limit: answered 503, closed once its request is read


class _Connection(asyncio.Protocol):
    """One client connection: aiohttp's protocol, behind the deadlines above."""

    def __init__(self, limiter: ConnectionLimiter, inner: Callable[[], asyncio.Protocol]) -> None:
        self._limiter = limiter
        self._make_inner = inner
        self._inner: asyncio.Protocol | None = None
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._state = _State.IDLE
        self._deadline = 0.0

    # -- asyncio.Protocol, passed on to aiohttp ----------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        if not self._limiter.admit(self._transport, self):
            self._refuse(self._transport)
            return
        self._inner = inner = self._make_inner()
        self._wait(_State.IDLE, self._limiter.idle_timeout)
        inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._inner is None:  # refused: its request is read, the 503 sent
            if self._transport is not None:
                self._transport.close()
            return
        if self._state is _State.IDLE:
            self._wait(_State.RECEIVING, self._limiter.request_timeout)
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        if self._state is _State.REFUSED:
            self._limiter.done_lingering()
        transport, self._transport = self._transport, None
        if self._inner is None or transport is None:
            return
        self._limiter.forget(transport)
        self._inner.connection_lost(exc)

    # -- told by the middleware --------------------------------------------------------------

    def request_started(self) -> float:
        """A request's head arrived; returns the loop time by which its body must have."""
        loop = asyncio.get_running_loop()
        if self._state is _State.RECEIVING:
            deadline = self._deadline
        else:  # it arrived while the previous one was handled (pipelined)
            deadline = loop.time() + self._limiter.request_timeout
        self._cancel_timer()
        self._state = _State.HANDLING
        return deadline

    def request_finished(self) -> None:
        if self._transport is not None:
            self._wait(_State.IDLE, self._limiter.idle_timeout)

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    # -- deadlines ----------------------------------------------------------------------------

    def _wait(self, state: _State, seconds: float) -> None:
        self._cancel_timer()
        loop = asyncio.get_running_loop()
        self._state = state
        self._deadline = loop.time() + seconds
        self._timer = loop.call_at(self._deadline, self._expire)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _refuse(self, transport: asyncio.Transport) -> None:
        transport.write(self._limiter.overloaded)
        if self._limiter.may_linger():
            self._wait(_State.REFUSED, REFUSED_LINGER_S)
        else:
            transport.close()

    def _expire(self) -> None:
        self._timer = None
        if self._state is _State.REFUSED:
            if self._transport is not None:
                self._transport.close()  # it sent nothing: nothing unread, no reset
            return
        self._limiter.timed_out()
        # Dropped, not answered: the client is not sending, and a 408 written after a
        # half-read answer would corrupt it. abort(), not close(): close() would wait for a
        # client that does not read to take what is still buffered.
        self.abort()


class ConnectionLimiter:
    """The HTTP listener's protocol factory (``wrap``), and the middleware that keeps time."""

    def __init__(self, config: HttpConfig) -> None:
        self._connections: dict[asyncio.BaseTransport, _Connection] = {}
        self._lingering = 0
        self._refused = _Tally("http connections refused: too many open", "warning")
        self._timeouts = _Tally("http connections dropped: request or idle timeout", "info")
        self.reconfigure(config)

    def reconfigure(self, config: HttpConfig) -> None:
        """New limits apply to connections from now on (and to every new deadline)."""
        budget = descriptor_budget()
        self.max_connections = min(config.max_connections, budget)
        if self.max_connections < config.max_connections:
            log.warning(
                "http max_connections lowered to half the descriptor limit",
                configured=config.max_connections,
                used=self.max_connections,
            )
        self.request_timeout = config.request_timeout_seconds
        self.idle_timeout = config.idle_timeout_seconds
        self.overloaded = overloaded_answer(self.max_connections)

    def wrap(self, inner: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        """The factory for ``loop.create_server``: ``inner`` (aiohttp's) behind the limits."""
        return lambda: _Connection(self, inner)

    def admit(self, transport: asyncio.Transport, connection: _Connection) -> bool:
        """Count a new connection in, or tell it is one too many."""
        if len(self._connections) >= self.max_connections:
            self._refused.add(limit=self.max_connections)
            return False
        self._connections[transport] = connection
        return True

    def may_linger(self) -> bool:
        if self._lingering >= MAX_LINGERING:
            return False
        self._lingering += 1
        return True

    def done_lingering(self) -> None:
        self._lingering -= 1

    def forget(self, transport: asyncio.BaseTransport) -> None:
        self._connections.pop(transport, None)

    def timed_out(self) -> None:
        self._timeouts.add(request_timeout_s=self.request_timeout, idle_timeout_s=self.idle_timeout)

    def close(self) -> None:
        """On shutdown, after aiohttp closed what it could: whatever is left goes."""
        for connection in list(self._connections.values()):
            connection.abort()
        self._refused.write()
        self._timeouts.write()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Marks the request under way and reads its body under the request deadline."""
        transport = request.transport
        connection = self._connections.get(transport) if transport is not None else None
        if connection is None:
            return await handler(request)
        deadline = connection.request_started()
        try:
            if getattr(request.match_info.handler, STREAMS_BODY, False):
                request[STALL_S] = self.request_timeout
                try:
                    return await handler(request)
                except StalledBody:
                    return await self._too_slow(
                        request,
                        connection,
                        f"the upload stalled: nothing arrived for {self.request_timeout:g} s",
                    )
            if request.body_exists:
                try:
                    async with asyncio.timeout_at(deadline):
                        await request.read()  # kept by aiohttp for the handler's json()
                except TimeoutError:
                    return await self._too_slow(
                        request,
                        connection,
                        f"the request did not arrive whole within {self.request_timeout:g} s",
                    )
            return await handler(request)
        finally:
            connection.request_finished()

    async def _too_slow(
        self, request: web.Request, connection: _Connection, detail: str
    ) -> web.Response:
        """408, written out here, then the connection closed: aiohttp would otherwise wait
        (``lingering_time``) for the rest of a body that is not coming."""
        response = error(408, detail, kind="request_timeout")
        response.force_close()
        with contextlib.suppress(ConnectionError):
            await response.prepare(request)
            await response.write_eof()
        # close(), not abort(): the 408 goes out first. Nothing is left unread (aiohttp
        # reads a body as it comes, up to MAX_BODY_BYTES), so the client gets a FIN, not a
        # reset that would lose the answer.
        connection.close()
        return response
