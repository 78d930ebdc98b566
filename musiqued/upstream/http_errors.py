"""One reading of a failed HTTP exchange for the upstream adapters.

``HttpStatusErrors`` reads a failed status for the Spotify and AI adapters (Last.fm has its
own ``classify``: its errors come as codes inside the body). ``connection_reason`` words an
aiohttp failure without the request's URL: an aiohttp message may carry the whole URL, query
included, and the Last.fm query holds the API key and the session key.
"""

from __future__ import annotations

import contextlib
import errno
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import aiohttp

from musiqued.errors import (
    FatalUpstreamError,
    RateLimitedError,
    TransientUpstreamError,
    UpstreamError,
)

DEFAULT_RETRY_AFTER = 30.0
"""Seconds to wait after a 429 whose ``Retry-After`` is missing or not a number."""


def retry_after_seconds(value: str | None) -> float:
    """A ``Retry-After`` header in seconds (an HTTP date counts as missing)."""
    try:
        return max(0.0, float(value or ""))
    except ValueError:
        return DEFAULT_RETRY_AFTER


@dataclass(frozen=True, slots=True)
class HttpStatusErrors:
    """How one upstream service words its HTTP failures."""

    service: str
    """The errors' ``service`` field."""
    name: str
    """How messages name the service ("Spotify", "the AI endpoint")."""
    rate_limited: str
    """What a 429 says after the name ("rate limit", "asked us to slow down")."""
    credentials: str
    """What a 401/403 refused ("the access token"), and the key to check, if any."""
    hint: str = ""

    def error(self, status: int, *, retry_after: float, detail: str = "") -> UpstreamError:
        """The error for a failed ``status`` (0: the request got no status at all).

        429 slows down, 5xx is retried later, 401/403 is a credentials problem and any other
        failure needs a human too.
        """
        if status == 429:
            return RateLimitedError(
                f"{self.name} {self.rate_limited} (HTTP 429)",
                retry_after=retry_after,
                service=self.service,
                status=status,
            )
        if status >= 500 or status == 0:
            return TransientUpstreamError(
                f"{self.name} answered HTTP {status}", service=self.service, status=status
            )
        if status in (401, 403):
            return FatalUpstreamError(
                f"{self.name} refused {self.credentials} (HTTP {status}){self.hint}",
                kind="credentials",
                service=self.service,
                status=status,
            )
        return FatalUpstreamError(
            f"{self.name} answered HTTP {status}" + (f": {detail}" if detail else ""),
            service=self.service,
            status=status,
        )


def connection_reason(exc: aiohttp.ClientError) -> str:
    """What went wrong on the way to the service, in words, never with the URL."""
    import aiohttp  # the caller caught one of its errors: already loaded

    if isinstance(exc, aiohttp.TooManyRedirects | aiohttp.RedirectClientError):
        return "it redirected the request (redirects are not followed)"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return "its TLS certificate is not trusted"
    if isinstance(exc, aiohttp.ClientConnectorSSLError | aiohttp.ClientSSLError):
        return "the TLS handshake failed"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "its host name was not found"
    if isinstance(exc, aiohttp.ClientConnectorError):
        cause = exc.os_error
        if isinstance(cause, socket.gaierror):
            return "its host name was not found"
        if cause.errno == errno.ECONNREFUSED:
            return "the connection was refused"
        return f"the connection failed ({cause.strerror or type(cause).__name__})"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the server closed the connection"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "the answer was cut off"
    if isinstance(exc, aiohttp.InvalidUrlClientError):
        return "the configured URL is not valid"
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"HTTP {exc.status}"
    if isinstance(exc, aiohttp.ClientOSError) and exc.strerror:
        return f"the connection failed ({exc.strerror})"
    return f"the connection failed ({type(exc).__name__})"


@contextlib.contextmanager
def network_failures(service: str, *, timeout: str, unreachable: str) -> Iterator[None]:
    """A timeout or an aiohttp failure inside as ``TransientUpstreamError``: ``timeout`` is
    its message, ``unreachable`` the words before ``connection_reason``."""
    import aiohttp  # the caller is about to use it: already loaded

    try:
        yield
    except TimeoutError:
        raise TransientUpstreamError(timeout, kind="timeout", service=service) from None
    except aiohttp.ClientError as exc:
        raise TransientUpstreamError(
            f"{unreachable}: {connection_reason(exc)}", kind="connection", service=service
        ) from None


async def read_at_most(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body, or its first ``limit`` bytes: a huge answer is never held whole."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)[:limit]
