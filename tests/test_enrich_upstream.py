"""The Spotify and AI adapters against their simulators: best match, errors made ours."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from musiqued.config import AiConfig, SpotifyConfig
from musiqued.errors import FatalUpstreamError, RateLimitedError, TransientUpstreamError
from musiqued.services.enrichment.prompt import build_prompt
from musiqued.sim.spotify import SpotifySim
from musiqued.storage.enrichment import AlbumFacts
from musiqued.upstream.ai import AiClient
from musiqued.upstream.spotify import SpotifyClient, best_album, normalise
from tests.fixtures.enrichment import SimulatedAi, SimulatedSpotify


def _spotify(sim: SimulatedSpotify, **changes: str) -> SpotifyClient:
    config = SpotifyConfig.model_validate(sim.sections(**changes)["spotify"])
    return SpotifyClient(config, timeout=5)


async def test_best_match_is_not_the_first_hit(spotify_sim: SimulatedSpotify) -> None:
    """The album and artist chosen are the ones whose names match, wherever they are listed;
    a differently cased or remastered title still matches; a missing album gives None."""
    client = _spotify(spotify_sim)
    try:
        for artist, title in [
            ("Björk", "Homogenic"),
            ("The Cure", "Disintegration"),
            ("AC/DC", "Back in Black"),
            ("Sigur Rós", "( )"),
        ]:
            raw = await client._search(f'album:"{title}" artist:"{artist}"', "album")
            assert raw[0]["id"] != SpotifySim.album_id(artist, title)  # a decoy comes first
            album = await client.album(artist, title)
            assert album is not None
            assert album.spotify_id == SpotifySim.album_id(artist, title)
            assert album.image_url == SpotifySim.album_image(artist, title, spotify_sim.base_url)
            found = await client.artist(artist)
            assert found is not None
            assert found.image_url == SpotifySim.artist_image(artist, spotify_sim.base_url)
        spotify_sim.sim.set_missing(albums=[("Nobody", "Nothing")], artists=["Nobody"])
        assert await client.album("Nobody", "Nothing") is None
        assert await client.artist("Nobody") is None
    finally:
        await client.close()


def test_normalised_names() -> None:
    """Case, accents, punctuation, "&", a leading "the" and edition notes do not matter."""
    assert normalise("The Beatles") == normalise("beatles")
    assert normalise("Simon & Garfunkel") == normalise("Simon and Garfunkel")
    assert normalise("Sigur Rós") == normalise("SIGUR ROS")
    assert normalise("Abbey Road (Remastered 2019)", edition=True) == normalise("Abbey Road")
    assert normalise("Live at Leeds (Live)", edition=True) != normalise("Live at Leeds")
    items = [
        {"id": "x", "name": "Abbey Road", "album_type": "album", "artists": [{"name": "Tribute"}]},
        {
            "id": "y",
            "name": "Abbey Road (Live)",
            "album_type": "album",
            "artists": [{"name": "The Beatles"}],
        },
        {
            "id": "z",
            "name": "Abbey Road - Remastered",
            "album_type": "album",
            "artists": [{"name": "Beatles"}],
            "images": [
                {"url": "https://i.scdn.co/s", "width": 64, "height": 64},
                {"url": "https://i.scdn.co/l", "width": 640, "height": 640},
            ],
        },
    ]
    best = best_album(items, "The Beatles", "Abbey Road")
    assert best is not None
    assert (best.spotify_id, best.image_url) == ("z", "https://i.scdn.co/l")


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("429", RateLimitedError),
        ("http500", TransientUpstreamError),
        ("http502", TransientUpstreamError),
        ("malformed", TransientUpstreamError),
        ("reset", TransientUpstreamError),
    ],
)
async def test_spotify_faults_become_our_errors(
    spotify_sim: SimulatedSpotify, kind: str, error: type[Exception]
) -> None:
    """Each simulated fault reaches the worker as the matching error, without spotipy
    retrying or sleeping on its own; a 429 carries its Retry-After."""
    client = _spotify(spotify_sim)
    try:
        await client.artist("Warm up")  # the token is fetched before the fault
        spotify_sim.sim.faults.force(kind, retry_after=7200)
        with pytest.raises(error) as caught:
            await client.artist("Anyone")
        if kind == "429":
            assert isinstance(caught.value, RateLimitedError)
            assert caught.value.retry_after == 7200
    finally:
        await client.close()


async def test_spotify_bad_credentials_need_a_human(spotify_sim: SimulatedSpotify) -> None:
    """A wrong client secret is a fatal 'credentials' error that never quotes the secret."""
    client = _spotify(spotify_sim, client_secret="wrong-secret-123")
    try:
        with pytest.raises(FatalUpstreamError) as caught:
            await client.artist("Anyone")
        assert caught.value.kind == "credentials"
        assert "wrong-secret-123" not in str(caught.value)
    finally:
        await client.close()


async def test_ai_completion_and_errors(ai_sim: SimulatedAi) -> None:
    """The chat completion's text and model come back; a bad key is fatal, a 429 carries
    Retry-After, 5xx and malformed bodies are transient."""
    config = AiConfig.model_validate(ai_sim.sections()["ai"])
    client = AiClient(config, timeout=5)
    await client.open()
    try:
        facts = AlbumFacts("Nick Drake", "Pink Moon", 1972, "A quiet record.", [("Road", 3)], 3)
        done = await client.complete(build_prompt(facts, "fr"))
        assert "Pink Moon" in done.text
        assert done.model == "sim-llm"
        assert "French" in ai_sim.sim.prompt_log()[-1][0]["content"]
        for kind, error in [
            ("429", RateLimitedError),
            ("http503", TransientUpstreamError),
            ("malformed", TransientUpstreamError),
        ]:
            ai_sim.sim.faults.force(kind, retry_after=5)
            with pytest.raises(error):
                await client.complete(build_prompt(facts, "en"))
    finally:
        await client.close()
    bad = AiClient(config.model_copy(update={"api_key": SecretStr("nope")}), timeout=5)
    await bad.open()
    try:
        with pytest.raises(FatalUpstreamError) as caught:
            await bad.complete(build_prompt(facts, "en"))
        assert caught.value.status == 401
    finally:
        await bad.close()
