"""The enrichment sources: one class per (source, item kind), one ``fetch(item)`` each.

A source turns a queue row into an ``Outcome``: the row's new state, a word on what was
found, and the statements that store it (written with the row's state, in one
transaction, by the worker). Upstream failures are raised as our errors
(``musiqued.errors``); the worker decides what they mean for the row and the lane.

Spotify and the AI endpoint are optional: their clients (and spotipy) are built only when
the section is configured.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from musiqued.errors import NotConfiguredError
from musiqued.services.enrichment.prompt import build_prompt
from musiqued.services.lastfm_session import LastfmConnection
from musiqued.storage import enrichment as store
from musiqued.storage.db import Database
from musiqued.storage.enrichment import QueueItem
from musiqued.upstream.ratelimit import Priority

if TYPE_CHECKING:
    from musiqued.config import AiConfig
    from musiqued.upstream.ai import AiClient
    from musiqued.upstream.spotify import SpotifyClient


@dataclass(frozen=True, slots=True)
class Outcome:
    """A source's answer: the row's state, what was found, the statements that store it."""

    state: str
    result: str
    updates: list[tuple[str, tuple[object, ...]]] = field(default_factory=list)
    image_url: str | None = None
    """An image found: the worker keeps a copy (``services/image_cache.py``)."""


NOT_FOUND = Outcome("done", "not found")


class Source(Protocol):
    async def fetch(self, item: QueueItem) -> Outcome: ...


class LastfmAlbums:
    """``album.getInfo``: the album's page, image, wiki summary and release year."""

    def __init__(self, lastfm: LastfmConnection) -> None:
        self._lastfm = lastfm

    async def fetch(self, item: QueueItem) -> Outcome:
        client = self._lastfm.require()
        info = await client.album_info(item.artist, item.title, priority=Priority.ENRICH)
        if info is None:
            return NOT_FOUND
        found = [
            name
            for name, value in (
                ("image", info.image_url),
                ("url", info.url),
                ("wiki", info.wiki_summary),
            )
            if value
        ]
        update = store.lastfm_album_update(
            item.item_id, info.url, info.image_url, info.wiki_summary, info.release_year
        )
        return Outcome("done", ", ".join(found) or "nothing", [update], info.image_url)


class SpotifyAlbums:
    def __init__(self, client: SpotifyClient | None) -> None:
        self._client = client

    async def fetch(self, item: QueueItem) -> Outcome:
        if self._client is None:
            raise NotConfiguredError("Spotify is not configured")
        album = await self._client.album(item.artist, item.title)
        if album is None:
            return NOT_FOUND
        update = store.spotify_album_update(
            item.item_id, album.spotify_id, album.image_url, album.release_year
        )
        return Outcome("done", "image" if album.image_url else "id", [update], album.image_url)


class SpotifyArtists:
    def __init__(self, client: SpotifyClient | None) -> None:
        self._client = client

    async def fetch(self, item: QueueItem) -> Outcome:
        if self._client is None:
            raise NotConfiguredError("Spotify is not configured")
        artist = await self._client.artist(item.artist)
        if artist is None:
            return NOT_FOUND
        update = store.spotify_artist_update(item.item_id, artist.spotify_id, artist.image_url)
        return Outcome("done", "image" if artist.image_url else "id", [update], artist.image_url)


class AiDescriptions:
    """A chat completion per album, paced at ``[ai] requests_per_second``."""

    def __init__(self, client: AiClient | None, db: Database, config: AiConfig) -> None:
        self._client = client
        self._db = db
        self._config = config
        self._next_request_at = 0.0  # monotonic

    async def fetch(self, item: QueueItem) -> Outcome:
        if self._client is None:
            raise NotConfiguredError("the AI endpoint is not configured")
        facts = await store.album_facts(self._db, item.item_id)
        if facts is None:
            return Outcome("skipped", "album gone")
        wait = self._next_request_at - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        self._next_request_at = time.monotonic() + 1.0 / self._config.requests_per_second
        completion = await self._client.complete(build_prompt(facts, self._config.language))
        update = store.description_update(item.item_id, completion.text, completion.model)
        found = "description (cut to the maximum length)" if completion.truncated else "description"
        return Outcome("done", found, [update])


class NothingToDo:
    async def fetch(self, item: QueueItem) -> Outcome:
        return Outcome("skipped", "nothing to do for this kind of item")
