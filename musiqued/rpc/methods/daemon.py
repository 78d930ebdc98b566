"""``daemon.*``, ``events.subscribe`` and ``rpc.describe``."""

from __future__ import annotations

import functools
from typing import Any

from pydantic import field_validator

from musiqued import __version__, wire
from musiqued.contract.params import NoParams, Params
from musiqued.rpc.table import CallContext, Method
from musiqued.services.events import TOPICS


async def status(ctx: CallContext, _: NoParams) -> dict[str, Any]:
    return await ctx.services.control.status()


async def reload(ctx: CallContext, _: NoParams) -> dict[str, Any]:
    return await ctx.services.control.reload()


class SubscribeParams(Params):
    topics: list[str] | None = None

    @field_validator("topics")
    @classmethod
    def _known(cls, topics: list[str] | None) -> list[str] | None:
        unknown = sorted(set(topics or ()) - set(TOPICS))
        if unknown:
            raise ValueError(f"unknown topics {unknown}; known: {list(TOPICS)}")
        return topics


async def subscribe(ctx: CallContext, params: SubscribeParams) -> dict[str, Any]:
    subscription = ctx.services.events.subscribe(params.topics)
    ctx.connection.attach(subscription)
    return {"subscribed": sorted(subscription.topics)}


async def describe(ctx: CallContext, _: NoParams) -> dict[str, Any]:
    return _description(tuple(ctx.methods.values()))


@functools.cache
def _description(methods: tuple[Method, ...]) -> dict[str, Any]:
    """Built once per method table (fixed at start-up): pydantic's JSON schemas take
    milliseconds each to build."""
    return {
        "version": __version__,
        "api_version": wire.API_VERSION,
        "methods": [
            {
                "name": m.name,
                "summary": m.summary,
                "params": m.params.model_json_schema(),
                # Its answer comes in `stream` notifications before the result.
                "streamed": m.streamed,
            }
            for m in methods
        ],
    }


METHODS = (
    Method("daemon.status", NoParams, status, "Version, uptime, configuration, tracker, jobs."),
    Method("daemon.reload", NoParams, reload, "Re-read the configuration (same as SIGHUP)."),
    Method("events.subscribe", SubscribeParams, subscribe, "Stream `event` notifications."),
    Method("rpc.describe", NoParams, describe, "The daemon's version and every method."),
)
