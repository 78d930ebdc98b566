"""RPC methods that exist only for the test suite, served by ``python -m tests.hooked_musiqued``.

``test.block`` stalls the event loop on purpose (the watchdog must then stay silent; a
request stays in flight for as long as asked) and logs ``test.block started`` first, so a
test knows the request is being worked on;
``test.log`` logs an arbitrary event, so the journald tests control the fields sent;
``test.modules`` says which of the named modules the daemon has imported (e.g. that an
import never loads pylast);
``test.lastfm_retry`` shortens how long the daemon insists with Last.fm (the client's
``RetryPolicy``), so a test of a fault that never clears ends in seconds, not minutes.
The product never sees them: the test entry point hands them to the daemon as extra methods.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Literal

import structlog
from pydantic import Field

from musiqued.contract.params import Params
from musiqued.rpc.table import CallContext, Method
from musiqued.upstream.lastfm import RetryPolicy

log = structlog.get_logger("musiqued.testhooks")


class BlockParams(Params):
    seconds: float = Field(gt=0, le=30)


async def block(_: CallContext, params: BlockParams) -> dict[str, Any]:
    log.info("test.block started", seconds=params.seconds)
    # The point: nothing else on the loop runs meanwhile.
    time.sleep(params.seconds)  # noqa: ASYNC251
    return {"blocked_s": params.seconds}


class LogParams(Params):
    event: str
    level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    fields: dict[str, Any] = Field(default_factory=dict)
    raise_error: str | None = None


async def log_event(_: CallContext, params: LogParams) -> dict[str, Any]:
    method = getattr(log, params.level)
    if params.raise_error is None:
        method(params.event, **params.fields)
    else:
        try:
            raise RuntimeError(params.raise_error)
        except RuntimeError:
            method(params.event, exc_info=True, **params.fields)
    return {"logged": params.event}


class ModulesParams(Params):
    names: list[str] = Field(min_length=1, max_length=50)


async def modules(_: CallContext, params: ModulesParams) -> dict[str, Any]:
    return {"loaded": [name for name in params.names if name in sys.modules]}


class RetryParams(Params):
    base_delay: float = Field(default=0.01, ge=0)
    max_delay: float = Field(default=0.05, ge=0)
    page_pauses: tuple[float, ...] = (0.01, 0.01, 0.01, 0.01)


async def lastfm_retry(ctx: CallContext, params: RetryParams) -> dict[str, Any]:
    policy = RetryPolicy(
        base_delay=params.base_delay,
        max_delay=params.max_delay,
        page_pauses=params.page_pauses,
    )
    ctx.services.lastfm.client.retry = policy
    return {"retry": repr(policy)}


TEST_METHODS = (
    Method("test.block", BlockParams, block, "Block the event loop (tests only)."),
    Method("test.log", LogParams, log_event, "Log an event with fields (tests only)."),
    Method("test.modules", ModulesParams, modules, "Which modules are loaded (tests only)."),
    Method("test.lastfm_retry", RetryParams, lastfm_retry, "Retry Last.fm quickly (tests only)."),
)
