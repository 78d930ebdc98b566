"""Exports other services read: ListenBrainz's listen JSON lines and Maloja's export JSON.

Both are written a listen at a time: ``head()``, then ``rows(listens)`` for each batch, then
``tail(count)``, each returning the text to write next (the shape of the export service's
formats), so memory stays flat whatever the history's size.

A listen is the mapping ``musiqued.storage.listens.listen_shape`` makes (``timestamp``,
``artist``, ``title``, ``album``, ``artist_mbid``, ``album_mbid``, ``track_mbid``,
``source``; None where unknown), with ``origin``, ``duration_ms`` and ``spotify_id`` (a
``spotify:track:`` URI, an open.spotify.com URL or a bare id) when known. A listen without
an ``origin`` came from Last.fm. What this package's readers read back from either export
has the same identities (start, artist and title) as what was written.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal, Protocol

import orjson

from musiqued.interchange.listenbrainz import SPOTIFY_TRACK_URI

ExportFormat = Literal["listenbrainz", "maloja"]
SUBMISSION_CLIENT = "musiqued"
MUSIC_SERVICES = {"lastfm": "last.fm", "lastfm-csv": "last.fm", "spotify": "spotify.com"}
"""ListenBrainz's ``music_service`` (the domain of the service the music came through) for
the origins that have one; a player's log or another tracker's export names none."""
SPOTIFY_TRACK_URL = "https://open.spotify.com/track/"

Listen = Mapping[str, Any]


class ExportForm(Protocol):
    def head(self) -> str: ...
    def rows(self, listens: Iterable[Listen]) -> str: ...
    def tail(self, count: int) -> str: ...


class ListenBrainzLines:
    """One ListenBrainz listen per line: what its import and ``submit-listens`` take."""

    def __init__(self, client_version: str) -> None:
        self._client_version = client_version

    def head(self) -> str:
        return ""

    def rows(self, listens: Iterable[Listen]) -> str:
        return "".join(
            orjson.dumps(self.listen(listen), option=orjson.OPT_APPEND_NEWLINE).decode()
            for listen in listens
        )

    def tail(self, count: int) -> str:
        return ""

    def listen(self, listen: Listen) -> dict[str, Any]:
        info: dict[str, Any] = {
            "submission_client": SUBMISSION_CLIENT,
            "submission_client_version": self._client_version,
        }
        service = MUSIC_SERVICES.get(listen.get("origin") or "lastfm")
        if service:
            info["music_service"] = service
        if listen.get("track_mbid"):
            info["recording_mbid"] = listen["track_mbid"]
        if listen.get("album_mbid"):
            info["release_mbid"] = listen["album_mbid"]
        if listen.get("artist_mbid"):
            info["artist_mbids"] = [listen["artist_mbid"]]
        if listen.get("duration_ms"):
            info["duration_ms"] = listen["duration_ms"]
        spotify_url = _spotify_url(listen.get("spotify_id"))
        if spotify_url:
            info["spotify_id"] = spotify_url
        metadata: dict[str, Any] = {"artist_name": listen["artist"], "track_name": listen["title"]}
        if listen.get("album"):
            metadata["release_name"] = listen["album"]
        metadata["additional_info"] = info
        return {"listened_at": listen["timestamp"], "track_metadata": metadata}


class MalojaExport:
    """Maloja's export: ``{"maloja": {"export_time"}, "scrobbles": [...]}``, one scrobble a
    line. ``origin`` says where musiqued got the listen (``musiqued:lastfm``...)."""

    def __init__(self, export_time: int) -> None:
        self._export_time = export_time
        self._first = True

    def head(self) -> str:
        return f'{{"maloja": {{"export_time": {int(self._export_time)}}}, "scrobbles": ['

    def rows(self, listens: Iterable[Listen]) -> str:
        parts = []
        for listen in listens:
            parts.append("\n" if self._first else ",\n")
            self._first = False
            parts.append(orjson.dumps(self.scrobble(listen)).decode())
        return "".join(parts)

    def tail(self, count: int) -> str:
        return "\n]}\n" if count else "]}\n"

    @staticmethod
    def scrobble(listen: Listen) -> dict[str, Any]:
        artists = [listen["artist"]]
        album = listen.get("album")
        duration_ms = listen.get("duration_ms")
        return {
            "time": listen["timestamp"],
            "track": {
                "artists": artists,
                "title": listen["title"],
                "album": {"artists": artists, "albumtitle": album} if album else None,
                "length": round(duration_ms / 1000) if duration_ms else None,
            },
            "duration": None,
            "origin": f"{SUBMISSION_CLIENT}:{listen.get('origin') or 'lastfm'}",
        }


def form(fmt: ExportFormat, *, client_version: str, export_time: int) -> ExportForm:
    """A new writer of ``fmt`` (one per export: Maloja's remembers its first scrobble)."""
    if fmt == "listenbrainz":
        return ListenBrainzLines(client_version)
    return MalojaExport(export_time)


def _spotify_url(value: object) -> str:
    """A Spotify track as ListenBrainz's ``spotify_id`` wants it: its open.spotify.com URL."""
    if not isinstance(value, str) or not value:
        return ""
    if value.startswith(SPOTIFY_TRACK_URI):
        return SPOTIFY_TRACK_URL + value.removeprefix(SPOTIFY_TRACK_URI)
    if value.startswith(SPOTIFY_TRACK_URL):
        return value
    return SPOTIFY_TRACK_URL + value if value.isascii() and value.isalnum() else ""
