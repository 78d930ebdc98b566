"""Slow or many HTTP clients cannot take the daemon's descriptors: the control socket keeps
working during a flood of half-sent requests, stalled requests and idle connections are
closed after ``[http] request_timeout_seconds`` / ``idle_timeout_seconds``, at most
``max_connections`` are held (``max_websockets`` of them WebSockets), and a page following
events is never cut off by those timeouts."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import select
import socket
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from tests.fixtures.daemon import StartDaemon
from tests.fixtures.lastfm import SimulatedLastfm
from tests.fixtures.threaded import ServeInThread, ThreadedDaemon
from tests.flood_support import (
    HALF_SENT,
    SYSTEMD_DEFAULT_NOFILE,
    Ending,
    allow_descriptors,
    close_all,
    fd_count,
    nofile_soft_limit,
    open_idle_keepalives,
    open_slow,
    read_answer,
    wait_closed,
)
from tests.support import HTTP_TOKEN, bearer, free_port

FLOOD = 1100
MAX_CONNECTIONS = 128  # the default
# Margin for a loaded 2-core machine between a deadline and the close being seen here.
SLACK_S = 3.0


def _http_section(port: int, request_s: float, idle_s: float, **more: Any) -> dict[str, Any]:
    """The ``[http]`` section: the listener on ``port`` with the test token and these
    timeouts."""
    return {
        "listen": f"127.0.0.1:{port}",
        "token": HTTP_TOKEN,
        "request_timeout_seconds": request_s,
        "idle_timeout_seconds": idle_s,
        **more,
    }


def _json_answer(raw: bytes) -> tuple[int, dict[str, Any]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body)


def _get(port: int, path: str) -> tuple[int, dict[str, Any]]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            f"Authorization: Bearer {HTTP_TOKEN}\r\n\r\n".encode()
        )
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    return _json_answer(raw)


def _failures_logged(daemon: ThreadedDaemon, caplog: pytest.LogCaptureFixture) -> list[Any]:
    """What the daemon logged with a traceback, or at error level (its own log and
    aiohttp's)."""
    own = [e for e in daemon.logs if e.get("exc_info") or e.get("exception")]
    own += [e for e in daemon.logs if e.get("log_level") in ("error", "critical")]
    return own + [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


def _closed_between(ending: Ending | None, earliest: float, latest: float) -> bool:
    return ending is not None and earliest <= ending.at <= latest


def test_half_sent_request_flood_leaves_the_control_socket_working(
    start_daemon: StartDaemon,
) -> None:
    """With systemd's default descriptor limit, 1,100 requests whose headers never end and
    20 idle keep-alive connections: `musiquectl status` and RPC calls keep working, the
    daemon holds at most 128 of them (a new one is answered 503 in JSON), its descriptors
    stay bounded, each stalled request is dropped after the request timeout and each idle
    connection after the idle timeout; then HTTP answers again."""
    request_timeout, idle_timeout = 6.0, 8.0
    port = free_port()
    allow_descriptors(FLOOD + 100)
    with nofile_soft_limit(SYSTEMD_DEFAULT_NOFILE):
        daemon = start_daemon(http=_http_section(port, request_timeout, idle_timeout))
    assert daemon.proc is not None
    pid = daemon.proc.pid
    quiet_fds = fd_count(pid)

    opened_at = time.monotonic()
    idle = open_idle_keepalives(port, 20)
    idle_done = time.monotonic()
    stalled = open_slow(port, FLOOD, HALF_SENT)
    flood_done = time.monotonic()
    try:
        assert (len(idle), len(stalled)) == (20, FLOOD)
        # First, while the flood's first requests still hold every place (until their
        # request timeout): one more is refused.
        status, body = _get(port, "/api/v1/status")
        assert status == 503
        assert body["kind"] == "too_many_connections"
        assert "the limit is 128" in body["detail"]
        assert fd_count(pid) <= quiet_fds + MAX_CONNECTIONS + 8

        ctl = daemon.ctl("status", timeout=30)
        assert ctl.returncode == 0, ctl.stderr
        assert "musiqued" in ctl.stdout
        for _ in range(50):  # each on a new connection, as each musiquectl run makes
            assert daemon.call("daemon.status")["version"]
        assert fd_count(pid) <= quiet_fds + MAX_CONNECTIONS + 8

        endings = wait_closed(stalled + idle, idle_timeout + 2 * SLACK_S + flood_done - opened_at)
    finally:
        close_all(stalled + idle)

    stalled_endings, idle_endings = endings[:FLOOD], endings[FLOOD:]
    refused = [e for e in stalled_endings if e is not None and e.answer]
    dropped = [e for e in stalled_endings if e is not None and not e.answer]
    assert all(e.answer.startswith(b"HTTP/1.1 503 ") for e in refused)
    # The 128 places: 20 idle connections, then the first 108 stalled requests (more if
    # connecting took longer than the request timeout and places freed up meanwhile).
    assert len(dropped) >= MAX_CONNECTIONS - len(idle)
    assert len(refused) == FLOOD - len(dropped)
    for ending in dropped:
        assert _closed_between(
            ending, opened_at + request_timeout - 0.5, flood_done + request_timeout + SLACK_S
        ), ending
    for ending in idle_endings:
        assert _closed_between(
            ending, opened_at + idle_timeout - 0.5, idle_done + idle_timeout + SLACK_S
        ), ending
        assert ending is not None
        assert ending.answer == b""

    daemon.wait_until(lambda: fd_count(pid) <= quiet_fds + 2)
    assert _get(port, "/api/v1/status")[0] == 200
    refusals = [r for r in daemon.log_records() if r.get("event", "").startswith("http conn")]
    assert len(refusals) <= 4, refusals  # a line a minute with a count, not one per client
    assert "Traceback" not in daemon.logs()


# The quick daemon's timeouts: short, the behaviour being the same at any scale.
REQUEST_S = 1.0
IDLE_S = 1.5

QuickDaemon = Callable[..., tuple[int, ThreadedDaemon]]


@pytest.fixture
def quick_daemon(serve_in_thread: ServeInThread, lastfm_sim: SimulatedLastfm) -> QuickDaemon:
    """``quick_daemon(request_s=REQUEST_S)``: the HTTP listener with short timeouts
    (``request_s`` per request, ``IDLE_S`` idle) and 2 WebSockets, served in the test's
    process; its port and the daemon."""

    def serve(request_s: float = REQUEST_S) -> tuple[int, ThreadedDaemon]:
        port = free_port()
        daemon = serve_in_thread(
            **lastfm_sim.sections(),
            http=_http_section(port, request_s, IDLE_S, max_websockets=2),
        )
        return port, daemon

    return serve


def test_a_stalled_body_is_answered_408_and_closed(
    quick_daemon: QuickDaemon, caplog: pytest.LogCaptureFixture
) -> None:
    """A POST whose body stops halfway gets a JSON 408 naming the timeout once the request
    timeout has passed since its first byte, and its connection is closed."""
    port, daemon = quick_daemon()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        started = time.monotonic()
        sock.sendall(
            b"POST /api/v1/session HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n" + b'{"token": "ab'
        )
        ending = wait_closed([sock], REQUEST_S + 2 * SLACK_S)[0]
    assert _closed_between(ending, started + REQUEST_S - 0.5, started + REQUEST_S + SLACK_S), ending
    assert ending is not None
    status, body = _json_answer(ending.answer)
    assert status == 408
    assert body == {
        "detail": f"the request did not arrive whole within {REQUEST_S:g} s",
        "kind": "request_timeout",
    }
    assert _get(port, "/api/v1/status")[0] == 200
    assert not _failures_logged(daemon, caplog)


def test_headers_dripping_in_do_not_extend_the_deadline(quick_daemon: QuickDaemon) -> None:
    """A client sending its headers a byte every 0.2 s is dropped once the request timeout
    (2 s) has passed since its first byte, however long it keeps dripping."""
    port, _ = quick_daemon(request_s=2)
    header = b"GET /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 200
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        started = time.monotonic()
        closed_at = None
        while closed_at is None and time.monotonic() < started + 2 + 2 * SLACK_S:
            # The pace of the drip: wait 0.2 s for the daemon to close, else send a byte.
            readable, _, _ = select.select([sock], [], [], 0.2)
            try:
                if readable:
                    assert sock.recv(1024) == b""
                    closed_at = time.monotonic()
                else:
                    sock.sendall(header[sent : sent + 1])
                    sent += 1
            except (ConnectionResetError, BrokenPipeError):
                closed_at = time.monotonic()
    assert closed_at is not None
    assert started + 1.5 <= closed_at <= started + 2 + SLACK_S
    assert sent >= 7


def test_a_connection_that_sends_nothing_is_closed_when_idle(quick_daemon: QuickDaemon) -> None:
    """A connection opened and left silent, and one kept alive after an answer, are both
    closed after the idle timeout, with nothing sent."""
    port, _ = quick_daemon()
    started = time.monotonic()
    silent = open_slow(port, 1, b"")
    kept = open_idle_keepalives(port, 1)
    try:
        endings = wait_closed(silent + kept, IDLE_S + 2 * SLACK_S)
    finally:
        close_all(silent + kept)
    for ending in endings:
        assert _closed_between(ending, started + IDLE_S - 0.5, started + IDLE_S + SLACK_S), ending
        assert ending is not None
        assert ending.answer == b""


def _websocket_refused(port: int) -> tuple[int, dict[str, Any]]:
    """A WebSocket handshake that is expected to fail: its status and JSON answer."""
    key = base64.b64encode(os.urandom(16)).decode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            f"GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Key: {key}\r\nOrigin: http://127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {HTTP_TOKEN}\r\n\r\n".encode()
        )
        return _json_answer(read_answer(sock))


async def _follow_events(port: int) -> list[str]:
    own = f"http://127.0.0.1:{port}"
    url = f"{own}/api/v1/events"
    seen: list[str] = []
    async with aiohttp.ClientSession(headers=bearer()) as session:
        first = await session.ws_connect(url, origin=own)
        second = await session.ws_connect(url, origin=own)
        status, body = await asyncio.to_thread(_websocket_refused, port)
        assert (status, body["kind"]) == (503, "too_many_websockets")
        assert "the limit is 2" in body["detail"]
        # Outlive both timeouts (request and idle): proving nothing cuts a page off.
        await asyncio.sleep(max(REQUEST_S, IDLE_S) + 1.0)
        async with session.post(f"{own}/api/v1/tracker/start", json={}) as response:
            assert response.status == 200, await response.text()
        async with asyncio.timeout(20):
            while "tracker" not in seen:
                seen.append((await first.receive_json())["topic"])
        await second.close()
        third = await session.ws_connect(url, origin=own)
        seen.append((await third.receive_json())["topic"])
        await third.close()
        await first.close()
    return seen


def test_websockets_are_capped_and_outlive_the_timeouts(quick_daemon: QuickDaemon) -> None:
    """With ``max_websockets = 2``, a third events WebSocket is refused 503; the two open
    ones still deliver events after the request and idle timeouts have passed; closing one
    lets another open."""
    port, _ = quick_daemon()
    seen = asyncio.run(_follow_events(port))
    assert seen[0] == "hello"
    assert "tracker" in seen
    assert seen[-1] == "hello"


def test_the_cap_is_at_most_half_the_descriptor_limit(start_daemon: StartDaemon) -> None:
    """Started with 120 descriptors (``ulimit -n 120``), the daemon holds at most 60 HTTP
    connections whatever ``max_connections`` says, and logs that it lowered the cap; the
    61st is answered 503 naming the limit, and the control socket still answers."""
    port = free_port()
    with nofile_soft_limit(120):
        daemon = start_daemon(
            http={"listen": f"127.0.0.1:{port}", "max_connections": 128, "token": HTTP_TOKEN}
        )
    held = open_slow(port, 60, HALF_SENT)
    try:
        status, body = _get(port, "/api/v1/status")
        assert (status, body["kind"]) == (503, "too_many_connections")
        assert "the limit is 60" in body["detail"]
        assert daemon.call("daemon.status")["version"]
    finally:
        close_all(held)
    lowered = [
        r for r in daemon.log_records() if r.get("event", "").startswith("http max_connections")
    ]
    assert [(r["configured"], r["used"]) for r in lowered] == [(128, 60)]


def test_a_body_over_64_kib_is_refused_413(quick_daemon: QuickDaemon) -> None:
    """Every body the API takes is a small JSON object: 65 KiB gets a JSON 413, and the
    daemon still answers."""
    port, daemon = quick_daemon()
    body = json.dumps({"token": "x" * 65 * 1024}).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"POST /api/v1/session HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            b"Content-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        ending = wait_closed([sock], 10)[0]
    assert ending is not None
    status, answer = _json_answer(ending.answer)
    assert status == 413
    assert answer["detail"] == "Request Entity Too Large"
    assert daemon.call("daemon.status")["version"]
