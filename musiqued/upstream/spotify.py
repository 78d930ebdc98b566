"""The Spotify adapter: spotipy (client-credentials flow) in a thread, its errors made ours.

spotipy is synchronous, so every call runs through ``asyncio.to_thread``, one at a time
(a ``requests`` session is not meant for concurrent use). The adapter points spotipy at
``[spotify] api_url`` (``Spotify.prefix``) and ``token_url`` (``OAUTH_TOKEN_URL`` on the
credentials manager) so the simulator can serve it, keeps the token in memory
(``MemoryCacheHandler``: spotipy's default writes a ``.cache`` file into the working
directory), and gives spotipy a plain ``requests.Session`` with no retry adapter: spotipy's
own one retries 429s by sleeping for ``Retry-After``, which may be hours. The enricher backs
off instead, without blocking anything.

Best match: a search returns several candidates; the one whose normalised artist and title
equal ours wins (``best_album`` / ``best_artist``), never blindly the first hit.
"""

from __future__ import annotations

import asyncio
import logging
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import requests
import spotipy
from spotipy.cache_handler import MemoryCacheHandler
from spotipy.exceptions import SpotifyException, SpotifyOauthError

from musiqued.config import SpotifyConfig
from musiqued.errors import FatalUpstreamError, RateLimitedError, TransientUpstreamError
from musiqued.models import web_url
from musiqued.upstream.http_errors import HttpStatusErrors, retry_after_seconds

T = TypeVar("T")
SEARCH_LIMIT = 10
_EDITION = re.compile(
    r"\s*[\(\[][^\)\]]*\b(remaster(ed)?|deluxe|expanded|anniversary|edition|bonus|reissue|"
    r"mono|stereo|version)\b[^\)\]]*[\)\]]\s*$"
    r"|\s+-\s+[^-]*\b(remaster(ed)?|deluxe|expanded|anniversary|edition|reissue)\b.*$",
    re.IGNORECASE,
)
_NOT_WORD = re.compile(r"[^\w]+")
_HTTP_ERRORS = HttpStatusErrors(
    service="spotify", name="Spotify", rate_limited="rate limit", credentials="the access token"
)

# spotipy logs every HTTP error at ERROR (the enricher reports state changes itself) and
# its request headers at DEBUG, Basic credentials included.
logging.getLogger("spotipy").setLevel(logging.CRITICAL)


def normalise(name: str, *, edition: bool = False) -> str:
    """Casefolded, accents and punctuation dropped, ``&`` as "and", no leading "the".

    ``edition=True`` also drops a trailing edition note ("(Remastered 2011)", "- Deluxe").
    """
    text = _EDITION.sub("", name) if edition else name
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = text.casefold().replace("&", " and ")
    text = _NOT_WORD.sub(" ", text).strip()
    return text.removeprefix("the ")


@dataclass(frozen=True, slots=True)
class SpotifyAlbum:
    spotify_id: str
    name: str
    image_url: str | None
    release_year: int | None


@dataclass(frozen=True, slots=True)
class SpotifyArtist:
    spotify_id: str
    name: str
    image_url: str | None


def _dimension(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ValueError(f"an image size is not a number ({value!r:.40})")


def largest_image(images: Any) -> str | None:
    """The URL of the largest ``http(s)`` image; ValueError for sizes that are not numbers."""
    if not isinstance(images, list):
        return None
    best: tuple[int, str] | None = None
    for image in images:
        if not isinstance(image, dict):
            continue
        url = web_url(image.get("url"))
        if url is None:
            continue
        size = _dimension(image.get("width")) * _dimension(image.get("height"))
        if best is None or size > best[0]:
            best = (size, url)
    return best[1] if best else None


def _year(release_date: Any) -> int | None:
    text = str(release_date or "")[:4]
    return int(text) if text.isdecimal() else None


def best_album(items: Sequence[Any], artist: str, title: str) -> SpotifyAlbum | None:
    """The candidate by our artist whose title matches best; None if none matches."""
    want_artist = normalise(artist)
    want_title, want_bare = normalise(title), normalise(title, edition=True)
    best: tuple[int, int, dict[str, Any]] | None = None
    for position, item in enumerate(items):
        if not isinstance(item, dict) or not item.get("id"):
            continue
        names = {
            normalise(str(a.get("name", "")))
            for a in item.get("artists") or []
            if isinstance(a, dict)
        }
        if want_artist not in names:
            continue
        name = str(item.get("name", ""))
        if normalise(name) == want_title:
            score = 3
        elif normalise(name, edition=True) == want_bare:
            score = 2
        else:
            continue
        if item.get("album_type") == "album":
            score *= 2  # the album itself rather than a single or compilation of that name
        if best is None or (score, -position) > (best[0], -best[1]):
            best = (score, position, item)
    if best is None:
        return None
    item = best[2]
    return SpotifyAlbum(
        spotify_id=str(item["id"]),
        name=str(item.get("name", "")),
        image_url=largest_image(item.get("images")),
        release_year=_year(item.get("release_date")),
    )


def best_artist(items: Sequence[Any], name: str) -> SpotifyArtist | None:
    want = normalise(name)
    matches = [
        item
        for item in items
        if isinstance(item, dict) and item.get("id") and normalise(str(item.get("name"))) == want
    ]
    if not matches:
        return None
    # Several artists share a name: the most followed one is the likely one.
    item = max(matches, key=lambda i: int((i.get("followers") or {}).get("total") or 0))
    return SpotifyArtist(
        spotify_id=str(item["id"]),
        name=str(item.get("name", "")),
        image_url=largest_image(item.get("images")),
    )


def _quoted(value: str) -> str:
    return '"' + value.replace('"', " ").strip() + '"'


def _retry_after(headers: Any) -> float:
    return retry_after_seconds(headers.get("Retry-After") if headers else None)


def translate(exc: BaseException) -> Exception:
    """A spotipy / requests exception as one of ours."""
    if isinstance(exc, SpotifyOauthError):
        cause = exc.__context__
        response = cause.response if isinstance(cause, requests.HTTPError) else None
        status = response.status_code if response is not None else None
        if status is not None and (status >= 500 or status == 429):
            if status == 429:
                headers = response.headers if response is not None else {}
                return RateLimitedError(
                    "Spotify token endpoint rate limit",
                    retry_after=_retry_after(headers),
                    service="spotify",
                    status=status,
                )
            return TransientUpstreamError(
                f"Spotify token endpoint answered HTTP {status}", service="spotify", status=status
            )
        return FatalUpstreamError(
            f"Spotify refused the client credentials ({exc.error or 'error'}): "
            "check spotify.client_id and spotify.client_secret",
            kind="credentials",
            service="spotify",
            status=status,
        )
    if isinstance(exc, SpotifyException):
        status = int(exc.http_status or 0)
        return _HTTP_ERRORS.error(status, retry_after=_retry_after(exc.headers))
    if isinstance(exc, requests.Timeout):
        return TransientUpstreamError(
            "Spotify did not answer in time", kind="timeout", service="spotify"
        )
    if isinstance(exc, requests.ConnectionError):
        return TransientUpstreamError("cannot reach Spotify", kind="connection", service="spotify")
    if isinstance(exc, ValueError | KeyError | TypeError | requests.RequestException):
        return TransientUpstreamError(
            f"Spotify sent a malformed answer ({exc.__class__.__name__})",
            kind="malformed",
            service="spotify",
        )
    return exc if isinstance(exc, Exception) else RuntimeError(str(exc))


class SpotifyClient:
    def __init__(self, config: SpotifyConfig, *, timeout: float = 15.0) -> None:
        self.config = config
        self._lock = asyncio.Lock()
        self._session = requests.Session()  # no retry adapter: see the module docstring
        auth = spotipy.SpotifyClientCredentials(
            client_id=config.client_id.get_secret_value(),
            client_secret=config.client_secret.get_secret_value(),
            requests_session=self._session,
            requests_timeout=timeout,
            cache_handler=MemoryCacheHandler(),
        )
        auth.OAUTH_TOKEN_URL = config.token_url
        self._spotify = spotipy.Spotify(
            auth_manager=auth,
            requests_session=self._session,
            requests_timeout=timeout,
            retries=0,
            status_retries=0,
        )
        self._spotify.prefix = (
            config.api_url if config.api_url.endswith("/") else config.api_url + "/"
        )
        self.requests = 0

    async def close(self) -> None:
        await asyncio.to_thread(self._session.close)

    async def _run(self, call: Callable[[], T]) -> T:
        async with self._lock:
            self.requests += 1
            try:
                return await asyncio.to_thread(call)
            except Exception as exc:
                raise translate(exc) from None

    async def _search(self, q: str, kind: str) -> list[Any]:
        data = await self._run(lambda: self._spotify.search(q=q, limit=SEARCH_LIMIT, type=kind))
        page = data.get(f"{kind}s") if isinstance(data, dict) else None
        items = page.get("items") if isinstance(page, dict) else None
        if not isinstance(items, list):
            raise TransientUpstreamError(
                f"Spotify sent a malformed {kind} search answer",
                kind="malformed",
                service="spotify",
            )
        return items

    async def album(self, artist: str, title: str) -> SpotifyAlbum | None:
        """Search by field filters; if nothing matches, once more as free text."""
        items = await self._search(f"album:{_quoted(title)} artist:{_quoted(artist)}", "album")
        found = _read("album", lambda: best_album(items, artist, title))
        if found is None:
            items = await self._search(f"{artist} {title}", "album")
            found = _read("album", lambda: best_album(items, artist, title))
        return found

    async def artist(self, name: str) -> SpotifyArtist | None:
        items = await self._search(f"artist:{_quoted(name)}", "artist")
        return _read("artist", lambda: best_artist(items, name))


def _read(kind: str, choose: Callable[[], T]) -> T:
    """Pick from a search answer; an answer that cannot be read fails this item (never the
    lane, never silently): retrying would read the same answer."""
    try:
        return choose()
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise FatalUpstreamError(
            f"Spotify sent a {kind} that cannot be read: {exc}",
            kind="malformed",
            service="spotify",
        ) from None
