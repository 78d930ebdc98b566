"""When a play read from a file is a listen already stored, and when two entries of one file
are the same play.

Two plays are the same listen when their artist and title are equal ignoring case, accents
and surrounding spaces (``identity``) and their starts are at most the window apart
(``[import] match_window_s``; ``musiqued.config.ImportConfig`` says why its default is what
it is). Each stored listen answers for one play at most: a play takes the nearest stored
start of its identity not yet taken (``nearest``), so a track on repeat, whose plays follow
each other closer than the window, still counts each play once.

Within one file, entries with the same start second and identity are one play however often
they appear (``FileDuplicates``).
"""

from __future__ import annotations

import bisect
import functools
import heapq
import unicodedata
import zlib
from array import array
from collections.abc import Iterable

from musiqued.interchange.entries import Play


@functools.lru_cache(maxsize=65_536)
def normalised(text: str) -> str:
    """``text`` compared ignoring case, accents and surrounding spaces: case-folded,
    decomposed (NFKD: also full-width forms and ligatures to their plain letters) with the
    combining marks dropped, and stripped. Cached: a history names the same artists and
    titles again and again."""
    if text.isascii():
        return text.strip().lower()
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(char for char in decomposed if not unicodedata.combining(char)).strip()


def identity(artist: str, title: str) -> tuple[str, str]:
    """What two plays must share to be one listen, besides their time."""
    return normalised(artist), normalised(title)


def nearest(start: int, candidates: Iterable[int], window_s: int) -> int | None:
    """Of the stored starts of a play's identity not yet taken by another play, the one the
    play takes: the nearest within the window, the earlier of two as near; None if none is
    within it."""
    best: int | None = None
    for candidate in candidates:
        distance = abs(candidate - start)
        if distance > window_s:
            continue
        if best is None or (distance, candidate) < (abs(best - start), best):
            best = candidate
    return best


def exact_key(play: Play) -> int:
    """A play's start second and identity in one unsigned 64-bit number: the start in the
    high half (to 2106), the CRC-32 of the identity in the low half. Two different tracks
    share a key only if they start in the same second and their CRCs collide (a chance in
    four billion for such a pair)."""
    artist, title = identity(play.artist, play.title)
    checksum = zlib.crc32(f"{artist}\x00{title}".encode("utf-8", "surrogatepass"))
    return (play.timestamp & 0xFFFF_FFFF) << 32 | checksum


class FileDuplicates:
    """The plays seen so far in one file, to count an entry that repeats one as that play.

    Eight bytes a play, whatever the file's size: the keys are kept in sorted arrays, the
    newest few in a set; when the set fills it becomes an array, merged with the arrays no
    longer than it (as a binary counter carries), so there are few arrays to search.
    """

    RECENT = 4096

    def __init__(self) -> None:
        self._recent: set[int] = set()
        self._runs: list[array[int]] = []

    def seen(self, play: Play) -> bool:
        """Whether ``play`` repeats one seen before in the file; it is remembered if not."""
        key = exact_key(play)
        if key in self._recent or any(_holds(run, key) for run in self._runs):
            return True
        self._recent.add(key)
        if len(self._recent) >= self.RECENT:
            self._flush()
        return False

    def __len__(self) -> int:
        return len(self._recent) + sum(len(run) for run in self._runs)

    def _flush(self) -> None:
        run = array("Q", sorted(self._recent))
        self._recent.clear()
        while self._runs and len(self._runs[-1]) <= len(run):
            run = array("Q", heapq.merge(self._runs.pop(), run))
        self._runs.append(run)


def _holds(run: array[int], key: int) -> bool:
    index = bisect.bisect_left(run, key)
    return index < len(run) and run[index] == key
