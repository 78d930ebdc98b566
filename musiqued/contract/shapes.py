"""The shapes of answers on the wire (DESIGN.md), made from the services' plain values.

Both front ends use these, so a listen reads the same over the socket, over HTTP and in the
events either sends.
"""

from __future__ import annotations

from typing import Any

from musiqued.models import Listen, iso_utc
from musiqued.services.events import Event


def listen_shape(listen: Listen) -> dict[str, Any]:
    """A listen as ``history.*``, the exports and ``scrobble`` events show it."""
    return {
        "timestamp": listen.timestamp,
        "date": iso_utc(listen.timestamp),
        "artist": listen.artist,
        "title": listen.title,
        "album": listen.album or None,
        "artist_mbid": listen.artist_mbid or None,
        "album_mbid": listen.album_mbid or None,
        "track_mbid": listen.track_mbid or None,
        "source": listen.source,
        "origin": listen.origin,
        "loved": listen.loved,
    }


def library_shape(value: Any) -> Any:
    """A library answer for the wire: every ``Listen`` in it as ``listen_shape``."""
    if isinstance(value, Listen):
        return listen_shape(value)
    if isinstance(value, dict):
        return {key: library_shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [library_shape(item) for item in value]
    return value


def event_params(event: Event) -> dict[str, Any]:
    """An event as the ``event`` notification carries it: a ``scrobble`` event holds a
    ``Listen``'s fields, sent as the listen."""
    data = listen_shape(Listen(**event.data)) if event.topic == "scrobble" else event.data
    return {"topic": event.topic, "at": event.at, "data": data}
