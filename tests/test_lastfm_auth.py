"""The pylast adapter for web auth (``upstream/lastfm_auth.py``), in process.

The whole flow runs end to end through the daemon in ``test_lastfm_login.py``; here: where
pylast is pointed for an ``api_url``, how its exceptions become ours, and that it waits for
the shared governor, refuses an untrusted certificate and never speaks plain HTTP.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import ssl

import pylast
import pytest

from musiqued.errors import (
    FatalUpstreamError,
    NotConfiguredError,
    RateLimitedError,
    TransientUpstreamError,
    UpstreamError,
)
from musiqued.upstream.lastfm import RetryPolicy
from musiqued.upstream.lastfm_auth import AuthEndpoints, LastfmWebAuth, auth_endpoints, translate
from musiqued.upstream.ratelimit import Governor
from tests.fixtures.lastfm import SimulatedLastfm
from tests.fixtures.services import eventually

ONCE = RetryPolicy(attempts=1, rate_limited_attempts=1)


@pytest.mark.parametrize(
    ("api_url", "expected"),
    [
        (
            "https://ws.audioscrobbler.com/2.0/",
            AuthEndpoints(("ws.audioscrobbler.com", "/2.0/"), "https://www.last.fm"),
        ),
        ("https://libre.fm/2.0/", AuthEndpoints(("libre.fm", "/2.0/"), "https://libre.fm")),
        (
            "https://127.0.0.1:8443/2.0/",
            AuthEndpoints(("127.0.0.1:8443", "/2.0/"), "https://127.0.0.1:8443"),
        ),
        ("https://[::1]:8443/2.0/", AuthEndpoints(("[::1]:8443", "/2.0/"), "https://[::1]:8443")),
        ("https://example.org", AuthEndpoints(("example.org", "/"), "https://example.org")),
    ],
)
def test_endpoints_follow_api_url(api_url: str, expected: AuthEndpoints) -> None:
    """pylast's ws_server and approval site come from api_url; the real API gets last.fm's
    own pages, any other host shows the page itself."""
    assert auth_endpoints(api_url) == expected


@pytest.mark.parametrize(
    "api_url",
    ["http://127.0.0.1:8765/2.0/", "ws.audioscrobbler.com/2.0/", "https://u:p@example.org/2.0/"],
)
def test_endpoints_need_https(api_url: str) -> None:
    """An api_url pylast cannot speak to is a clear configuration error naming it."""
    with pytest.raises(NotConfiguredError) as caught:
        auth_endpoints(api_url)
    assert "needs an https:// lastfm.api_url" in caught.value.message
    assert repr(api_url) in caught.value.message


NETWORK = pylast.LastFMNetwork()


@pytest.mark.parametrize(
    ("status", "kind", "words"),
    [
        ("4", FatalUpstreamError, "the Last.fm token is invalid: run `musiquectl lastfm login`"),
        ("9", FatalUpstreamError, "the Last.fm session key is invalid or revoked"),
        ("10", FatalUpstreamError, "the Last.fm API key is invalid"),
        ("13", FatalUpstreamError, "refused the request signature: check lastfm.api_secret"),
        ("14", FatalUpstreamError, "the Last.fm token was not authorised: open the URL"),
        ("15", FatalUpstreamError, "the Last.fm token has expired"),
        ("26", FatalUpstreamError, "the Last.fm API key is suspended"),
        ("8", TransientUpstreamError, "Last.fm error 8: Operation failed"),
        ("11", TransientUpstreamError, "Last.fm error 11: Operation failed"),
        ("16", TransientUpstreamError, "Last.fm error 16: Operation failed"),
        ("29", RateLimitedError, "Last.fm rate limit (Operation failed)"),
        (503, TransientUpstreamError, "Last.fm answered HTTP 503"),
        ("", TransientUpstreamError, "Last.fm sent an error without a code"),
    ],
)
def test_ws_errors(status: str | int, kind: type[UpstreamError], words: str) -> None:
    """Each Last.fm error pylast reports becomes ours, with the words the JSON client uses;
    the code is kept for callers that branch on it."""
    error = translate(pylast.WSError(NETWORK, status, "Operation failed"), "simuser")
    assert type(error) is kind
    assert words in error.message
    if isinstance(status, str) and status:
        assert error.upstream_code == int(status)


def chained(*errors: BaseException) -> BaseException:
    """``errors[0]`` raised from ``errors[1]``, raised from ..., as an HTTP stack chains them."""
    for outer, inner in itertools.pairwise(errors):
        outer.__cause__ = inner
    return errors[0]


@pytest.mark.parametrize(
    ("cause", "words"),
    [
        (ConnectionRefusedError(111, "Connection refused"), "the connection was refused"),
        (
            ssl.SSLCertVerificationError(1, "certificate verify failed"),
            "its TLS certificate is not trusted",
        ),
        (ssl.SSLError(1, "wrong version number"), "the TLS handshake failed"),
        (socket.gaierror(-2, "Name or service not known"), "its host name was not found"),
        (TimeoutError("timed out"), "it did not answer in time"),
        (OSError(113, "No route to host"), "the connection failed (No route to host)"),
        (KeyError("https://host/2.0/?api_key=secret"), "the connection failed (LibraryError)"),
    ],
)
def test_network_errors(cause: BaseException, words: str) -> None:
    """A connection failure is transient, worded from the standard exception at the root of
    the chain, never with the library's text (which may quote a URL)."""

    class LibraryError(Exception):
        pass

    underlying = chained(LibraryError("https://host/2.0/ failed"), RuntimeError("inner"), cause)
    error = translate(pylast.NetworkError(NETWORK, underlying), "u")
    assert type(error) is TransientUpstreamError
    assert (error.kind, error.message) == ("connection", f"cannot reach Last.fm: {words}")


def test_malformed_errors() -> None:
    """An unreadable answer is transient, of kind malformed."""
    malformed = translate(pylast.MalformedResponseError(NETWORK, ValueError("bad")), "u")
    assert type(malformed) is TransientUpstreamError
    assert malformed.kind == "malformed"


async def test_plain_http_sends_nothing(lastfm_sim: SimulatedLastfm) -> None:
    """Web auth against an http:// api_url fails at once, before any request or retry."""
    governor = Governor(1000.0, 4)
    auth = LastfmWebAuth(lastfm_sim.config(), governor)
    with pytest.raises(NotConfiguredError, match="https://"):
        await auth.start()
    assert "requests" not in lastfm_sim.stats()


async def test_untrusted_certificate_is_refused(lastfm_sim: SimulatedLastfm) -> None:
    """This test process does not trust the simulator's test CA: pylast refuses the
    certificate, reported as an unreachable Last.fm, and no request gets through."""
    config = lastfm_sim.config(api_url=lastfm_sim.tls_api_url)
    auth = LastfmWebAuth(config, Governor(1000.0, 4), retry=ONCE)
    with pytest.raises(TransientUpstreamError) as caught:
        await auth.start()
    assert caught.value.kind == "connection"
    assert caught.value.message == "cannot reach Last.fm: its TLS certificate is not trusted"
    assert "requests" not in lastfm_sim.stats()


async def test_waits_for_the_governor(lastfm_sim: SimulatedLastfm) -> None:
    """A web-auth call takes a place of the shared governor: with every place held, it waits
    and only goes once one is given back."""
    governor = Governor(1000.0, 1)
    auth = LastfmWebAuth(lastfm_sim.config(api_url=lastfm_sim.tls_api_url), governor, retry=ONCE)
    async with governor.slot():
        call = asyncio.create_task(auth.start())

        async def waiting() -> bool:
            return governor.waiting == 1

        await eventually(waiting)
        # Queued for the one place, which this test holds: it cannot have been sent.
        assert not call.done()
        assert "requests" not in lastfm_sim.stats()
    with pytest.raises(TransientUpstreamError, match="certificate is not trusted"):
        await call
    assert governor.in_flight == 0
