"""Covers and artist images: fetched only from allowed hosts, checked, kept in a cache
bounded by size, and served by the daemon under ``/images/<name>``.

The fetcher and the cache run in the test's process against an image host on a real local
socket (an aiohttp server standing in for the CDNs: redirects, huge bodies, HTML); the
serving goes through the real daemon, enriched from the Last.fm and Spotify simulators,
which serve real PNG bytes at their own URLs.
"""

from __future__ import annotations

import http.client
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from musiqued.config import EnrichmentConfig
from musiqued.errors import FatalUpstreamError
from musiqued.services.image_cache import ImageCache, image_name, local_image_url
from musiqued.sim.images import cover_png
from musiqued.upstream.images import MAX_IMAGE_BYTES, ImageFetcher, UrlAllowlist, image_type
from tests.fixtures.enrichment import SimulatedSpotify
from tests.fixtures.lastfm import SimulatedLastfm
from tests.fixtures.threaded import ServeInThread
from tests.support import HTTP_TOKEN, bearer, free_port

PNG_HEAD = b"\x89PNG\r\n\x1a\n"
JPEG = b"\xff\xd8\xff\xe0" + bytes(200)
WEBP = b"RIFF\x10\x00\x00\x00WEBPVP8 " + bytes(100)
GIF = b"GIF89a" + bytes(100)


@dataclass
class ImageHost:
    """An image host on a local port; ``hits`` counts the requests per path."""

    server: TestServer
    hits: dict[str, int] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))

    @property
    def prefix(self) -> str:
        return self.url("/img/")


def host_app(hits: dict[str, int], elsewhere: str) -> web.Application:
    async def handle(request: web.Request) -> web.StreamResponse:
        path = request.path
        hits[path] = hits.get(path, 0) + 1
        name = path.removeprefix("/img/")
        bodies = {"a.jpg": JPEG, "a.webp": WEBP, "a.gif": GIF, "page.html": b"<html>no</html>"}
        if name in bodies:
            return web.Response(body=bodies[name], content_type="image/jpeg")
        if name.startswith("cover-"):  # cover-<n>: a PNG of about 1 kB
            return web.Response(body=PNG_HEAD + name.encode() * (1000 // len(name)))
        if name == "moved":
            raise web.HTTPFound("/img/a.jpg")
        if name == "away":
            raise web.HTTPFound(elsewhere)
        if name == "outside":
            raise web.HTTPFound("/private/secret.png")
        if name in ("huge", "huge-chunked"):
            response = web.StreamResponse(headers={"Content-Type": "image/png"})
            if name == "huge":
                response.content_length = MAX_IMAGE_BYTES + 1
            else:
                response.enable_chunked_encoding()
            await response.prepare(request)
            await response.write(PNG_HEAD)
            block = bytes(256 * 1024)
            for _ in range(MAX_IMAGE_BYTES // len(block) + 1):
                await response.write(block)
            await response.write_eof()
            return response
        raise web.HTTPNotFound

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    return app


@pytest.fixture
async def image_host() -> AsyncIterator[ImageHost]:
    hits: dict[str, int] = {}
    other = TestServer(host_app({}, "/"), host="127.0.0.1")
    await other.start_server()
    server = TestServer(host_app(hits, str(other.make_url("/img/a.jpg"))), host="127.0.0.1")
    await server.start_server()
    try:
        yield ImageHost(server, hits)
    finally:
        await server.close()
        await other.close()


@pytest.fixture
async def fetcher(image_host: ImageHost) -> AsyncIterator[ImageFetcher]:
    fetcher = ImageFetcher([image_host.prefix])
    try:
        yield fetcher
    finally:
        await fetcher.close()


async def refused(fetcher: ImageFetcher, url: str) -> str:
    with pytest.raises(FatalUpstreamError) as caught:
        await fetcher.fetch(url)
    assert caught.value.kind == "image_refused"
    return caught.value.message


async def test_jpeg_png_webp_gif_are_kept_by_their_first_bytes(
    fetcher: ImageFetcher, image_host: ImageHost
) -> None:
    """Each of the four formats is accepted whatever its Content-Type says, with the type
    its bytes show; an HTML page sent as image/jpeg is refused."""
    for name, kind in (
        ("a.jpg", "image/jpeg"),
        ("a.webp", "image/webp"),
        ("a.gif", "image/gif"),
        ("cover-1", "image/png"),
    ):
        assert image_type(await fetcher.fetch(image_host.url(f"/img/{name}"))) == kind
    message = await refused(fetcher, image_host.url("/img/page.html"))
    assert "not a JPEG, PNG, WebP or GIF" in message


async def test_only_urls_under_the_prefixes_are_fetched(
    fetcher: ImageFetcher, image_host: ImageHost
) -> None:
    """A URL on another path, port or scheme, or with a user name, is refused without a
    request being made."""
    port = image_host.server.port
    for url in (
        image_host.url("/private/a.jpg"),
        f"http://127.0.0.1:{free_port()}/img/a.jpg",
        f"https://127.0.0.1:{port}/img/a.jpg",
        f"http://127.0.0.1@127.0.0.1:{port}/img/a.jpg",
        "javascript:alert(1)",
        "",
    ):
        message = await refused(fetcher, url)
        assert "image_url_prefixes" in message
    assert image_host.hits == {}
    allow = UrlAllowlist(["https://i.scdn.co/"])
    assert allow.allows("https://i.scdn.co/image/ab67")
    assert not allow.allows("https://i.scdn.co.evil.example/image/ab67")
    assert not allow.allows("http://i.scdn.co/image/ab67")


async def test_redirects_are_followed_only_inside_the_prefixes(
    fetcher: ImageFetcher, image_host: ImageHost
) -> None:
    """A redirect within the prefix is followed; one to another host, or to a path outside
    the prefix on the same host, is refused and not followed."""
    assert await fetcher.fetch(image_host.url("/img/moved")) == JPEG
    for name in ("away", "outside"):
        message = await refused(fetcher, image_host.url(f"/img/{name}"))
        assert "redirected outside" in message
    assert "/private/secret.png" not in image_host.hits


async def test_a_body_over_5_mb_is_refused(fetcher: ImageFetcher, image_host: ImageHost) -> None:
    """An image announced larger than 5 MB, or sent chunked past 5 MB, is refused."""
    for name in ("huge", "huge-chunked"):
        message = await refused(fetcher, image_host.url(f"/img/{name}"))
        assert "larger than 5 MB" in message


async def test_the_cache_is_bounded_and_evicts_the_least_recently_used(
    tmp_path: Path, image_host: ImageHost
) -> None:
    """With room for three covers, a fourth evicts the one used longest ago (a use is a
    lookup); the files on disk are the index; a new cache on the same directory finds
    them; a refused image leaves nothing."""
    urls = [image_host.url(f"/img/cover-{n}") for n in range(5)]
    directory = tmp_path / "images"
    cache = ImageCache(directory, ImageFetcher([image_host.prefix]), max_bytes=3 * 1100)
    await cache.open()
    try:
        for url in urls[:3]:
            assert await cache.fetch(url) is not None
        assert await cache.fetch(urls[0]) == directory / image_name(urls[0])
        assert image_host.hits["/img/cover-0"] == 1  # the second fetch came from the cache
        # 1 is now used more recently than 0 and 2
        assert cache.path_of(image_name(urls[1])) is not None
        assert cache.path_of(image_name(urls[2])) is not None
        await cache.fetch(urls[3])
        assert cache.path_of(image_name(urls[0])) is None
        assert {p.name for p in directory.iterdir()} == {image_name(u) for u in urls[1:4]}
        assert sum(p.stat().st_size for p in directory.iterdir()) <= 3 * 1100
        assert await cache.fetch(image_host.url("/img/page.html")) is None
        assert len(list(directory.iterdir())) == 3
    finally:
        await cache.close()

    reopened = ImageCache(directory, ImageFetcher([image_host.prefix]), max_bytes=2 * 1100)
    await reopened.open()
    try:
        assert len(list(directory.iterdir())) == 2  # rebuilt from the directory, then cut
    finally:
        await reopened.close()


def test_prefixes_must_be_http_urls() -> None:
    """``image_url_prefixes`` accepts http(s) URL prefixes only, with a clear reason."""
    assert EnrichmentConfig().image_url_prefixes == (
        "https://lastfm.freetls.fastly.net/",
        "https://i.scdn.co/",
    )
    with pytest.raises(ValueError, match="is not an http"):
        EnrichmentConfig(image_url_prefixes=("file:///etc/",))


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        conn.request("GET", parts.path, headers=bearer() | (headers or {}))
        response = conn.getresponse()
        return response.status, response.read(), dict(response.headers)
    finally:
        conn.close()


def test_the_daemon_serves_the_images_enrichment_found(
    serve_in_thread: ServeInThread,
    workdir: Path,
    lastfm_sim: SimulatedLastfm,
    spotify_sim: SimulatedSpotify,
) -> None:
    """After enrichment, each album's Last.fm and Spotify images, and its artist's, are files beside the
    database and the daemon serves them with long-lived caching headers (a revalidation
    is a 304); an image it does not have is a placeholder that is not cached."""
    lastfm_sim.reset(size=60, seed=11)
    port = free_port()
    prefixes = [f"{lastfm_sim.base_url}/i/u/", f"{spotify_sim.base_url}/image/"]
    daemon = serve_in_thread(
        **lastfm_sim.sections(),
        **spotify_sim.sections(),
        enrichment={"retry_seconds": 0.1, "image_url_prefixes": prefixes},
        http={"listen": f"127.0.0.1:{port}", "token": HTTP_TOKEN},
    )
    job = daemon.call("import.start", {"all": True})
    daemon.wait_until(lambda: daemon.call("jobs.get", {"job_id": job["job_id"]})["state"] == "done")

    def settled() -> bool:
        status = daemon.call("enrich.status")
        return bool(status["done"] and status["pending"] == status["running"] == 0)

    daemon.wait_until(settled, timeout=60)
    albums = daemon.call("albums.list", {"limit": 5})
    urls = [
        album[key]
        for album in albums
        for key in ("image_lastfm", "image_spotify", "artist_image_spotify")
        if album[key]
    ]
    assert {url.startswith(prefixes[0]) for url in urls} == {True, False}
    for url in urls:
        assert url.startswith(tuple(prefixes))
        assert (workdir / "images" / image_name(url)).is_file()
        status, body, headers = get(f"http://127.0.0.1:{port}{local_image_url(url)}")
        assert status == 200
        assert body == cover_png(url.rsplit("/", 1)[1])
        assert headers["Content-Type"] == "image/png"
        assert "immutable" in headers["Cache-Control"]
        assert "max-age=31536000" in headers["Cache-Control"]
        again = get(
            f"http://127.0.0.1:{port}{local_image_url(url)}",
            {"If-None-Match": headers["ETag"]},
        )
        assert again[0] == 304

    missing = local_image_url("https://i.scdn.co/image/never-fetched")
    status, body, headers = get(f"http://127.0.0.1:{port}{missing}")
    assert status == 200
    assert headers["Content-Type"] == "image/svg+xml"
    assert b"<svg" in body
    assert headers["Cache-Control"] == "no-cache"
    assert get(f"http://127.0.0.1:{port}/images/..%2Fmusique.db")[1].startswith(b"<svg")
