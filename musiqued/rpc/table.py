"""What a method is: a name, a pydantic params model, an async handler, a one-line summary."""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Protocol

from pydantic import BaseModel, BeforeValidator, ConfigDict

from musiqued.timespec import TIMESTAMP_RANGE, parse_moment

if TYPE_CHECKING:
    from collections.abc import Mapping

    from musiqued.services.events import Subscription
    from musiqued.services.facade import Services


class Params(BaseModel):
    """Base of every params model: frozen, unknown keys refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class NoParams(Params):
    pass


class Connection(Protocol):
    """What a handler may do with the connection that called it."""

    def attach(self, subscription: Subscription) -> None: ...


@dataclass(frozen=True, slots=True)
class Peer:
    pid: int
    uid: int
    gid: int


@dataclass(frozen=True, slots=True)
class CallContext:
    """What a handler gets besides its params: the services, the caller, the method table."""

    services: Services
    connection: Connection
    peer: Peer
    request_id: str
    methods: Mapping[str, Method]


Handler = Callable[[CallContext, Any], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Method:
    name: str
    params: type[Params]
    handler: Handler
    summary: str


def _to_timestamp(value: Any) -> Any:
    """A JSON number is Unix seconds; a string is read by ``timespec.parse_moment`` (ISO 8601,
    ``20261130`` as a date, an age like ``30d``), as ``musiquectl`` reads it; within range."""
    if value is None or isinstance(value, bool):
        return value
    seconds: int
    if isinstance(value, int):
        seconds = value
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("must be a finite number of Unix seconds")
        if abs(value) > TIMESTAMP_RANGE:
            raise ValueError(f"{value!r} is out of range (at most {TIMESTAMP_RANGE} seconds)")
        seconds = int(value)
    elif isinstance(value, str):
        return parse_moment(value, time.time())  # refuses what is out of range itself
    else:
        return value
    if abs(seconds) > TIMESTAMP_RANGE:
        raise ValueError(f"{seconds} is out of range (at most {TIMESTAMP_RANGE} seconds)")
    return seconds


Timestamp = Annotated[int, BeforeValidator(_to_timestamp)]
