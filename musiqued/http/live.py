"""``GET /api/v1/events``: the daemon's events over a WebSocket, for the page to follow live.

Each message is one JSON text, ``{"topic", "at", "data"}``, exactly the ``event``
notifications of ``events.subscribe`` (topics ``daemon job scrobble now_playing tracker
enrichment``). The first message is ``{"topic": "hello", "data": {"topics": [...]}}``. A
client may send ``{"topics": [...]}`` to narrow what it gets. Events are dropped, oldest
first, for a client that reads too slowly (the bus's bounded queue); the page then re-reads
the state it shows on its own schedule. At most ``[http] max_websockets`` are open at once;
one more is answered 503 (the page retries later).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import weakref
from typing import TYPE_CHECKING

from aiohttp import web

from musiqued.aio import cancel_and_wait
from musiqued.contract.shapes import event_params
from musiqued.http.common import HttpProblem
from musiqued.services.events import TOPICS

if TYPE_CHECKING:
    from musiqued.services.events import EventBus, Subscription

PATH = "/api/v1/events"
HEARTBEAT_S = 30.0
MAX_CLIENT_MESSAGE = 4096


class LiveEvents:
    def __init__(self, events: EventBus, *, max_sockets: int) -> None:
        self._events = events
        self._max_sockets = max_sockets
        self._open = 0  # counted here: the weak set may still hold closed ones
        self._sockets: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()

    def reconfigure(self, *, max_sockets: int) -> None:
        self._max_sockets = max_sockets

    def routes(self) -> list[web.RouteDef]:
        return [web.get(PATH, self.stream)]

    async def stream(self, request: web.Request) -> web.WebSocketResponse:
        if self._open >= self._max_sockets:
            raise HttpProblem(
                503,
                f"too many open pages following events (the limit is {self._max_sockets}); "
                "close some, or raise [http] max_websockets",
                kind="too_many_websockets",
                headers={"Retry-After": "10"},
            )
        self._open += 1
        try:
            return await self._stream(request)
        finally:
            self._open -= 1

    async def _stream(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=MAX_CLIENT_MESSAGE)
        await ws.prepare(request)
        self._sockets.add(ws)
        subscription = self._events.subscribe(TOPICS)
        sender: asyncio.Task[None] | None = None
        try:
            await ws.send_json({"topic": "hello", "data": {"topics": list(TOPICS)}})
            sender = asyncio.create_task(self._send(ws, subscription), name="http-events")
            async for _ in ws:  # the page sends nothing; this waits for it to leave
                pass
        finally:
            if sender is not None:
                with contextlib.suppress(ConnectionError):
                    await cancel_and_wait(sender)
            subscription.close()
        return ws

    @staticmethod
    async def _send(ws: web.WebSocketResponse, subscription: Subscription) -> None:
        while not ws.closed:
            event = await subscription.get()
            await ws.send_str(json.dumps(event_params(event), ensure_ascii=False))

    async def close(self) -> None:
        """On shutdown: tell every page the daemon is going away (they reconnect later)."""
        for ws in list(self._sockets):
            with contextlib.suppress(Exception):
                await ws.close(code=1001, message=b"musiqued is stopping")
