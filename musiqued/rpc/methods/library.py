"""``library.*``: the library's views (``contract/library.py``), one method each."""

from __future__ import annotations

from typing import Any

from musiqued.contract.library import VIEWS
from musiqued.contract.shapes import library_shape
from musiqued.rpc.table import CallContext, Method


def _method(name: str) -> Method:
    model, view, summary = VIEWS[name]

    async def handler(ctx: CallContext, params: Any) -> Any:
        return library_shape(await view(ctx.services.library, params))

    return Method(f"library.{name}", model, handler, summary)


METHODS = tuple(_method(name) for name in VIEWS)
