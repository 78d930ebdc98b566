"""What a reader yields for each entry of a file: a play, a skipped entry, or an unreadable one.

Every string here comes from a file someone else wrote: it is kept exactly as read (no
trimming, no case change); only the matching rules (``matching``) compare normalised forms.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Origin = Literal["spotify", "listenbrainz", "maloja", "lastfm-csv", "scrobbler-log"]
"""Where a play came from: the format of the file it was read from."""

SkipReason = Literal[
    "short_play", "incognito", "podcast", "audiobook", "no_track_name", "rated_skip"
]
"""Why an entry is not a listen, each counted on its own:

- ``short_play``: Spotify played it for less than ``MIN_PLAY_MS``;
- ``incognito``: Spotify played it in a private session (``incognito_mode``);
- ``podcast``: a podcast episode;
- ``audiobook``: an audiobook chapter;
- ``no_track_name``: Spotify names no track (nor episode nor chapter);
- ``rated_skip``: a ``.scrobbler.log`` line rated ``S`` (the player saw it skipped).
"""

MIN_PLAY_MS = 30_000
"""Spotify plays shorter than this are no listen: Last.fm scrobbles no track that played less
than 30 s, and Spotify's history logs every start, even a skip after a second."""


# Not frozen: a file import builds one per entry, millions of them, each never changed after
# it is made, and a frozen dataclass sets each field through object.__setattr__.
@dataclass(slots=True)
class Play:
    """A listen candidate read from a file.

    ``timestamp`` is the start of the play in UTC Unix seconds. ``spotify_track_uri`` is
    ``spotify:track:<id>``. An empty string is an unknown value.
    """

    timestamp: int
    artist: str
    title: str
    origin: Origin
    album: str = ""
    spotify_track_uri: str = ""
    artist_mbid: str = ""
    album_mbid: str = ""
    track_mbid: str = ""


@dataclass(frozen=True, slots=True)
class Skipped:
    """An entry read whole that is, by its own fields, not a listen."""

    reason: SkipReason
    where: str
    """As ``Unreadable.where``: the entry's place in its file."""


@dataclass(frozen=True, slots=True)
class Unreadable:
    """An entry that cannot be read as a play: the rest of the file is still read.

    ``where`` is ``"line N"`` for line formats (1-based, as an editor counts) and ``"entry
    N"`` for JSON arrays (1-based), prefixed with the member's name inside a zip.
    """

    where: str
    reason: str


Entry = Play | Skipped | Unreadable


def excerpt(value: object, limit: int = 60) -> str:
    """``value`` as a reason quotes it: its repr (control characters escaped, so a reason
    stays one line), cut to ``limit`` characters (a log line is no place for a whole
    field)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def checked(play: Play, where: str) -> Entry:
    """``play``, or why it cannot be stored: a blank artist or title, a start before 1970."""
    if not play.artist.strip():
        return Unreadable(where, f"no artist (title {excerpt(play.title)})")
    if not play.title.strip():
        return Unreadable(where, f"no title (artist {excerpt(play.artist)})")
    if play.timestamp <= 0:
        return Unreadable(where, f"a start at {play.timestamp}, before 1970")
    return play
