"""``lastfm.auth_url`` and ``lastfm.auth_complete``: web auth for a private profile."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from musiqued.contract.params import NoParams, Params
from musiqued.rpc.table import CallContext, Method


async def auth_url(ctx: CallContext, _: NoParams) -> dict[str, Any]:
    return await ctx.services.lastfm.auth_url()


class AuthCompleteParams(Params):
    token: str = Field(min_length=1, max_length=200)


async def auth_complete(ctx: CallContext, params: AuthCompleteParams) -> dict[str, Any]:
    return await ctx.services.lastfm.auth_complete(params.token)


METHODS = (
    Method(
        "lastfm.auth_url",
        NoParams,
        auth_url,
        "Start Last.fm web auth: the URL to open and its token.",
    ),
    Method(
        "lastfm.auth_complete",
        AuthCompleteParams,
        auth_complete,
        "Finish Last.fm web auth; the session key is stored, never returned.",
    ),
)
