"""``http.login_url``: the web page's door for users the control socket admits."""

from __future__ import annotations

from typing import Any

from musiqued.contract.params import NoParams
from musiqued.rpc.table import CallContext, Method


async def login_url(ctx: CallContext, _: NoParams) -> dict[str, Any]:
    """Only peers the socket admits get here: the link gives no more than they have."""
    return ctx.services.web_logins.login_url()


METHODS = (
    Method(
        "http.login_url",
        NoParams,
        login_url,
        "A one-time link that opens the web page logged in: `{url, expires_in_s}`.",
    ),
)
