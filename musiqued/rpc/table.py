"""What a method is: a name, a pydantic params model, an async handler, a one-line summary."""

from __future__ import annotations

import datetime as dt
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


def _to_timestamp(value: Any) -> Any:
    """Accept Unix seconds or an ISO 8601 date/datetime (naive means UTC)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():
            return int(text)
        try:
            moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(
                f"{value!r} is neither Unix seconds nor an ISO 8601 date or datetime"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        return int(moment.timestamp())
    return value


Timestamp = Annotated[int, BeforeValidator(_to_timestamp)]
