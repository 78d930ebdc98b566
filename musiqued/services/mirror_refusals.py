"""Which listens of a refused payload go again: the ListenBrainz mirror's refusals.

A 400 refuses a whole payload for one bad listen. ListenBrainz names that listen (its keys
are merged into the error); ``named_index`` finds it among those sent. A server that names
none (Maloja, Koito) gets the payload split in halves until each listen it refuses stands
alone (``Bisection``). Groups go in the order the listens were stored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import orjson

T = TypeVar("T")


def _identity(listen: Mapping[str, Any]) -> tuple[Any, Any, Any]:
    metadata = listen.get("track_metadata")
    if not isinstance(metadata, Mapping):
        return listen.get("listened_at"), None, None
    names = [metadata.get(k) for k in ("artist_name", "track_name")]
    # ListenBrainz strips the names it names back: compare them stripped.
    artist, track = (n.strip() if isinstance(n, str) else n for n in names)
    return listen.get("listened_at"), artist, track


def named_index(
    items: Sequence[T], body: Callable[[T], bytes], named: Mapping[str, Any] | None
) -> int | None:
    """Where the listen a refusal named is among ``items`` (the first one that matches its
    time and names); None if it named none or none matches."""
    if not named or "track_metadata" not in named:
        return None
    wanted = _identity(named)
    for index, item in enumerate(items):
        sent = orjson.loads(body(item))
        if isinstance(sent, dict) and _identity(sent) == wanted:
            return index
    return None


@dataclass
class Bisection(Generic[T]):
    """Which groups of a refused payload to send next, until every listen in it is either
    accepted or refused alone.

    Drive it with ``next_group()``, then ``accepted()`` or ``refused()`` for what the server
    said of that group: a group of one refused is that listen refused. Groups come in the
    listens' order.
    """

    items: Sequence[T]
    _pending: list[tuple[int, int]] = field(default_factory=list)
    """Ranges ``[start, end)`` still to settle, the next at the end of the list."""
    _sent: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        # The whole payload was refused already: its halves are what goes first.
        self._pending = self._halves(0, len(self.items))[::-1]

    @staticmethod
    def _halves(start: int, end: int) -> list[tuple[int, int]]:
        middle = (start + end) // 2
        return [(start, middle), (middle, end)]

    def next_group(self) -> list[T] | None:
        """The group to send now; None once every listen is settled."""
        if self._sent is not None:
            raise RuntimeError("the last group sent has no answer yet")
        while self._pending:
            start, end = self._pending.pop()
            if start < end:
                self._sent = (start, end)
                return list(self.items[start:end])
        return None

    def accepted(self) -> None:
        self._answered()

    def refused(self) -> None:
        start, end = self._answered()
        if end - start > 1:
            self._pending.extend(self._halves(start, end)[::-1])

    def _answered(self) -> tuple[int, int]:
        if self._sent is None:
            raise RuntimeError("no group was sent")
        sent, self._sent = self._sent, None
        return sent
