"""Stored listens as ListenBrainz listens, and listens into payloads: pure functions.

``to_listenbrainz(stored)`` turns a stored listen (``timestamp, artist, title, album,
artist_mbid, album_mbid, track_mbid``, and if known ``duration_ms, spotify_id, origin``)
into the JSON of one ListenBrainz listen, encoded once (``SendableListen.body``), or says why
it cannot be sent (``Unsendable``). ``payloads`` groups encoded listens into submissions
ListenBrainz takes; ``document`` writes one.

Size: ListenBrainz refuses a body larger than 10,240 bytes per listen it holds, envelope
included, so one listen sent alone (``single``, ``playing_now``) may take 10,240 bytes less
the envelope (``MAX_LISTEN_BYTES``). A listen over that loses what matters least first: its
album name is cut (marked with "…"), then the album and the optional details go; if the
artist and track names alone are too long, it is refused with the reason. Several listens
together always fit: each is under 10,240 bytes with its comma.

What ListenBrainz would refuse is not sent: blank names (it strips them), a time before
1033430400, MBIDs that are not UUIDs (left out: they are optional), NUL characters (left
out: PostgreSQL cannot store them).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

from musiqued import __version__

MAX_LISTEN_SIZE = 10240
"""ListenBrainz: bytes per listen, checked on the whole body."""
MAX_LISTENS_PER_REQUEST = 1000
MAX_LISTEN_PAYLOAD_SIZE = MAX_LISTEN_SIZE * MAX_LISTENS_PER_REQUEST
LISTEN_MINIMUM_TS = 1033430400
"""ListenBrainz refuses a listen dated before 2002-10-01 00:00:00 UTC."""
MAX_DURATION_MS = 24 * 24 * 3600 * 1000
LISTEN_TYPES = ("single", "playing_now", "import")
SUBMISSION_CLIENT = "musiqued"
CUT_MARK = "…"
MUSIC_SERVICES = {"lastfm": "last.fm", "lastfm-csv": "last.fm", "spotify": "spotify.com"}
"""The ``music_service`` ListenBrainz shows for a listen's origin (a domain), where known."""


def envelope(listen_type: str) -> tuple[bytes, bytes]:
    """What a submission's listens go between."""
    return b'{"listen_type":"' + listen_type.encode() + b'","payload":[', b"]}"


_LONGEST_ENVELOPE = max(sum(len(part) for part in envelope(t)) for t in LISTEN_TYPES)
MAX_LISTEN_BYTES = MAX_LISTEN_SIZE - _LONGEST_ENVELOPE
"""The largest listen sent: alone in a submission, it still fits ListenBrainz's check."""

_SPOTIFY_ID = re.compile(r"^(?:spotify:track:)?([0-9A-Za-z]{22})$")
_SPOTIFY_URL = re.compile(r"^https://open\.spotify\.com/track/[0-9A-Za-z]{22}$")


@dataclass(frozen=True, slots=True)
class SendableListen:
    body: bytes
    """The listen's JSON, as it goes into a payload."""
    cut: str = ""
    """What was cut or left out to fit ListenBrainz's size limit, in words; "" if nothing."""


@dataclass(frozen=True, slots=True)
class Unsendable:
    reason: str


def _text(value: Any) -> str:
    return value.replace("\x00", "") if isinstance(value, str) else ""


def _mbid(value: Any) -> str | None:
    text = _text(value).strip()
    try:
        return str(uuid.UUID(text)) if text else None
    except ValueError:
        return None


def _spotify_url(value: Any) -> str | None:
    text = _text(value).strip()
    if _SPOTIFY_URL.match(text):
        return text
    found = _SPOTIFY_ID.match(text)
    return f"https://open.spotify.com/track/{found.group(1)}" if found else None


def additional_info(stored: Mapping[str, Any]) -> dict[str, Any]:
    """``additional_info``: who submits, and what is known of the listen."""
    info: dict[str, Any] = {
        "submission_client": SUBMISSION_CLIENT,
        "submission_client_version": __version__,
    }
    service = MUSIC_SERVICES.get(_text(stored.get("origin")))
    if service:
        info["music_service"] = service
    duration = stored.get("duration_ms")
    if type(duration) is int and 0 < duration <= MAX_DURATION_MS:
        info["duration_ms"] = duration
    for key, name in (("track_mbid", "recording_mbid"), ("album_mbid", "release_mbid")):
        mbid = _mbid(stored.get(key))
        if mbid:
            info[name] = mbid
    artist_mbid = _mbid(stored.get("artist_mbid"))
    if artist_mbid:
        info["artist_mbids"] = [artist_mbid]
    spotify = _spotify_url(stored.get("spotify_id"))
    if spotify:
        info["spotify_id"] = spotify
    return info


def to_listenbrainz(
    stored: Mapping[str, Any], listen_type: str = "import"
) -> SendableListen | Unsendable:
    """The ListenBrainz listen for ``stored`` (``playing_now``: without ``listened_at``)."""
    artist = _text(stored.get("artist")).strip()
    title = _text(stored.get("title")).strip()
    if not artist:
        return Unsendable("no artist name (ListenBrainz needs one)")
    if not title:
        return Unsendable("no track name (ListenBrainz needs one)")
    metadata: dict[str, Any] = {"artist_name": artist, "track_name": title}
    album = _text(stored.get("album")).strip()
    if album:
        metadata["release_name"] = album
    metadata["additional_info"] = additional_info(stored)
    listen: dict[str, Any] = {"track_metadata": metadata}
    if listen_type != "playing_now":
        timestamp = stored.get("timestamp")
        if not isinstance(timestamp, int) or isinstance(timestamp, bool):
            return Unsendable(f"no time in seconds ({timestamp!r:.40})")
        if timestamp < LISTEN_MINIMUM_TS:
            return Unsendable(
                f"listened at {timestamp}, before 2002-10-01, which ListenBrainz does not take"
            )
        listen = {"listened_at": timestamp, "track_metadata": metadata}
    return _fitted(listen)


def _fitted(listen: dict[str, Any]) -> SendableListen | Unsendable:
    body = orjson.dumps(listen)
    if len(body) <= MAX_LISTEN_BYTES:
        return SendableListen(body)
    metadata = listen["track_metadata"]
    album = metadata.get("release_name", "")
    if album:
        cut = _cut_album(listen, album)
        if cut is not None:
            return SendableListen(cut, f"album name cut to fit {MAX_LISTEN_BYTES} bytes")
    # Not even a cut album fits: it goes, and so do the details, all optional.
    metadata.pop("release_name", None)
    info = metadata["additional_info"]
    metadata["additional_info"] = {
        key: info[key] for key in ("submission_client", "submission_client_version")
    }
    body = orjson.dumps(listen)
    if len(body) <= MAX_LISTEN_BYTES:
        return SendableListen(body, f"album and details left out to fit {MAX_LISTEN_BYTES} bytes")
    return Unsendable(
        f"the artist and track names alone take {len(body)} bytes, more than the "
        f"{MAX_LISTEN_BYTES} a ListenBrainz listen holds"
    )


def _cut_album(listen: dict[str, Any], album: str) -> bytes | None:
    """The listen with the longest album prefix (and the mark) that fits; None if even one
    character does not."""
    metadata = listen["track_metadata"]

    def encoded(keep: int) -> bytes:
        metadata["release_name"] = album[:keep].rstrip() + CUT_MARK
        return orjson.dumps(listen)

    low, high = 0, len(album) - 1  # the longest prefix kept that fits lies in [low, high]
    if len(encoded(1)) > MAX_LISTEN_BYTES:
        return None
    low = 1
    while low < high:
        middle = (low + high + 1) // 2
        if len(encoded(middle)) <= MAX_LISTEN_BYTES:
            low = middle
        else:
            high = middle - 1
    return encoded(low)


def document(listen_type: str, bodies: Sequence[bytes]) -> bytes:
    """The submission of these encoded listens."""
    head, tail = envelope(listen_type)
    return head + b",".join(bodies) + tail


T = TypeVar("T")


def payloads(
    items: Iterable[T],
    body: Callable[[T], bytes],
    *,
    listen_type: str = "import",
    max_listens: int = MAX_LISTENS_PER_REQUEST,
    max_bytes: int = MAX_LISTEN_PAYLOAD_SIZE,
) -> Iterator[list[T]]:
    """``items`` in order, in groups whose submission ListenBrainz takes: at most
    ``max_listens`` listens, at most ``max_bytes`` bytes and 10,240 per listen. An item whose
    listen is over ``MAX_LISTEN_BYTES`` is a ValueError: ``to_listenbrainz`` never makes one."""
    overhead = sum(len(part) for part in envelope(listen_type))
    group: list[T] = []
    size = overhead
    for item in items:
        length = len(body(item))
        if length > MAX_LISTEN_BYTES:
            raise ValueError(f"a listen of {length} bytes is over {MAX_LISTEN_BYTES}")
        grown = size + length + (1 if group else 0)
        limit = min(max_bytes, (len(group) + 1) * MAX_LISTEN_SIZE)
        if group and (len(group) >= max_listens or grown > limit):
            yield group
            group, grown = [], overhead + length
        group.append(item)
        size = grown
    if group:
        yield group
