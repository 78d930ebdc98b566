"""``GET /api/v1/events``: the daemon's events over a WebSocket, for the page to follow live.

Each message is one JSON text, ``{"topic", "at", "data"}``, exactly the ``event``
notifications of ``events.subscribe`` (topics ``daemon job scrobble now_playing tracker
enrichment``). The first message is ``{"topic": "hello", "data": {"topics": [...]}}``. A
client may send ``{"topics": [...]}`` to narrow what it gets. Events are dropped, oldest
first, for a client that reads too slowly (the bus's bounded queue); the page then re-reads
the state it shows on its own schedule.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import weakref
from typing import TYPE_CHECKING

from aiohttp import web

from musiqued.services.events import TOPICS

if TYPE_CHECKING:
    from musiqued.services.events import EventBus, Subscription

PATH = "/api/v1/events"
HEARTBEAT_S = 30.0
MAX_CLIENT_MESSAGE = 4096


class LiveEvents:
    def __init__(self, events: EventBus) -> None:
        self._events = events
        self._sockets: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()

    def routes(self) -> list[web.RouteDef]:
        return [web.get(PATH, self.stream)]

    async def stream(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=MAX_CLIENT_MESSAGE)
        await ws.prepare(request)
        self._sockets.add(ws)
        subscription = self._events.subscribe(TOPICS)
        await ws.send_json({"topic": "hello", "data": {"topics": list(TOPICS)}})
        sender = asyncio.create_task(self._send(ws, subscription), name="http-events")
        try:
            async for _ in ws:  # the page sends nothing; this waits for it to leave
                pass
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await sender
            subscription.close()
        return ws

    @staticmethod
    async def _send(ws: web.WebSocketResponse, subscription: Subscription) -> None:
        while not ws.closed:
            event = await subscription.get()
            await ws.send_str(json.dumps(event.as_params(), ensure_ascii=False))

    async def close(self) -> None:
        """On shutdown: tell every page the daemon is going away (they reconnect later)."""
        for ws in list(self._sockets):
            with contextlib.suppress(Exception):
                await ws.close(code=1001, message=b"musiqued is stopping")
