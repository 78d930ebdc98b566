"""What all clients together may hold in answers: one budget for the socket and HTTP alike.

A client that asks for large answers and never reads them makes the daemon keep them; many
such clients could hold gigabytes. Two bounds, shared by every connection:

- **Answers being built**: a request whose answer grows with its parameters (``bulk``: the
  history, albums and job lists) is built by at most ``BUILDERS`` at once, in turn: each
  owner (a uid on the socket, a client address over HTTP) in its turn, oldest request
  first, so one user's flood does not keep another's answers waiting behind it. A place
  that frees up is handed to the next in turn at once, so nobody arriving meanwhile takes
  it from them. A line
  (a batch) holding one is built whole in one turn: what its earlier answers hold is
  never left waiting on a later one.
- **Answers held**: every answer's bytes count from when they are made until the client
  has taken them (its connection's write buffer drained). While ``LIMIT_BYTES`` are held,
  bulk requests wait for their turn; a client that never reads keeps its share until its
  connection is dropped, and the others keep going as the readers read.

Other requests (status, control, small lookups) never wait here, nor behind the one being
built: its rows are read, and made into the values it sends, on a connection and thread of
their own (``Database.fetch_large_as``), while the event loop serves everyone else.
``daemon.status`` answers at once however many bulk requests are queued.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Hashable

LIMIT_BYTES = 32 * 1024 * 1024
BUILDERS = 1


class AnswerBudget:
    def __init__(self, limit_bytes: int = LIMIT_BYTES, builders: int = BUILDERS) -> None:
        self.limit_bytes = limit_bytes
        self._builders = builders
        self._building = 0
        # Each owner's waiters, oldest first; owners in the order they are served next.
        self._waiters: OrderedDict[Hashable, deque[asyncio.Future[None]]] = OrderedDict()
        self.held = 0

    @contextlib.asynccontextmanager
    async def turn(self, owner: Hashable) -> AsyncIterator[None]:
        """Wait until fewer than ``limit_bytes`` are held, a builder is free and it is
        ``owner``'s turn."""
        if self._waiters or not self._may_build():
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.setdefault(owner, deque()).append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._building -= 1  # the place handed to it goes to the next one
                    self._wake()
                else:
                    self._forget(owner, waiter)
                raise
        else:
            self._building += 1
        try:
            yield
        finally:
            self._building -= 1
            self._wake()

    @property
    def full(self) -> bool:
        """Someone waits because too much is held."""
        return self.held >= self.limit_bytes and bool(self._waiters)

    def _forget(self, owner: Hashable, waiter: asyncio.Future[None]) -> None:
        queue = self._waiters.get(owner)
        if queue is not None and waiter in queue:
            queue.remove(waiter)
            if not queue:
                del self._waiters[owner]

    def hold(self, size: int) -> None:
        self.held += size

    def release(self, size: int) -> None:
        """``size`` bytes were taken by their client (or dropped with its connection)."""
        self.held -= size
        self._wake()

    def _may_build(self) -> bool:
        return self._building < self._builders and self.held < self.limit_bytes

    def _wake(self) -> None:
        """Hand the free places to the waiters: the next owner's oldest, owner by owner. A
        place is taken as it is handed over, so nobody arriving meanwhile takes it first."""
        while self._may_build() and self._waiters:
            owner, queue = next(iter(self._waiters.items()))
            waiter = queue.popleft()
            del self._waiters[owner]
            if queue:
                self._waiters[owner] = queue  # to the end: the other owners go first
            if not waiter.done():
                self._building += 1
                waiter.set_result(None)
