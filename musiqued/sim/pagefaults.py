"""Faults in the content of a ``user.getRecentTracks`` page: HTTP 200, valid JSON, wrong page.

Real Last.fm now and then serves a page with fewer entries than its place in the window
holds, an empty one, entries without their date, or values of the wrong type. These kinds
make the simulator do the same, so a client can be shown never to lose a scrobble silently:

=============  ==============================================================================
``short``      half of the page's scrobbles (the newest half); ``@attr`` unchanged
``empty``      ``"track": []`` with ``@attr`` unchanged
``emptystr``   ``"track": ""`` (how some answers spell an empty page)
``nodate``     every scrobble without its ``date``
``allplaying`` every scrobble marked now playing (``@attr.nowplaying``), without its ``date``
``badtypes``   each scrobble broken in one way: artist a number or a list, an empty artist,
               title a list, ``uts`` out of range (0, negative, year 5138) or a number,
               ``date`` a string, the entry a bare string
``badpage``    the page as a whole: ``track`` a number, or ``@attr.total`` not a number
=============  ==============================================================================

The now-playing entry (if any) stays on top, untouched. ``errorbody`` (``{"error": "x"}`` with
HTTP 200) is not a page's content: ``sim/lastfm.py`` answers it for any method.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

PAGE_FAULTS = ("short", "empty", "emptystr", "nodate", "allplaying", "badtypes", "badpage")

Entry = dict[str, Any]


def _without_date(entry: Entry) -> Entry:
    return {key: value for key, value in entry.items() if key != "date"}


def _playing(entry: Entry) -> Entry:
    return {"@attr": {"nowplaying": "true"}, **_without_date(entry)}


def _date(entry: Entry, uts: Any) -> Entry:
    return {**entry, "date": {"uts": uts, "#text": "01 Jan 1970, 00:00"}}


# Each returns a NEW entry: the rendered entries share their nested artist/album objects.
_BREAKERS: tuple[Callable[[Entry], Any], ...] = (
    lambda e: {**e, "artist": {"mbid": "", "#text": 12345, "name": 12345}},
    lambda e: {**e, "name": ["a", "title", "as", "a", "list"]},
    lambda e: _date(e, "99999999999"),
    lambda e: {**e, "artist": {"mbid": "", "#text": "", "name": ""}},
    lambda e: _date(e, "0"),
    lambda e: _date(e, "-5"),
    lambda e: {**e, "date": "yesterday"},
    lambda e: _date(e, 1_700_000_000),
    lambda e: {**e, "artist": ["not", "an", "object"]},
    lambda _: "a bare string where an entry belongs",
)


def _is_now_playing(entry: Entry) -> bool:
    attr = entry.get("@attr")
    return isinstance(attr, dict) and attr.get("nowplaying") == "true"


def spoil(
    kind: str, entries: list[Entry], attr: dict[str, str], *, coin: bool
) -> tuple[Any, dict[str, Any]]:
    """The ``track`` value and ``@attr`` of a page broken by ``kind``.

    ``entries``: the page's rendered entries (the now-playing one first, if any); ``coin``
    picks between the two shapes of ``badpage``.
    """
    playing = [e for e in entries[:1] if _is_now_playing(e)]
    scrobbles = entries[len(playing) :]
    if kind == "empty":
        return [], attr
    if kind == "emptystr":
        return "", attr
    if kind == "badpage":
        if coin:
            return 7, attr
        return _bare(entries), {**attr, "total": "lots"}
    if kind == "short":
        changed = scrobbles[: len(scrobbles) // 2]
    elif kind == "nodate":
        changed = [_without_date(e) for e in scrobbles]
    elif kind == "allplaying":
        changed = [_playing(e) for e in scrobbles]
    elif kind == "badtypes":
        changed = [_BREAKERS[i % len(_BREAKERS)](e) for i, e in enumerate(scrobbles)]
    else:
        raise ValueError(f"unknown page fault {kind!r}; known: {list(PAGE_FAULTS)}")
    return _bare([*playing, *changed]), attr


def _bare(entries: list[Any]) -> Any:
    """Last.fm's rule: exactly one entry comes as a bare object."""
    return entries[0] if len(entries) == 1 else entries
