"""What a method is: a name, a pydantic params model, an async handler, a one-line summary.

The params models' base and value types live in ``contract.params`` (the HTTP API shares
them)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from musiqued import wire
from musiqued.rpc import protocol

if TYPE_CHECKING:
    from collections.abc import Mapping

    from musiqued.contract.params import Params
    from musiqued.services.events import Subscription
    from musiqued.services.facade import Services


class Connection(Protocol):
    """What a handler may do with the connection that called it."""

    def attach(self, subscription: Subscription) -> None: ...

    async def send(self, data: bytes) -> None:
        """Write ``data`` (whole lines); returns once the peer is reading it (back-pressure)."""

    def gone(self) -> bool:
        """The peer closed its end entirely (a half-closed peer still reads its answers)."""

    async def receive_fds(self, request_id: protocol.Id, count: int) -> list[int]:
        """The ``count`` open files the peer hands over for ``request_id`` (``rpc/server.py``);
        the caller owns (and closes) them."""


@dataclass(frozen=True, slots=True)
class Peer:
    pid: int
    uid: int
    gid: int


class CallerGone(ConnectionError):
    """The caller went away (or stopped reading) while its answer was being streamed: the
    call ends there, nothing to answer and nothing wrong with the daemon."""


# Worst case for the JSON of one character of text: a control character becomes \u00XX.
_MAX_ESCAPE = 6


@dataclass(frozen=True, slots=True)
class CallContext:
    """What a handler gets besides its params: the services, the caller, the method table."""

    services: Services
    connection: Connection
    peer: Peer
    methods: Mapping[str, Method]
    reply_to: protocol.Id = None
    """The request's own id, which its answer and streamed parts carry."""

    async def stream(self, text: str) -> None:
        """Send ``text`` as the next part of a streamed answer (``wire.STREAM_METHOD``
        notifications, in order, the answer after them), cut so that no line exceeds
        ``wire.MAX_LINE_BYTES`` however the text escapes; returns when the peer has taken it
        (a peer that stops reading stalls only its own call, then loses its connection)."""
        envelope = {"id": self.reply_to, "data": ""}
        overhead = len(protocol.encode(protocol.notification(wire.STREAM_METHOD, envelope)))
        size = (wire.MAX_LINE_BYTES - overhead) // _MAX_ESCAPE
        if size < 1024:
            raise protocol.InvalidRequest(
                "the request's id is too long for a streamed answer", kind="id_too_long"
            )
        for start in range(0, len(text), size):
            envelope["data"] = text[start : start + size]
            try:
                await self.connection.send(
                    protocol.encode(protocol.notification(wire.STREAM_METHOD, envelope))
                )
            except (ConnectionError, OSError) as exc:
                raise CallerGone(str(exc)) from None


Handler = Callable[[CallContext, Any], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Method:
    name: str
    params: type[Params]
    handler: Handler
    summary: str
    streamed: bool = False
    """The answer comes in ``wire.STREAM_METHOD`` notifications before the result."""
    bulk: bool = False
    """Its answer grows with its parameters (a list of up to thousands): built in turn,
    within what all clients may hold (``services.answers``)."""
