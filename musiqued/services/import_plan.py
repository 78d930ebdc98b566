"""An import job's plan and checkpoint: pure data, no I/O (unit-tested on its own).

The window is frozen, so Last.fm numbers its pages the same way for the whole job: page
``p`` at ``per_page`` holds the scrobbles at offsets ``[(p-1)·per_page, p·per_page)`` of the
window, newest first. That makes the size of every page known in advance
(``expected_size``), which is how a page that Last.fm served short is noticed.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from musiqued.models import Scrobble


class PageSet:
    """Committed pages as sorted, disjoint spans ``[first, last]``.

    A page's transaction writes the whole checkpoint with it, so adding a page and listing
    the spans must cost the number of spans (a few: pages end roughly in order), not the
    number of pages: the last pages of a long import cost what the first do.
    """

    __slots__ = ("_firsts", "_lasts")

    def __init__(self, pages: Iterable[int] = ()) -> None:
        self._firsts: list[int] = []
        self._lasts: list[int] = []
        for page in pages:
            self.add(page)

    @classmethod
    def of_spans(cls, spans: Iterable[Iterable[int]]) -> PageSet:
        pages = cls()
        for first, last in spans:
            pages.add_span(int(first), int(last))
        return pages

    def add(self, page: int) -> None:
        self.add_span(page, page)

    def add_span(self, first: int, last: int) -> None:
        if last < first:
            return
        # The spans that touch or overlap [first, last] merge with it.
        low = bisect.bisect_left(self._lasts, first - 1)
        high = bisect.bisect_right(self._firsts, last + 1)
        if low < high:
            first = min(first, self._firsts[low])
            last = max(last, self._lasts[high - 1])
        self._firsts[low:high] = [first]
        self._lasts[low:high] = [last]

    def spans(self) -> list[list[int]]:
        return [[first, last] for first, last in zip(self._firsts, self._lasts, strict=True)]

    def __contains__(self, page: object) -> bool:
        if not isinstance(page, int):
            return False
        at = bisect.bisect_right(self._firsts, page)
        return at > 0 and self._lasts[at - 1] >= page

    def __iter__(self) -> Iterator[int]:
        for first, last in zip(self._firsts, self._lasts, strict=True):
            yield from range(first, last + 1)

    def __len__(self) -> int:
        return sum(last - first + 1 for first, last in zip(self._firsts, self._lasts, strict=True))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PageSet):
            return (self._firsts, self._lasts) == (other._firsts, other._lasts)
        if isinstance(other, set | frozenset):
            return len(self) == len(other) and all(page in self for page in other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, like set

    def __repr__(self) -> str:
        return f"PageSet.of_spans({self.spans()})"


def ranges(pages: Iterable[int]) -> list[list[int]]:
    """``{1,2,3,7,8}`` → ``[[1,3],[7,8]]``: a checkpoint stays small for a million listens."""
    return (pages if isinstance(pages, PageSet) else PageSet(pages)).spans()


def expand(spans: Iterable[Iterable[int]]) -> PageSet:
    """The inverse of ``ranges``."""
    return PageSet.of_spans(spans)


@dataclass(frozen=True, slots=True)
class ShortPage:
    """A page committed with fewer scrobbles than its place in the window holds."""

    page: int
    missing: int
    newest: int | None
    """The newest and oldest timestamps the page did hold (where the gap is), if any."""
    oldest: int | None

    def dump(self) -> list[int | None]:
        return [self.page, self.missing, self.newest, self.oldest]

    @classmethod
    def load(cls, raw: list[Any]) -> ShortPage:
        page, missing, newest, oldest = raw
        return cls(int(page), int(missing), newest, oldest)


@dataclass(slots=True)
class Plan:
    """The job's checkpoint: what the window holds, and which pages are committed."""

    per_page: int
    pages_total: int
    expected: int
    """Scrobbles this sweep must store: the window's total, or ``limit`` if smaller."""
    window_total: int
    """Scrobbles Last.fm reported for the whole window when the sweep was planned."""
    limit: int | None
    done: PageSet
    sweep: int = 1
    """1 for the import itself; 2+ when back-dated scrobbles shifted the pages."""
    base_pages: int = 0
    """Pages counted by earlier sweeps (``pages_total`` adds them up)."""
    short: dict[int, ShortPage] = field(default_factory=dict)
    unusable: dict[int, int] = field(default_factory=dict)
    """Pages committed with entries that could not be used (counted in ``tracks_errors``):
    how many. Walked again after the sweep, in case Last.fm serves them whole then."""
    broken: dict[int, int] = field(default_factory=dict)
    """Of those, the broken entries (no date, wrong types; not the unstorable scrobbles
    Last.fm holds): still missing."""
    twins: dict[int, int] = field(default_factory=dict)
    """Pages holding scrobbles that repeat another one's identity (same second, artist and
    title; Last.fm keeps such twins, with different albums): how many. One listen stores
    both, so the window's stored count is short by them without anything missing."""
    gap: int | None = None
    """Scrobbles still missing when the job last ended (None: no gap found)."""
    unfetched: PageSet = field(default_factory=PageSet)
    """Pages the job never stored because Last.fm kept failing (part of ``gap``)."""

    @classmethod
    def first(cls, *, per_page: int, window_total: int, limit: int | None) -> Plan:
        """The plan page 1 allows: ``window_total`` scrobbles, the ``limit`` newest of them."""
        expected = window_total if limit is None else min(limit, window_total)
        pages_total = math.ceil(expected / per_page) if expected else 0
        return cls(per_page, pages_total, expected, window_total, limit, PageSet())

    def again(self, window_total: int) -> Plan:
        """The next sweep over the whole window, which now holds ``window_total``."""
        return Plan(
            per_page=self.per_page,
            pages_total=math.ceil(window_total / self.per_page),
            expected=window_total,
            window_total=window_total,
            limit=None,
            done=PageSet(),
            sweep=self.sweep + 1,
            base_pages=self.base_pages + self.pages_total,
        )

    @classmethod
    def load(cls, checkpoint: dict[str, Any]) -> Plan | None:
        if "pages_total" not in checkpoint:
            return None
        expected = int(checkpoint["expected"])
        short = (ShortPage.load(raw) for raw in checkpoint.get("short", []))
        return cls(
            per_page=int(checkpoint["per_page"]),
            pages_total=int(checkpoint["pages_total"]),
            expected=expected,
            window_total=int(checkpoint.get("window_total", expected)),
            limit=checkpoint.get("limit"),
            done=expand(checkpoint.get("done", [])),
            sweep=int(checkpoint.get("sweep", 1)),
            base_pages=int(checkpoint.get("base_pages", 0)),
            short={s.page: s for s in short},
            unusable={int(row[0]): int(row[1]) for row in checkpoint.get("unusable", [])},
            broken={int(row[0]): int(row[2]) for row in checkpoint.get("unusable", []) if row[2]},
            twins={int(page): int(n) for page, n in checkpoint.get("twins", [])},
            gap=checkpoint.get("gap"),
            unfetched=expand(checkpoint.get("unfetched", [])),
        )

    def dump(
        self,
        done: Iterable[int],
        short: Iterable[ShortPage] | None = None,
        unusable: dict[int, int] | None = None,
        broken: dict[int, int] | None = None,
    ) -> dict[str, Any]:
        kept = self.short.values() if short is None else short
        flawed = self.unusable if unusable is None else unusable
        damaged = self.broken if broken is None else broken
        return {
            "per_page": self.per_page,
            "pages_total": self.pages_total,
            "expected": self.expected,
            "window_total": self.window_total,
            "limit": self.limit,
            "done": ranges(done),
            "sweep": self.sweep,
            "base_pages": self.base_pages,
            "short": [s.dump() for s in sorted(kept, key=lambda s: s.page)],
            "unusable": [[page, flawed[page], damaged.get(page, 0)] for page in sorted(flawed)],
            "twins": [[page, self.twins[page]] for page in sorted(self.twins)],
            "gap": self.gap,
            "unfetched": ranges(self.unfetched),
        }

    def todo(self) -> list[int]:
        return [p for p in range(1, self.pages_total + 1) if p not in self.done]

    def expected_size(self, page: int) -> int:
        """How many scrobbles Last.fm's page ``page`` of the window must hold (0 past the end).

        Counted in the whole window: with a ``limit``, the last page kept is cut by ``keep``
        after it is fetched, not by Last.fm.
        """
        return max(0, min(self.per_page, self.window_total - (page - 1) * self.per_page))

    def keep(self, page: int, scrobbles: list[Scrobble]) -> list[Scrobble]:
        """The part of page ``page`` inside the N most recent (all of it without a limit)."""
        if self.limit is None:
            return scrobbles
        room = self.limit - (page - 1) * self.per_page
        return scrobbles[: max(room, 0)]

    def kept_size(self, page: int) -> int:
        """How many of page ``page``'s scrobbles this plan stores, when the page is whole."""
        size = self.expected_size(page)
        if self.limit is None:
            return size
        return max(0, min(size, self.limit - (page - 1) * self.per_page))

    @property
    def missing(self) -> int:
        """Scrobbles the committed short pages lacked."""
        return sum(s.missing for s in self.short.values())

    def not_fetched(self) -> tuple[PageSet, int]:
        """The pages of this sweep not stored yet, and the scrobbles they hold."""
        pages = PageSet(p for p in range(1, self.pages_total + 1) if p not in self.done)
        return pages, sum(self.kept_size(p) for p in pages)


def twins_within(scrobbles: list[Scrobble]) -> int:
    """How many of ``scrobbles`` repeat the identity of one before them in the list."""
    return len(scrobbles) - len({s.identity for s in scrobbles})


def edges(scrobbles: list[Scrobble]) -> list[Scrobble]:
    """The scrobbles of a page at its newest and oldest second: a twin of a scrobble on
    another page can only be one of these (pages follow one another in time)."""
    if not scrobbles:
        return []
    stamps = {min(s.timestamp for s in scrobbles), max(s.timestamp for s in scrobbles)}
    return [s for s in scrobbles if s.timestamp in stamps]


def short_page(
    page: int, expected: int, scrobbles: list[Scrobble], unusable: int = 0
) -> ShortPage | None:
    """A record of the gap if ``scrobbles`` and the ``unusable`` entries (counted as errors,
    with their reasons) are fewer than ``expected``, else None."""
    lacking = expected - len(scrobbles) - unusable
    if lacking <= 0:
        return None
    stamps = [s.timestamp for s in scrobbles]
    return ShortPage(
        page,
        lacking,
        max(stamps) if stamps else None,
        min(stamps) if stamps else None,
    )
