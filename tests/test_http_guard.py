"""The HTTP front end as a local web page must be: cross-site requests, foreign Host names
(DNS rebinding) and missing tokens refused; scripts like the curl lines of docs/http-api.md unaffected."""

from __future__ import annotations

import base64
import http.client
import json
import os
from pathlib import Path
from typing import Any

import pytest

from musiqued.http.page import STATIC_DIR
from tests.fixtures.lastfm import SimulatedLastfm
from tests.fixtures.threaded import ServeInThread
from tests.support import HTTP_TOKEN, free_port

TOKEN = "tk-42x-0123456789"


def call(
    port: int,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: Any = None,
    token: str | None = HTTP_TOKEN,
    source: str = "127.0.0.1",
) -> tuple[int, Any, http.client.HTTPMessage]:
    """(status, body as JSON or text, headers); ``Host`` may be overridden in ``headers``;
    ``token`` goes in ``Authorization: Bearer`` unless ``headers`` has one (None: none);
    ``source``: the loopback address the request comes from (a client of its own)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(source, 0))
    sent = dict(headers or {})
    if token is not None and "Cookie" not in sent:
        sent.setdefault("Authorization", f"Bearer {token}")
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        sent.setdefault("Content-Type", "application/json")
    try:
        conn.putrequest(method, path, skip_host="Host" in sent)
        for name, value in sent.items():
            conn.putheader(name, value)
        if data is not None:
            conn.putheader("Content-Length", str(len(data)))
        conn.endheaders(data)
        response = conn.getresponse()
        raw = response.read()
        try:
            parsed: Any = json.loads(raw)
        except ValueError:
            parsed = raw.decode("utf-8", errors="replace")
        return response.status, parsed, response.headers
    finally:
        conn.close()


@pytest.fixture
def http_port(serve_in_thread: ServeInThread, lastfm_sim: SimulatedLastfm) -> int:
    port = free_port()
    serve_in_thread(
        **lastfm_sim.sections(), http={"listen": f"127.0.0.1:{port}", "token": HTTP_TOKEN}
    )
    return port


def test_cross_origin_post_is_refused_and_changes_nothing(http_port: int) -> None:
    """A POST from another origin (a page elsewhere on the web) gets 403 and the tracker
    stays stopped; the same POST from the page's own origin, or with no Origin (curl), works."""
    port = http_port
    for path in ("/api/v1/services/tracker/start", "/api/v1/tracker/start"):
        status, body, _ = call(port, "POST", path, headers={"Origin": "http://evil.example"})
        assert status == 403
        assert body["kind"] == "cross_origin"
        assert "evil.example" in body["detail"]
    status, body, _ = call(
        port, "POST", "/api/v1/imports", headers={"Sec-Fetch-Site": "cross-site"}, body={}
    )
    assert (status, body["kind"]) == (403, "cross_origin")
    status, body, _ = call(
        port, "POST", "/api/v1/tracker/start", headers={"Origin": "null"}, body={}
    )
    assert status == 403
    assert call(port, "GET", "/api/v1/services/tracker/status")[1]["running"] is False
    assert call(port, "GET", "/api/v1/jobs")[1] == []

    own = {"Origin": f"http://127.0.0.1:{port}", "Sec-Fetch-Site": "same-origin"}
    status, body, _ = call(port, "POST", "/api/v1/tracker/start", headers=own, body={})
    assert (status, body) == (200, {"status": "started"})
    status, body, _ = call(port, "POST", "/api/v1/services/tracker/stop")
    assert (status, body) == (200, {"status": "stopped"})


def test_foreign_host_is_refused(http_port: int) -> None:
    """``Host: evil.example`` (a DNS-rebound name) gets 403 on every path, the page too;
    loopback names on any port (an SSH tunnel) are served."""
    port = http_port
    for path in ("/", "/api/v1/services/tracker/status", "/api/v1/status"):
        status, body, _ = call(port, "GET", path, headers={"Host": f"evil.example:{port}"})
        assert status == 403, path
        assert body["kind"] == "foreign_host"
    status, _, _ = call(
        port, "POST", "/api/v1/services/tracker/start", headers={"Host": "evil.example"}
    )
    assert status == 403
    for host in (f"localhost:{port}", "localhost:9000", f"127.0.0.1:{port}", "[::1]:8000"):
        status, _, _ = call(port, "GET", "/api/v1/services/tracker/status", headers={"Host": host})
        assert status == 200, host


def _websocket_handshake(port: int, origin: str) -> int:
    key = base64.b64encode(os.urandom(16)).decode()
    status, _, _ = call(
        port,
        "GET",
        "/api/v1/events",
        headers={
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Key": key,
            "Sec-WebSocket-Version": "13",
            "Origin": origin,
        },
    )
    return status


def test_websocket_from_another_origin_is_refused(http_port: int) -> None:
    """The events WebSocket opens (101) for the page's own origin, not for another (403)."""
    assert _websocket_handshake(http_port, "http://evil.example") == 403
    assert _websocket_handshake(http_port, f"http://127.0.0.1:{http_port}") == 101


def test_every_answer_carries_the_content_security_policy(http_port: int) -> None:
    """The page, its script, JSON answers and errors all carry a CSP that allows only this
    origin and no inline script, with nosniff and no framing."""
    for path in ("/", "/settings", "/static/app.js", "/api/v1/status", "/api/v1/jobs/99"):
        _, _, headers = call(http_port, "GET", path)
        policy = headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy
        assert "default-src 'none'" in policy
        assert "unsafe-inline" not in policy
        assert "frame-ancestors 'none'" in policy
        assert headers["X-Content-Type-Options"] == "nosniff"


def test_token_login_sets_a_session_cookie(
    serve_in_thread: ServeInThread, lastfm_sim: SimulatedLastfm
) -> None:
    """Without a session, ``/`` is the login form and the API answers 401; the right token
    (not a wrong one) gets an HttpOnly SameSite=Strict cookie that opens both and holds no
    trace of the token; the bearer header keeps working for scripts."""
    port = free_port()
    serve_in_thread(**lastfm_sim.sections(), http={"listen": f"127.0.0.1:{port}", "token": TOKEN})
    status, page, _ = call(port, "GET", "/", token=None)
    assert status == 200
    assert 'id="login-form"' in page
    assert 'id="tracker"' not in page
    assert call(port, "GET", "/api/v1/status", token=None)[0] == 401
    assert call(port, "GET", "/static/login.js", token=None)[0] == 200

    status, body, headers = call(
        port, "POST", "/api/v1/session", body={"token": "nope"}, token=None
    )
    assert (status, body["detail"]) == (401, "wrong token")
    assert "Set-Cookie" not in headers
    status, _, headers = call(port, "POST", "/api/v1/session", body={"token": TOKEN}, token=None)
    assert status == 204
    cookie = headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert TOKEN not in cookie
    session = {"Cookie": cookie.split(";", 1)[0]}
    assert call(port, "GET", "/api/v1/status", headers=session)[0] == 200
    assert 'id="tracker"' in call(port, "GET", "/", headers=session)[1]
    assert call(port, "GET", "/api/v1/services/tracker/status", token=TOKEN)[0] == 200
    forged = {"Cookie": f"musiqued_session_{port}=" + "0" * 43}
    assert call(port, "GET", "/api/v1/status", headers=forged)[0] == 401


def test_token_is_compared_exactly_after_the_scheme(
    serve_in_thread: ServeInThread, lastfm_sim: SimulatedLastfm
) -> None:
    """``Authorization``: the scheme in any case, then one or more spaces, then exactly the
    token (whitespace around the whole value is not part of it, as HTTP says); a tab after
    the scheme, a longer or shorter token, or another scheme get 401. The login form's token
    must match exactly too: no whitespace difference is accepted anywhere. (Each wrong guess
    comes from an address of its own: one client guessing this often is throttled.)"""
    port = free_port()
    serve_in_thread(**lastfm_sim.sections(), http={"listen": f"127.0.0.1:{port}", "token": TOKEN})
    path = "/api/v1/status"
    for accepted in (
        f"Bearer {TOKEN}",
        f"bearer {TOKEN}",
        f"BEARER   {TOKEN}",
        f"Bearer {TOKEN}   ",  # HTTP drops whitespace around a header's value
    ):
        assert call(port, "GET", path, headers={"Authorization": accepted})[0] == 200, accepted
    for number, refused in enumerate(
        (
            f"Bearer\t{TOKEN}",
            f"Bearer  {TOKEN} x",
            f"Bearer {TOKEN[:-1]}",
            f"Bearer {TOKEN}x",
            f"Bearer {TOKEN.upper()}",
            f"Bearer{TOKEN}",
            "Bearer",
            TOKEN,
            "Basic " + base64.b64encode(f"u:{TOKEN}".encode()).decode(),
        ),
        start=2,
    ):
        status, body, _ = call(
            port, "GET", path, headers={"Authorization": refused}, source=f"127.0.0.{number}"
        )
        assert status == 401, refused
        assert body["detail"].startswith("missing or wrong credential")
    for number, wrong in enumerate((f" {TOKEN}", f"{TOKEN} ", f"{TOKEN}\n", TOKEN.upper())):
        status, body, _ = call(
            port,
            "POST",
            "/api/v1/session",
            body={"token": wrong},
            token=None,
            source=f"127.0.1.{number + 2}",
        )
        assert (status, body["detail"]) == (401, "wrong token"), wrong
    assert call(port, "POST", "/api/v1/session", body={"token": TOKEN}, token=None)[0] == 204


def test_page_api_checks_its_parameters(http_port: int) -> None:
    """Bad bodies and parameters get 400/422 with the reason; unknown jobs 404."""
    port = http_port
    status, body, _ = call(port, "POST", "/api/v1/imports", body={"limit": 0})
    assert status == 422
    assert "limit" in body["detail"]
    status, body, _ = call(port, "POST", "/api/v1/imports", body={"limit": 5, "all": True})
    assert (status, "either limit or all" in body["detail"]) == (422, True)
    status, body, _ = call(port, "POST", "/api/v1/imports", body=b"{not json")
    assert (status, body["detail"]) == (400, "the body is not JSON")
    status, body, _ = call(port, "POST", "/api/v1/imports", body=["a"])
    assert status == 422
    status, body, _ = call(port, "POST", "/api/v1/tracker/start", body={"interval_seconds": 0})
    assert status == 422
    assert call(port, "GET", "/api/v1/jobs/77")[0] == 404
    assert call(port, "GET", "/api/v1/jobs/77/log")[0] == 404
    assert call(port, "POST", "/api/v1/jobs/77/pause", body={})[0] == 404
    assert call(port, "GET", "/api/v1/jobs?limit=abc")[0] == 422
    assert call(port, "GET", "/api/v1/albums?limit=3")[1] == []
    assert call(port, "GET", "/api/v1/enrichment")[1]["pending"] == 0


def test_page_never_parses_strings_as_html() -> None:
    """The page's scripts never use the APIs that parse markup (so no string from Last.fm can
    become an element) and contain no inline script or style attribute."""
    forbidden = ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(")
    for path in Path(STATIC_DIR).glob("*.js"):
        source = path.read_text(encoding="utf-8")
        for word in forbidden:
            assert word not in source, f"{path.name} uses {word}"
    for path in Path(STATIC_DIR).glob("*.html"):
        source = path.read_text(encoding="utf-8")
        assert "<script>" not in source
        assert " on" + "click=" not in source
        assert "style=" not in source
