"""What a method is: a name, a pydantic params model, an async handler, a one-line summary."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Protocol

from pydantic import BaseModel, BeforeValidator, ConfigDict

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


TIMESTAMP_RANGE = 2**53
"""Unix seconds beyond this (either sign) are refused: no history reaches that far, and
SQLite's integers end at 2**63."""


def _to_timestamp(value: Any) -> Any:
    """Accept Unix seconds or an ISO 8601 date/datetime (naive means UTC), within range."""
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
        text = value.strip()
        if text.lstrip("-").isdigit():
            seconds = int(text)
        else:
            try:
                moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                raise ValueError(
                    f"{value!r} is neither Unix seconds nor an ISO 8601 date or datetime"
                ) from None
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=dt.UTC)
            seconds = int(moment.timestamp())
    else:
        return value
    if abs(seconds) > TIMESTAMP_RANGE:
        raise ValueError(f"{seconds} is out of range (at most {TIMESTAMP_RANGE} seconds)")
    return seconds


Timestamp = Annotated[int, BeforeValidator(_to_timestamp)]
