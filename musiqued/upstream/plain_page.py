"""A ``user.getRecentTracks`` page read straight into scrobbles, when it is a plain one.

Nearly every page of an import is plain: an object with ``recenttracks``, its ``@attr``
counts as digit strings, and entries that are all dated scrobbles with a non-blank artist
and title. Such a page is decoded here by msgspec against the few fields the daemon keeps,
so the images, ``streamable`` and the date's text are skipped unread: about half the event
loop's time per page, which the import and every RPC client share.

Anything else (an error object, a ``null`` or a number where text belongs, the now-playing
entry, a refused entry, a count that is not a number) gives None, and the caller reads the
page the general way (``lastfm.classify``, ``lastfm.parse_recent_tracks``), which says what
is wrong with it. So the result here is always the one the general way gives, never
another: tests/test_plain_page.py compares the two on recorded, simulated and mutated pages.
"""

from __future__ import annotations

from typing import Any

import msgspec

from musiqued.aio import Turns, at_once
from musiqued.models import RecentTracksPage, Scrobble, web_url

# The structs hold only text and each other (never a cycle): untracked by the collector,
# a page's few hundred of them do not bring its next collection nearer (gc=False).
_UNSET = msgspec.UNSET
_Text = str | msgspec.UnsetType
"""A field read only when it is a string: ``null``, a number or an object fails the decode
(the general way then decides), and a missing field stays UNSET."""


class _Named(msgspec.Struct, gc=False):
    """An entry's ``artist`` or ``album``: extended answers name the artist in ``name``,
    the others in ``#text``."""

    name: _Text = _UNSET
    text: _Text = msgspec.field(default=_UNSET, name="#text")
    mbid: _Text = _UNSET
    url: _Text = _UNSET


class _Date(msgspec.Struct, gc=False):
    uts: _Text = _UNSET


class _Entry(msgspec.Struct, gc=False):
    artist: _Named
    name: _Text = _UNSET
    album: _Named | msgspec.UnsetType = _UNSET
    date: _Date | msgspec.UnsetType = _UNSET
    mbid: _Text = _UNSET
    url: _Text = _UNSET
    loved: _Text = _UNSET


class _Counts(msgspec.Struct, gc=False):
    page: _Text = _UNSET
    perPage: _Text = _UNSET
    totalPages: _Text = _UNSET
    total: _Text = _UNSET


class _RecentTracks(msgspec.Struct, gc=False):
    track: list[_Entry] | _Entry | msgspec.UnsetType = _UNSET
    counts: _Counts | msgspec.UnsetType | None = msgspec.field(default=_UNSET, name="@attr")


class _Answer(msgspec.Struct, gc=False):
    recenttracks: _RecentTracks
    # Present, whatever it holds, it makes the answer an error: the general way raises it.
    error: Any = _UNSET


_DECODER = msgspec.json.Decoder(_Answer)
_NO_ALBUM = _Named()


def _count(value: _Text, default: int) -> int | None:
    if value is _UNSET or value == "":
        return default
    assert isinstance(value, str)
    return int(value) if value.isdecimal() else None


def _scrobble(entry: _Entry, latest: float) -> Scrobble | None:
    artist = entry.artist
    artist_name = artist.name if artist.name is not _UNSET else artist.text
    title = entry.name
    date = entry.date
    if (
        artist_name is _UNSET
        or title is _UNSET
        or date is _UNSET
        or not artist_name.strip()
        or not title.strip()
    ):
        return None
    uts = date.uts
    if uts is _UNSET or not uts.removeprefix("-").isdecimal():
        return None
    timestamp = int(uts)
    if not 0 < timestamp <= latest:
        return None
    album = entry.album if entry.album is not _UNSET else _NO_ALBUM
    return Scrobble(
        timestamp,
        artist_name,
        title,
        album.text or "",
        artist.mbid or "",
        album.mbid or "",
        entry.mbid or "",
        web_url(entry.url) or "",
        web_url(artist.url) or "",
        entry.loved == "1",
    )


# Scrobbles read per turn of the event loop (``plain_page_in_turns``): about 0.7 ms of
# work here, where a page of 1,000 (the most ``page_size`` allows) takes some 4 ms.
ENTRIES_PER_TURN = 250


def read_plain_page(body: bytes, latest: float) -> RecentTracksPage | None:
    """The page ``body`` holds if it is a plain one (module docstring), else None.

    ``latest``: the last Unix second a scrobble may carry (later ones are refused, by the
    general way).
    """
    return at_once(plain_page_in_turns(body, latest))


def plain_page_in_turns(body: bytes, latest: float) -> Turns[RecentTracksPage | None]:
    """``read_plain_page``, pausing after the decoding and after every ``ENTRIES_PER_TURN``
    scrobbles."""
    try:
        answer = _DECODER.decode(body)
    except msgspec.DecodeError:  # ValidationError included: not plain, or not JSON at all
        return None
    if answer.error is not _UNSET:
        return None
    yield
    recent = answer.recenttracks
    entries: list[_Entry]
    if isinstance(recent.track, list):
        entries = recent.track
    elif isinstance(recent.track, _Entry):  # exactly one entry comes as a bare object
        entries = [recent.track]
    else:
        entries = []
    scrobbles = []
    for start in range(0, len(entries), ENTRIES_PER_TURN):
        if start:
            yield
        for entry in entries[start : start + ENTRIES_PER_TURN]:
            scrobble = _scrobble(entry, latest)
            if scrobble is None:
                return None
            scrobbles.append(scrobble)
    counts = recent.counts if isinstance(recent.counts, _Counts) else _Counts()
    page = _count(counts.page, 1)
    per_page = _count(counts.perPage, 0)
    total_pages = _count(counts.totalPages, 0)
    total = _count(counts.total, 0)
    if page is None or per_page is None or total_pages is None or total is None:
        return None
    return RecentTracksPage(
        scrobbles=scrobbles,
        now_playing=None,
        page=page,
        per_page=per_page,
        total_pages=total_pages,
        total=total,
    )


__all__ = ["ENTRIES_PER_TURN", "plain_page_in_turns", "read_plain_page"]
