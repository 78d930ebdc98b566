"""Last.fm web auth through pylast: in a thread, behind the shared governor, our errors.

The flow (``SessionKeyGenerator``)::

    LastfmWebAuth.start()           auth.getToken  → WebAuthStart(url to approve, token)
        (the user opens the URL and allows access)
    LastfmWebAuth.complete(token)   auth.getSession → WebAuthSession(username, key)

Each call runs pylast (blocking, XML) on a worker thread inside ``governor.slot(TRACKER)``,
so it counts against the rate shared with the tracker, imports and enrichment, and never
stalls the event loop. ``AUTH_RETRY`` retries what is worth retrying, briefly: a person is
waiting. pylast's exceptions become ours, with the words of ``upstream.lastfm``:

    pylast.WSError 4/9/10/13/14/15/26/...  → FatalUpstreamError (upstream_code = the code)
    pylast.WSError 8/11/16, HTTP 5xx       → TransientUpstreamError;  29 → RateLimitedError
    pylast.NetworkError                    → TransientUpstreamError (kind "connection"), in
                                             words (``network_reason``), as the JSON client
    pylast.MalformedResponseError, an
    answer without its token or session    → TransientUpstreamError (kind "malformed")

pylast speaks only HTTPS and takes the endpoint as a host and a path (``network.ws_server``)
plus the site that shows the approval page (``network.homepage``); both come from
``[lastfm] api_url`` (``auth_endpoints``). It trusts the system's CA store, or the file named
by ``SSL_CERT_FILE`` (read once, when pylast is imported). pylast is imported on the first
login only: it is slow to import and the daemon does not need it otherwise.
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import parse_qs, urlsplit

from musiqued.config import LastfmConfig
from musiqued.errors import NotConfiguredError, TransientUpstreamError, UpstreamError
from musiqued.upstream.lastfm import RetryPolicy, lastfm_error
from musiqued.upstream.ratelimit import Governor, Priority

if TYPE_CHECKING:
    import pylast

T = TypeVar("T")

REAL_API_HOSTS = frozenset({"ws.audioscrobbler.com", "ws.audioscrobbler.com."})
REAL_AUTH_SITE = "https://www.last.fm"
AUTH_RETRY = RetryPolicy(attempts=3, rate_limited_attempts=3, max_delay=2.0, budget_seconds=20.0)
_TOKEN = re.compile(r"[0-9A-Za-z_-]{1,128}")


@dataclass(frozen=True, slots=True)
class AuthEndpoints:
    """Where pylast sends its calls, and the site whose ``/api/auth/`` page approves a token."""

    ws_server: tuple[str, str]  # (host[:port], path), as pylast's network wants it
    homepage: str


@dataclass(frozen=True, slots=True)
class WebAuthStart:
    url: str  # the page the user opens to allow access
    token: str


@dataclass(frozen=True, slots=True)
class WebAuthSession:
    username: str
    key: str = field(repr=False)


def auth_endpoints(api_url: str) -> AuthEndpoints:
    """pylast's endpoint and approval site for ``[lastfm] api_url``.

    ``https://ws.audioscrobbler.com/2.0/`` → last.fm's own pages; any other HTTPS endpoint
    (Libre.fm, a simulator) shows the page on its own host. pylast cannot speak plain HTTP.
    """
    parts = urlsplit(api_url.strip())
    if parts.scheme != "https" or not parts.hostname or "@" in parts.netloc:
        raise NotConfiguredError(
            "logging in to Last.fm needs an https:// lastfm.api_url (the web-auth client, "
            f"pylast, speaks only HTTPS); it is {api_url!r}"
        )
    ws_server = (parts.netloc, parts.path or "/")
    if parts.hostname in REAL_API_HOSTS:
        return AuthEndpoints(ws_server, REAL_AUTH_SITE)
    return AuthEndpoints(ws_server, f"https://{parts.netloc}")


def _malformed(what: str) -> TransientUpstreamError:
    return TransientUpstreamError(f"Last.fm sent {what}", kind="malformed")


def network_reason(error: BaseException) -> str:
    """A failure on the way to Last.fm in words, read from the standard exceptions that
    pylast's HTTP stack chains (``raise … from``); never the library's text."""
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ssl.SSLCertVerificationError):
            return "its TLS certificate is not trusted"
        if isinstance(cause, ssl.SSLError):
            return "the TLS handshake failed"
        if isinstance(cause, socket.gaierror):
            return "its host name was not found"
        if isinstance(cause, ConnectionRefusedError):
            return "the connection was refused"
        if isinstance(cause, TimeoutError):
            return "it did not answer in time"
        if isinstance(cause, OSError) and cause.strerror:
            return f"the connection failed ({cause.strerror})"
        cause = cause.__cause__ or cause.__context__
    return f"the connection failed ({type(error).__name__})"


def translate(error: pylast.PyLastError, username: str) -> UpstreamError:
    """pylast's exception as one of ours (the module docstring has the table)."""
    import pylast

    if isinstance(error, pylast.WSError):
        status, details = error.status, str(error.details)[:500]
        if isinstance(status, int):  # pylast's own words for an HTTP 5xx
            return TransientUpstreamError(f"Last.fm answered HTTP {status}", status=status)
        code = int(status) if str(status).isdecimal() else 0
        if not code:
            return _malformed(f"an error without a code ({details!r})")
        return lastfm_error(code, details, status=None, username=username)
    if isinstance(error, pylast.NetworkError):
        return TransientUpstreamError(
            f"cannot reach Last.fm: {network_reason(error.underlying_error)}", kind="connection"
        )
    return _malformed(f"a malformed answer ({error.__class__.__name__})")


AUTH_DEADLINE_S = 15.0
"""The longest a login step may take, retries included (``musiquectl`` waits 30 s)."""


class LastfmWebAuth:
    """Web auth for one ``[lastfm]`` section; ``reconfigure`` on reload."""

    def __init__(
        self,
        config: LastfmConfig,
        governor: Governor,
        *,
        retry: RetryPolicy = AUTH_RETRY,
        deadline: float = AUTH_DEADLINE_S,
    ) -> None:
        self.config = config
        self.governor = governor
        self.retry = retry
        self.deadline = deadline

    def reconfigure(self, config: LastfmConfig) -> None:
        self.config = config

    async def start(self) -> WebAuthStart:
        """``auth.getToken``: the page to open and the token it approves."""
        return await self._run(self._start)

    async def complete(self, token: str) -> WebAuthSession:
        """``auth.getSession`` for a token the user approved: the session key and its user."""
        return await self._run(lambda generator: self._complete(generator, token))

    # -- on the worker thread ------------------------------------------------------------

    @staticmethod
    def _start(generator: pylast.SessionKeyGenerator) -> WebAuthStart:
        url = generator.get_web_auth_url()
        token = parse_qs(urlsplit(url).query).get("token", [""])[0]
        if not _TOKEN.fullmatch(token):
            raise _malformed("a token that is not one")
        return WebAuthStart(url, token)

    @staticmethod
    def _complete(generator: pylast.SessionKeyGenerator, token: str) -> WebAuthSession:
        key, username = generator.get_web_auth_session_key_username(None, token)
        if not (isinstance(key, str) and key.strip()):
            raise _malformed("a session without its key")
        if not (isinstance(username, str) and username.strip()):
            raise _malformed("a session without its user name")
        return WebAuthSession(username, key)

    @staticmethod
    def _call(config: LastfmConfig, step: Callable[[pylast.SessionKeyGenerator], T]) -> T:
        import pylast

        endpoints = auth_endpoints(config.api_url)
        network = pylast.LastFMNetwork(
            api_key=config.api_key.get_secret_value(),
            api_secret=config.api_secret.get_secret_value(),
        )
        network.ws_server = endpoints.ws_server
        network.homepage = endpoints.homepage
        try:
            return step(pylast.SessionKeyGenerator(network))
        except pylast.PyLastError as exc:
            raise translate(exc, config.username) from None
        except (IndexError, AttributeError):
            # pylast reads the answer's elements by index: an "ok" answer without them.
            raise _malformed("an answer without the expected elements") from None

    # -- on the loop ---------------------------------------------------------------------

    async def _run(self, step: Callable[[pylast.SessionKeyGenerator], T]) -> T:
        config = self.config
        auth_endpoints(config.api_url)  # a configuration error is not worth a retry

        async def attempt() -> T:
            async with self.governor.slot(Priority.TRACKER):
                return await asyncio.to_thread(self._call, config, step)

        # A person waits on the other end of the socket: answer in bounded time, whatever
        # pylast's own timeouts and our retries would add up to (a hung thread finishes
        # on its own; nothing waits for it).
        try:
            async with asyncio.timeout(self.deadline):
                return await self.retry.run(attempt, self.governor)
        except TimeoutError:
            raise TransientUpstreamError(
                f"Last.fm did not answer within {self.deadline:g} s; try again later",
                kind="timeout",
            ) from None
