"""The ListenBrainz API over aiohttp (ListenBrainz, or Maloja and Koito, which speak it).

``[listenbrainz] api_url`` is the API root; the token goes in ``Authorization: Token T``.
One attempt per call, no retries and no waiting here: the mirror owns pacing
(``listenbrainz_pacing.Pacer``) from what each call returns or raises:

* ``submit`` returns the server's budget (``RateLimit``, None if it sends no
  ``X-RateLimit-*`` headers, as Maloja does);
* 401/403 → ``FatalUpstreamError`` (``kind="credentials"``): a human must change the token;
* 429 → ``RateLimitedError`` with ``retry_after`` from ``X-RateLimit-Reset-In``;
* 5xx, a timeout, no connection, a malformed answer → ``TransientUpstreamError``;
* 400 (or 413) → ``SubmissionRefused`` (a ``RefusedError``) with the server's reason and, when its answer names one,
  the refused listen (ListenBrainz merges the listen's keys into its error) and the budget;
* a redirect, another 4xx → ``FatalUpstreamError``: ``api_url`` is wrong. Redirects are never
  followed: the token would go wherever they point.

Messages never hold the token or the URL; what the server says is quoted, cut short.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from musiqued import __version__
from musiqued.config import ListenbrainzConfig
from musiqued.errors import (
    FatalUpstreamError,
    RateLimitedError,
    RefusedError,
    TransientUpstreamError,
    UpstreamError,
)
from musiqued.upstream.http_errors import network_failures, read_at_most, retry_after_seconds
from musiqued.upstream.listenbrainz_listens import (
    LISTEN_TYPES,
    MAX_LISTEN_PAYLOAD_SIZE,
    MAX_LISTENS_PER_REQUEST,
    SendableListen,
    document,
)
from musiqued.upstream.listenbrainz_pacing import RateLimit

if TYPE_CHECKING:
    import aiohttp

SERVICE = "listenbrainz"
MAX_ANSWER_BYTES = 256 * 1024
"""An answer longer than this is read no further (ListenBrainz's are under 11 KiB)."""
_REASON_CHARS = 300


class SubmissionRefused(RefusedError):
    """A 400: what was sent is refused; the server's budget came with the refusal."""

    def __init__(self, message: str, *, rate: RateLimit | None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.rate = rate


def rate_limit(headers: Mapping[str, str]) -> RateLimit | None:
    """The budget in ``X-RateLimit-*`` headers; None unless all three are numbers."""
    try:
        return RateLimit(
            limit=int(headers["X-RateLimit-Limit"]),
            remaining=int(headers["X-RateLimit-Remaining"]),
            reset_in=max(0.0, float(headers["X-RateLimit-Reset-In"])),
        )
    except (KeyError, ValueError):
        return None


def _answer(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def _reason(data: dict[str, Any], body: bytes) -> str:
    """What the server said, cut short: its ``error``, else the start of its body."""
    error = data.get("error")
    text = error if isinstance(error, str) else body.decode("utf-8", "replace").strip()
    return text if len(text) <= _REASON_CHARS else text[: _REASON_CHARS - 1] + "…"


def _refused_listen(data: dict[str, Any]) -> dict[str, object] | None:
    """The listen a 400 names: ListenBrainz merges its keys into the error."""
    listen: dict[str, object] = {k: data[k] for k in ("listened_at", "track_metadata") if k in data}
    return listen or None


def answer_error(status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError | None:
    """The error an answer is, or None for a success (2xx)."""
    if 200 <= status < 300:
        return None
    data = _answer(body)
    reason = _reason(data, body)
    said = f": {reason}" if reason else ""
    if status == 429:
        rate = rate_limit(headers)
        wait = (
            rate.reset_in if rate is not None else retry_after_seconds(headers.get("Retry-After"))
        )
        return RateLimitedError(
            f"ListenBrainz asked to slow down (HTTP 429, {wait:g} s)",
            retry_after=wait,
            service=SERVICE,
            status=status,
        )
    if status in (401, 403):
        return FatalUpstreamError(
            f"ListenBrainz refused the token (HTTP {status}{said}): check listenbrainz.token",
            kind="credentials",
            service=SERVICE,
            status=status,
        )
    if status in (400, 413):
        return SubmissionRefused(
            f"ListenBrainz refused the submission (HTTP {status}{said})",
            reason=reason or f"HTTP {status}",
            listen=_refused_listen(data),
            rate=rate_limit(headers),
            service=SERVICE,
            status=status,
        )
    if 300 <= status < 400:
        return FatalUpstreamError(
            f"ListenBrainz answered HTTP {status}, a redirect (not followed: check "
            "listenbrainz.api_url)",
            kind="redirect",
            service=SERVICE,
            status=status,
        )
    if status >= 500:
        return TransientUpstreamError(
            f"ListenBrainz answered HTTP {status}{said}", service=SERVICE, status=status
        )
    return FatalUpstreamError(
        f"ListenBrainz answered HTTP {status}{said}: check listenbrainz.api_url",
        service=SERVICE,
        status=status,
    )


class ListenBrainzClient:
    def __init__(self, config: ListenbrainzConfig, *, timeout: float = 30.0) -> None:
        self.config = config
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        self._opened = False
        self.requests = 0
        self.rate: RateLimit | None = None
        """The budget the last answer told (``X-RateLimit-*``), whatever the call."""

    def reconfigure(self, config: ListenbrainzConfig) -> None:
        """A new token or API root (daemon reload), on the same HTTP session."""
        self.config = config

    async def open(self) -> None:
        """Ready to call; the HTTP session (and aiohttp) comes with the first request, so
        a daemon that mirrors nowhere never loads it."""
        self._opened = True

    def _http(self) -> aiohttp.ClientSession:
        if not self._opened:
            raise RuntimeError("ListenBrainzClient.open() was not called")
        if self._session is None:
            import aiohttp

            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._timeout),
                headers={"User-Agent": f"musiqued/{__version__}"},
                raise_for_status=False,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def validate_token(self) -> str:
        """The user name the token belongs to; FatalUpstreamError if it is not valid."""
        _, data = await self._request("GET", "1/validate-token", None)
        if not isinstance(data.get("valid"), bool):
            raise TransientUpstreamError(
                "ListenBrainz sent a validate-token answer without valid",
                kind="malformed",
                service=SERVICE,
            )
        if not data["valid"]:
            message = data.get("message")
            said = f" ({message})" if isinstance(message, str) and message else ""
            raise FatalUpstreamError(
                f"ListenBrainz does not know the token{said[:_REASON_CHARS]}: check "
                "listenbrainz.token",
                kind="credentials",
                service=SERVICE,
            )
        user = data.get("user_name")
        return user if isinstance(user, str) else ""

    async def submit(self, listen_type: str, listens: Sequence[SendableListen]) -> RateLimit | None:
        """Submit ``listens`` (one for ``single`` and ``playing_now``, at most 1,000); the
        server's budget after it, if it tells it."""
        if listen_type not in LISTEN_TYPES:
            raise ValueError(f"unknown listen type {listen_type!r}")
        if not listens or len(listens) > MAX_LISTENS_PER_REQUEST:
            raise ValueError(f"{len(listens)} listens: from 1 to {MAX_LISTENS_PER_REQUEST}")
        if listen_type != "import" and len(listens) != 1:
            raise ValueError(f"a {listen_type} submission holds exactly one listen")
        body = document(listen_type, [listen.body for listen in listens])
        if len(body) > MAX_LISTEN_PAYLOAD_SIZE:
            raise ValueError(f"a submission of {len(body)} bytes: make smaller payloads")
        rate, _ = await self._request("POST", "1/submit-listens", body)
        return rate

    async def _request(
        self, method: str, path: str, body: bytes | None
    ) -> tuple[RateLimit | None, dict[str, Any]]:
        session = self._http()

        config = self.config
        headers = {"Authorization": f"Token {config.token.get_secret_value()}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        self.requests += 1
        with network_failures(
            SERVICE,
            timeout=f"ListenBrainz did not answer within {self._timeout:g} s",
            unreachable="cannot reach ListenBrainz",
        ):
            # Never follow a redirect: the token would go wherever it points.
            async with session.request(
                method, config.api_url + path, data=body, headers=headers, allow_redirects=False
            ) as response:
                status = response.status
                answer_headers = response.headers
                raw = await read_at_most(response, MAX_ANSWER_BYTES)
        self.rate = rate_limit(answer_headers)
        error = answer_error(status, answer_headers, raw)
        if error is not None:
            raise error
        return self.rate, _answer(raw)
