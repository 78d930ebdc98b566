"""In-process publish/subscribe for live events (scrobbles, job progress, daemon changes).

A slow subscriber never slows a publisher: each subscription has a bounded queue and,
when it is full, the oldest event is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

TOPICS = ("daemon", "job", "scrobble", "now_playing", "tracker", "enrichment", "mirror")


@dataclass(frozen=True, slots=True)
class Event:
    topic: str
    data: dict[str, Any]
    at: float = field(default_factory=time.time)


class Subscription:
    def __init__(
        self, bus: EventBus, topics: frozenset[str], maxsize: int, *, internal: bool = False
    ) -> None:
        self._bus = bus
        self.topics = topics
        self.internal = internal
        """A component of the daemon's own, not a client following events."""
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize)

    def offer(self, event: Event) -> None:
        if event.topic not in self.topics:
            return
        if self.queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
        self.queue.put_nowait(event)

    async def get(self) -> Event:
        return await self.queue.get()

    def close(self) -> None:
        self._bus.unsubscribe(self)


class EventBus:
    def __init__(self, maxsize: int = 1000) -> None:
        self._subscriptions: set[Subscription] = set()
        self._maxsize = maxsize

    def subscribe(
        self, topics: Iterable[str] | None = None, *, internal: bool = False
    ) -> Subscription:
        chosen = frozenset(topics) if topics else frozenset(TOPICS)
        subscription = Subscription(self, chosen, self._maxsize, internal=internal)
        self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)

    def publish(self, topic: str, **data: Any) -> None:
        event = Event(topic, data)
        for subscription in tuple(self._subscriptions):
            subscription.offer(event)

    @property
    def subscriber_count(self) -> int:
        """Clients following events (``daemon.status``'s ``subscribers``)."""
        return sum(not s.internal for s in self._subscriptions)
