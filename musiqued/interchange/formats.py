"""Which format a file is in, told from its name and first bytes, and its reader.

``detect`` looks at the content first (the name can be anything a download became) and
uses the name only where the content cannot tell (an empty JSON array).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import struct
from collections.abc import Iterator
from typing import BinaryIO, get_args

import ijson

from musiqued.errors import BadFileError
from musiqued.interchange import lastfm_csv, listenbrainz, maloja, scrobbler_log, spotify
from musiqued.interchange.entries import Entry, Origin
from musiqued.interchange.streams import BOM, ZIP_MAGIC

FORMATS: tuple[Origin, ...] = get_args(Origin)
DETECT_BYTES = 4096
"""How much of a file's start ``detect`` wants: the first entry of every format fits."""

_SPOTIFY_KEYS = {"ts", "ms_played", "endTime", "msPlayed"}
_LISTENBRAINZ_KEYS = {"listened_at", "track_metadata"}
_MALOJA_KEYS = {"maloja", "scrobbles"}
_SPOTIFY_NAME = re.compile(r"^(?:Streaming_History_Audio_|endsong_|StreamingHistory)", re.I)
_LISTENBRAINZ_MEMBER = re.compile(r"^(?:user\.json|feedback\.jsonl|listens/)")


def detect(name: str, head: bytes) -> Origin:
    """The format of the file called ``name`` that starts with ``head`` (``DETECT_BYTES`` of
    it, or all of a shorter file); ``BadFileError`` (kind ``unknown_format``), in one line
    naming the file, when it is none of ``FORMATS``."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    text = head.removeprefix(BOM).lstrip()
    found: Origin | None = None
    if head.startswith(ZIP_MAGIC):
        found = _zip_format(_first_member(head))
    elif text.startswith(b"#AUDIOSCROBBLER/"):
        found = "scrobbler-log"
    elif text.startswith(b"["):
        keys = _first_keys(text, "item")
        empty = text[1:].lstrip().startswith(b"]")
        if keys & _LISTENBRAINZ_KEYS:
            found = "listenbrainz"
        elif keys & _SPOTIFY_KEYS or (empty and _SPOTIFY_NAME.match(base)):
            found = "spotify"
    elif text.startswith(b"{"):
        keys = _first_keys(text, "")
        if keys & _MALOJA_KEYS:
            found = "maloja"
        elif keys & _LISTENBRAINZ_KEYS:
            found = "listenbrainz"
    elif _looks_like_lastfm_csv(text):
        found = "lastfm-csv"
    if found is None:
        raise BadFileError(
            f"{shown(name)}: not a file musiqued can import (a Spotify streaming history, a "
            "ListenBrainz or Maloja export, a Last.fm CSV or a .scrobbler.log)",
            kind="unknown_format",
        )
    return found


def read(
    fmt: Origin, file: BinaryIO, name: str, *, local_zone: dt.tzinfo = dt.UTC
) -> Iterator[Entry]:
    """Each entry of ``file`` (seekable, at its start) read as ``fmt``. ``local_zone`` is
    the zone of a ``.scrobbler.log`` written with ``#TZ/UNKNOWN``.

    Where the file breaks (JSON cut short, a line not in UTF-8, a broken zip), the entries
    before are yielded and ``BadFileError`` then says where.
    """
    if fmt == "spotify":
        return spotify.read(file, name)
    if fmt == "listenbrainz":
        return listenbrainz.read(file, name)
    if fmt == "maloja":
        return maloja.read(file, name)
    if fmt == "lastfm-csv":
        return lastfm_csv.read(file, name)
    return scrobbler_log.read(file, name, local_zone=local_zone)


def shown(name: str) -> str:
    """A file name for a one-line message: control characters made visible."""
    return name if name.isprintable() else repr(name)[1:-1]


def _zip_format(member: str | None) -> Origin | None:
    if member is None:
        return None
    if _LISTENBRAINZ_MEMBER.match(member):
        return "listenbrainz"
    if "spotify" in member.casefold() or spotify.HISTORY_MEMBER.search(member):
        return "spotify"
    return None


def _first_member(head: bytes) -> str | None:
    """The name of a zip's first member, from its local header (30 bytes, then the name)."""
    if len(head) < 30:
        return None
    name_length = struct.unpack_from("<H", head, 26)[0]
    raw = head[30 : 30 + name_length]
    return raw.decode("utf-8", "replace") if len(raw) == name_length else None


def _first_keys(text: bytes, prefix: str) -> set[str]:
    """The keys of the first object at ``prefix`` in the JSON ``text`` starts with (a cut
    end or further JSON texts after the first, as in JSON lines, are no matter)."""
    keys: set[str] = set()
    try:
        for at, event, value in ijson.parse(io.BytesIO(text), multiple_values=True):
            if at == prefix and event == "map_key":
                keys.add(value)
            elif at == prefix and event == "end_map":
                break
    except ijson.JSONError:
        pass
    return keys


def _looks_like_lastfm_csv(text: bytes) -> bool:
    """Among the first lines, each of four fields, one ends in a Last.fm date (the others may
    be a header or rows without a date). Only the start is decoded, leniently: a file in
    another encoding is still recognised, and its reading then says which line is not
    UTF-8."""
    lines = text.decode("utf-8", "replace").splitlines()[:5]
    for row in csv.reader(lines):
        if len(row) != 4:
            return False
        if lastfm_csv.parse_date(row[3]) is not None:
            return True
    return False
