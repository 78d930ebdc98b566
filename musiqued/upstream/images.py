"""Downloading covers and artist images, from allowed hosts only, over aiohttp.

An image URL comes from Last.fm or Spotify answers: untrusted. The fetcher downloads only
from URLs under ``[enrichment] image_url_prefixes`` (same scheme, host and port, a path under
the prefix's), follows redirects itself so that each ``Location`` passes the same check,
reads at most ``MAX_IMAGE_BYTES``, and keeps only bodies whose first bytes are those of a
JPEG, PNG, WebP or GIF file (the ``Content-Type`` header is not believed).

Refusals (a URL outside the prefixes, too big, not an image) are ``FatalUpstreamError`` with
``kind="image_refused"``: the same URL would be refused again. Network failures and 5xx are
``TransientUpstreamError``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from musiqued.errors import FatalUpstreamError, TransientUpstreamError
from musiqued.upstream.http_errors import network_failures

if TYPE_CHECKING:
    import aiohttp
    from yarl import URL

MAX_IMAGE_BYTES = 5 * 1024 * 1024
MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024


def image_type(head: bytes) -> str | None:
    """The media type the first bytes of a file show, if it is a JPEG, PNG, WebP or GIF."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    return None


def _parsed(url: str) -> URL | None:
    # aiohttp's URL parser comes with the first image URL, not with the daemon.
    from yarl import URL

    try:
        parsed = URL(url)
    except (TypeError, ValueError):
        return None
    if parsed.scheme not in ("http", "https") or not parsed.host or parsed.user is not None:
        return None
    return parsed


class UrlAllowlist:
    """URL prefixes: scheme, host and port equal, and the path under the prefix's path."""

    def __init__(self, prefixes: Iterable[str]) -> None:
        self._prefixes = [p for p in (_parsed(prefix) for prefix in prefixes) if p is not None]

    def allows(self, url: URL | str) -> bool:
        parsed = _parsed(str(url)) if isinstance(url, str) else url
        if parsed is None:
            return False
        return any(
            parsed.scheme == p.scheme
            and parsed.host == p.host
            and parsed.port == p.port
            and parsed.path.startswith(p.path)
            for p in self._prefixes
        )


def _refused(reason: str) -> FatalUpstreamError:
    return FatalUpstreamError(f"image refused: {reason}", kind="image_refused", service="images")


class ImageFetcher:
    """One aiohttp session for image downloads; ``fetch(url)`` gives the checked bytes."""

    def __init__(self, prefixes: Iterable[str], *, timeout: float = 30.0) -> None:
        self._prefixes = tuple(prefixes)
        self._allowlist: UrlAllowlist | None = None
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def allowlist(self) -> UrlAllowlist:
        """Parsed when the first image is fetched."""
        if self._allowlist is None:
            self._allowlist = UrlAllowlist(self._prefixes)
        return self._allowlist

    def reconfigure(self, prefixes: Iterable[str]) -> None:
        self._prefixes = tuple(prefixes)
        self._allowlist = None

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def fetch(self, url: str) -> bytes:
        parsed = _parsed(url)
        if parsed is None or not self.allowlist.allows(parsed):
            raise _refused("its URL is not under [enrichment] image_url_prefixes")
        # aiohttp comes with the first download: a daemon that has not fetched an image yet
        # does not hold it in memory.
        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._timeout),
                headers={"User-Agent": "musiqued"},
            )
        with network_failures(
            "images",
            timeout=f"the image host did not answer within {self._timeout:g} s",
            unreachable="cannot download the image",
        ):
            return await self._follow(self._session, parsed)

    async def _follow(self, session: aiohttp.ClientSession, url: URL) -> bytes:
        from yarl import URL  # loaded with aiohttp already

        for _ in range(MAX_REDIRECTS + 1):
            async with session.get(url, allow_redirects=False) as response:
                if response.status in REDIRECT_STATUSES:
                    location = response.headers.get("Location", "")
                    target = _parsed(str(url.join(URL(location)))) if location else None
                    if target is None or not self.allowlist.allows(target):
                        raise _refused("redirected outside [enrichment] image_url_prefixes")
                    url = target
                    continue
                if response.status >= 500:
                    raise TransientUpstreamError(
                        f"the image host answered HTTP {response.status}",
                        service="images",
                        status=response.status,
                    )
                if response.status != 200:
                    raise _refused(f"the image host answered HTTP {response.status}")
                return await _read_image(response)
        raise _refused(f"more than {MAX_REDIRECTS} redirects")


async def _read_image(response: aiohttp.ClientResponse) -> bytes:
    too_big = _refused(f"larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB")
    if (response.content_length or 0) > MAX_IMAGE_BYTES:
        raise too_big
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(_CHUNK):
        size += len(chunk)
        if size > MAX_IMAGE_BYTES:
            raise too_big
        chunks.append(chunk)
    body = b"".join(chunks)
    if image_type(body[:16]) is None:
        raise _refused("not a JPEG, PNG, WebP or GIF file")
    return body
