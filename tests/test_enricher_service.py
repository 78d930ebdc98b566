"""Enrichment outcomes, with the ``Enricher`` built in the test's process against a temporary
database and the simulated Last.fm, Spotify and AI endpoint: what each source records on
each queued item (done with what it found, not found, failed after its attempts, skipped
when not configured) and when a source's lane stops.

The worker end to end (an import feeding it, ``musiquectl enrich``, reloads) stays in
``test_enrich.py``."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from musiqued.config import AiConfig, EnrichmentConfig, SpotifyConfig
from musiqued.models import Scrobble
from musiqued.services.enrichment import Enricher, EnrichmentSections
from musiqued.services.events import EventBus
from musiqued.services.image_cache import ImageCache
from musiqued.services.lastfm_session import LastfmConnection
from musiqued.storage.db import Database
from musiqued.upstream.images import ImageFetcher
from tests.fixtures.enrichment import SimulatedAi, SimulatedSpotify
from tests.fixtures.lastfm import SimulatedLastfm
from tests.fixtures.services import eventually, store_scrobbles

FAST = EnrichmentConfig(retry_seconds=0.05, max_attempts=2)
UNKNOWN = Scrobble(timestamp=1_600_000_000, artist="Nobody Known", title="Nothing", album="Nowhere")
"""A listen of an album and artist that no service knows."""

Outcomes = dict[tuple[str, str, str], tuple[str, str | None, str | None, int]]
"""(item kind, name, source) → (state, result, last error, attempts)."""


def outcomes(database: Database) -> Outcomes:
    """Every queue row, read with plain sqlite3; an album is named ``artist / title``."""
    with sqlite3.connect(f"file:{database.path}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            """
            SELECT q.item_kind, COALESCE(aa.name || ' / ' || al.title, ar.name), q.source,
                   q.state, q.result, q.last_error, q.attempts
            FROM enrichment_queue q
            LEFT JOIN albums al ON q.item_kind = 'album' AND al.id = q.item_id
            LEFT JOIN artists aa ON aa.id = al.artist_id
            LEFT JOIN artists ar ON q.item_kind = 'artist' AND ar.id = q.item_id
            """
        ).fetchall()
    conn.close()
    return {(r[0], r[1], r[2]): (r[3], r[4], r[5], int(r[6])) for r in rows}


def of_source(rows: Outcomes, source: str) -> list[tuple[str, str | None, str | None, int]]:
    return [row for (_, _, row_source), row in rows.items() if row_source == source]


def states(rows: Outcomes, source: str) -> set[str]:
    return {row[0] for row in of_source(rows, source)}


def sections(
    spotify: SimulatedSpotify | None = None,
    ai: SimulatedAi | None = None,
    enrichment: EnrichmentConfig = FAST,
    **spotify_values: Any,
) -> EnrichmentSections:
    return EnrichmentSections(
        enrichment,
        SpotifyConfig.model_validate(spotify.sections(**spotify_values)["spotify"])
        if spotify
        else SpotifyConfig(),
        AiConfig.model_validate(ai.sections()["ai"]) if ai else AiConfig(),
    )


def image_cache(database: Database, chosen: EnrichmentSections) -> ImageCache:
    """Where the enricher downloads images, as the daemon builds it (never opened here:
    what the sources find is refused by the allowlist or kept in its directory)."""
    return ImageCache(
        database.path.parent / "images",
        ImageFetcher(chosen.enrichment.image_url_prefixes),
        chosen.enrichment.image_cache_bytes,
    )


@asynccontextmanager
async def enriching(
    database: Database, bus: EventBus, lastfm: LastfmConnection, chosen: EnrichmentSections
) -> AsyncIterator[Enricher]:
    enricher = Enricher(database, lastfm, bus, chosen, image_cache(database, chosen))
    await enricher.open()
    try:
        yield enricher
    finally:
        await enricher.close()


async def settled(enricher: Enricher) -> dict[str, Any]:
    """``status()`` once nothing is pending or running (no event says so: polled)."""

    async def quiet() -> dict[str, Any] | None:
        status = await enricher.status()
        return status if status["pending"] == status["running"] == 0 else None

    return await eventually(quiet, within=30)


async def test_each_source_records_what_it_found(
    lastfm_sim: SimulatedLastfm,
    spotify_sim: SimulatedSpotify,
    ai_sim: SimulatedAi,
    database: Database,
    lastfm_connection: LastfmConnection,
) -> None:
    """Every album is looked up on Last.fm and Spotify and described by the AI endpoint,
    every artist looked up on Spotify; each row says what was found, and an album or
    artist no service knows is 'done' with "not found", never retried as a failure."""
    lastfm_sim.reset(size=30, seed=3)
    spotify_sim.sim.set_missing([(UNKNOWN.artist, UNKNOWN.album)], [UNKNOWN.artist])
    known = lastfm_sim.scrobbles()
    await store_scrobbles(database, [*known, UNKNOWN])
    bus = EventBus()
    events = bus.subscribe(["enrichment"])
    async with enriching(database, bus, lastfm_connection, sections(spotify_sim, ai_sim)) as e:
        status = await settled(e)
    rows = outcomes(database)
    albums = {f"{s.artist} / {s.album}" for s in known if s.album}
    artists = {s.artist for s in known}
    nowhere = f"{UNKNOWN.artist} / {UNKNOWN.album}"
    assert status["failed"] == status["skipped"] == 0
    assert status["done"] == len(rows) == 3 * (len(albums) + 1) + len(artists) + 1
    for album in albums:
        state, result, _, _ = rows["album", album, "lastfm"]
        assert (state, "url" in (result or "")) == ("done", True), album
        assert rows["album", album, "spotify"][:2] == ("done", "image")
        assert rows["album", album, "ai"][:2] == ("done", "description")
    for artist in artists:
        assert rows["artist", artist, "spotify"][:2] == ("done", "image")
    assert rows["album", nowhere, "lastfm"][:2] == ("done", "not found")
    assert rows["album", nowhere, "spotify"][:2] == ("done", "not found")
    assert rows["artist", UNKNOWN.artist, "spotify"][:2] == ("done", "not found")
    # The description needs no lookup: the album's listens are facts enough.
    assert rows["album", nowhere, "ai"][:2] == ("done", "description")
    announced = 0
    while not events.queue.empty():
        event = events.queue.get_nowait()
        assert event.data["state"] == "done"
        announced += 1
    assert announced == len(rows)


async def test_unconfigured_sources_skip_until_configured(
    lastfm_sim: SimulatedLastfm,
    spotify_sim: SimulatedSpotify,
    database: Database,
    bus: EventBus,
    lastfm_connection: LastfmConnection,
) -> None:
    """Without Spotify and the AI endpoint their rows are 'skipped' ("not configured") while
    Last.fm's are done; once Spotify is configured, its skipped rows are done too."""
    lastfm_sim.reset(size=20, seed=4)
    await store_scrobbles(database, lastfm_sim.scrobbles())
    async with enriching(database, bus, lastfm_connection, sections()) as enricher:
        status = await settled(enricher)
        by = status["by_source"]
        assert (by["lastfm"]["configured"], by["spotify"]["configured"]) == (True, False)
        rows = outcomes(database)
        skipped = of_source(rows, "spotify") + of_source(rows, "ai")
        assert skipped
        assert {row[:3] for row in skipped} == {("skipped", None, "not configured")}
        assert by["lastfm"]["done"] > 0
        assert by["lastfm"]["skipped"] == 0

        await enricher.reconfigure(sections(spotify_sim))
        status = await settled(enricher)
    rows = outcomes(database)
    assert states(rows, "spotify") == {"done"}
    assert states(rows, "ai") == {"skipped"}
    assert status["by_source"]["spotify"]["done"] > 0


async def test_transient_failures_are_retried_then_failed_with_the_error(
    lastfm_sim: SimulatedLastfm,
    spotify_sim: SimulatedSpotify,
    database: Database,
    bus: EventBus,
    lastfm_connection: LastfmConnection,
) -> None:
    """A Spotify that keeps answering 5xx: each row is tried ``max_attempts`` times, then
    'failed' with the error; Last.fm's rows are done all the same."""
    lastfm_sim.reset(size=10, seed=5)
    spotify_sim.sim.faults.configure(rate=1.0, kinds=["http500", "http503"])
    await store_scrobbles(database, lastfm_sim.scrobbles())
    async with enriching(database, bus, lastfm_connection, sections(spotify_sim)) as enricher:
        status = await settled(enricher)
    rows = outcomes(database)
    spotify = of_source(rows, "spotify")
    assert spotify
    for state, result, error, attempts in spotify:
        assert (state, result, attempts) == ("failed", None, FAST.max_attempts)
        assert "Spotify" in (error or "")
    assert states(rows, "lastfm") == {"done"}
    assert status["by_source"]["spotify"]["failed"] == len(spotify)
    assert status["last_error"].startswith("spotify: ")


async def test_refused_credentials_stop_the_lane_not_the_items(
    lastfm_sim: SimulatedLastfm,
    spotify_sim: SimulatedSpotify,
    database: Database,
    bus: EventBus,
    lastfm_connection: LastfmConnection,
) -> None:
    """Spotify refusing the client secret stops its lane ("blocked", a human must act): the
    item tried stays pending with no attempt counted, every other row is left alone, and
    Last.fm's rows are done."""
    lastfm_sim.reset(size=10, seed=6)
    await store_scrobbles(database, lastfm_sim.scrobbles())
    chosen = sections(spotify_sim, client_secret="not-the-secret")
    async with enriching(database, bus, lastfm_connection, chosen) as enricher:

        async def blocked() -> dict[str, Any] | None:
            status = await enricher.status()
            lanes = status["by_source"]
            done = lanes["lastfm"]["pending"] == lanes["lastfm"]["running"] == 0
            # The lane says blocked while the tried row's reason is still being written.
            spotify = of_source(await asyncio.to_thread(outcomes, database), "spotify")
            told = any(why for _, _, why, _ in spotify)
            return status if lanes["spotify"]["blocked"] and done and told else None

        status = await eventually(blocked)
    rows = outcomes(database)
    spotify = of_source(rows, "spotify")
    assert {(state, attempts) for state, _, _, attempts in spotify} == {("pending", 0)}
    assert sum(1 for row in spotify if row[2]) == 1  # only the row that was tried says why
    assert status["by_source"]["spotify"]["blocked"]
    assert status["by_source"]["spotify"]["failed"] == 0
    assert states(rows, "lastfm") == {"done"}


async def test_close_right_after_a_wake_up_ends_the_lanes(
    lastfm_sim: SimulatedLastfm,
    database: Database,
    bus: EventBus,
    lastfm_connection: LastfmConnection,
) -> None:
    """Stopping the worker just as new work wakes its lanes (an import's last page, then
    SIGTERM) ends them at once: the wake-up never swallows the cancellation, which would
    leave a lane waiting out its idle pause and the daemon's stop hanging."""
    lastfm_sim.reset(size=10, seed=7)
    await store_scrobbles(database, lastfm_sim.scrobbles())
    for _ in range(5):
        enricher = Enricher(
            database, lastfm_connection, bus, sections(), image_cache(database, sections())
        )
        await enricher.open()
        await settled(enricher)  # every lane idle, waiting to be woken
        enricher.wake()
        async with asyncio.timeout(5):
            await enricher.close()


def albums(database: Database) -> list[tuple[str | None, str | None]]:
    """(Spotify image, description) of every stored album."""
    with sqlite3.connect(f"file:{database.path}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT image_spotify, description FROM albums").fetchall()
    conn.close()
    return [(row[0], row[1]) for row in rows]


async def test_services_down_fail_then_retry_failed_completes(
    lastfm_sim: SimulatedLastfm,
    spotify_sim: SimulatedSpotify,
    ai_sim: SimulatedAi,
    database: Database,
    lastfm_connection: LastfmConnection,
) -> None:
    """Spotify down and the AI endpoint failing: their items are retried, then 'failed'
    with the error, while Last.fm's complete; once both are back, ``retry_failed`` queues
    them again and every album gets its image and description."""
    lastfm_sim.reset(size=60, seed=11)
    spotify_sim.sim.faults.down_for(3600)
    ai_sim.sim.faults.configure(rate=1.0, kinds=["http500", "http503", "malformed"])
    await store_scrobbles(database, lastfm_sim.scrobbles())
    chosen = sections(spotify_sim, ai_sim)
    async with enriching(database, EventBus(), lastfm_connection, chosen) as enricher:
        status = await settled(enricher)
        spotify_sim.sim.faults.up()
        ai_sim.sim.faults.up()
        queued = await enricher.run(retry_failed=True)
        after = await settled(enricher)
    by = status["by_source"]
    assert (by["lastfm"]["failed"], by["spotify"]["done"]) == (0, 0)
    assert by["lastfm"]["done"] > 0
    assert by["spotify"]["failed"] > 0
    assert by["ai"]["failed"] == by["lastfm"]["done"]
    assert "Spotify" in (by["spotify"]["last_error"] or "")
    assert status["last_error"]
    assert spotify_sim.sim.faults.stats["down"] >= by["spotify"]["failed"] * FAST.max_attempts
    assert queued["queued"] == by["spotify"]["failed"] + by["ai"]["failed"]
    assert after["failed"] == 0
    assert all(image and description for image, description in albums(database))


async def test_retry_after_pauses_the_lane_for_that_long(
    lastfm_sim: SimulatedLastfm,
    spotify_sim: SimulatedSpotify,
    database: Database,
    bus: EventBus,
    lastfm_connection: LastfmConnection,
) -> None:
    """A 429 with Retry-After: 1 pauses Spotify's lane (status shows until when) and
    Spotify is asked nothing for that second; then the queue completes."""
    lastfm_sim.reset(size=80, seed=5)
    spotify_sim.sim.faults.force("429", count=1, retry_after=1)
    await store_scrobbles(database, lastfm_sim.scrobbles())
    async with enriching(database, bus, lastfm_connection, sections(spotify_sim)) as enricher:

        async def paused() -> float | None:
            until: float = (await enricher.status())["by_source"]["spotify"]["paused_until"]
            return until or None

        until = await eventually(paused)
        status = await settled(enricher)
    log = spotify_sim.sim.request_log()
    limited = next(r for r in log if r["status"] == 429)
    after = [r for r in log if r["at"] > limited["at"]]
    assert until >= limited["at"] + 0.9
    assert after, "Spotify was never asked again"
    assert after[0]["at"] - limited["at"] >= 0.9
    assert status["failed"] == 0
    assert all(image for image, _ in albums(database))
