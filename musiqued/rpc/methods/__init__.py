"""The explicit table of every RPC method. Each area lists its own in a module here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

from musiqued.rpc.methods import (
    daemon,
    enrich,
    files,
    history,
    imports,
    jobs,
    lastfm,
    library,
    mirror,
    tracker,
    verify,
    web,
)
from musiqued.rpc.table import Method


def _table(*groups: tuple[Method, ...]) -> MappingProxyType[str, Method]:
    table: dict[str, Method] = {}
    for group in groups:
        for method in group:
            if method.name in table:
                raise RuntimeError(f"RPC method {method.name} is listed twice")
            table[method.name] = method
    return MappingProxyType(table)


METHODS = _table(
    daemon.METHODS,
    history.METHODS,
    tracker.METHODS,
    jobs.METHODS,
    imports.METHODS,
    verify.METHODS,
    files.METHODS,
    lastfm.METHODS,
    enrich.METHODS,
    web.METHODS,
    mirror.METHODS,
    library.METHODS,
)


def with_extra(table: Mapping[str, Method], extra: Sequence[Method]) -> Mapping[str, Method]:
    """``table`` with ``extra`` methods added (the test entry point adds its own)."""
    if not extra:
        return table
    return _table(tuple(table.values()), tuple(extra))
