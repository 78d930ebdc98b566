"""Secrets never reach error text: a Last.fm endpoint that redirects to itself, a host name
that does not resolve and a TLS server that is not trusted each leave an error in words, and
no API key, API secret, session key or signature anywhere a user looks."""

from __future__ import annotations

import http.server
import json
import ssl
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import trustme

from tests.support import (
    HTTP_TOKEN,
    DaemonProcess,
    base_sections,
    bearer,
    free_port,
    short_tmp,
    write_config,
)

API_KEY = "apikey0123456789abcdef0123456789"
API_SECRET = "apisecret0123456789abcdef012345"
SESSION_KEY = "sessionkey0123456789abcdef01234"
SECRETS = (API_KEY, API_SECRET, SESSION_KEY, "api_sig", "api_key=", "sk=")


class _Redirecting(http.server.BaseHTTPRequestHandler):
    """Answers every request with a redirect to itself, query and all."""

    def do_GET(self) -> None:
        self.send_response(302)
        self.send_header("Location", self.path)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@contextmanager
def _serving(tls: ssl.SSLContext | None = None) -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Redirecting)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def untrusted_tls() -> ssl.SSLContext:
    """A server certificate from a CA nobody trusts."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    trustme.CA().issue_cert("127.0.0.1").configure_cert(context)
    return context


def _sections(workdir: Path, api_url: str, http_port: int) -> dict[str, dict[str, object]]:
    return base_sections(
        workdir,
        lastfm={
            "api_key": API_KEY,
            "api_secret": API_SECRET,
            "session_key": SESSION_KEY,
            "username": "someone",
            "api_url": api_url,
            "requests_per_second": 1000.0,
        },
        tracker={"interval_seconds": 1},
        http={"listen": f"127.0.0.1:{http_port}", "token": HTTP_TOKEN},
    )


def _assert_no_secret(where: str, text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} leaked into {where}: {text[:300]}"


@pytest.mark.slow
def test_upstream_failures_leave_no_secret_anywhere(untrusted_tls: ssl.SSLContext) -> None:
    """A Last.fm endpoint that redirects to itself, a host name that does not resolve and a
    TLS server that is not trusted, in turn (the config file changed and reloaded between
    them): after each the tracker's error says what happened in words; the tracker status
    (RPC, musiquectl, HTTP), daemon.status and the whole log hold no secret."""
    http_port = free_port()
    with short_tmp() as workdir, _serving() as plain, _serving(untrusted_tls) as tls:
        cases = [
            (f"http://127.0.0.1:{plain}/2.0/", "redirect"),
            ("http://lastfm-host.invalid/2.0/", "host name was not found"),
            (f"https://127.0.0.1:{tls}/2.0/", "TLS certificate is not trusted"),
        ]
        config = write_config(workdir / "musiqued.toml", _sections(workdir, cases[0][0], http_port))
        daemon = DaemonProcess(workdir, config, workdir / "d.sock").start(hooks=True)
        try:
            daemon.call("test.lastfm_retry", {})  # each failure said after brief retries
            daemon.call("tracker.start")
            for api_url, reason in cases:
                write_config(config, _sections(workdir, api_url, http_port))
                assert daemon.call("daemon.reload")["status"] == "reloaded"
                status = daemon.wait_until(
                    lambda reason=reason: (
                        reason in ((s := daemon.call("tracker.status"))["last_error"] or "") and s
                    ),
                    timeout=60,
                )
                assert "Last.fm" in status["last_error"]
                shown = daemon.ctl("tracker", "status")
                assert reason in shown.stdout
                with urllib.request.urlopen(
                    urllib.request.Request(
                        f"http://127.0.0.1:{http_port}/api/v1/services/tracker/status",
                        headers=bearer(),
                    ),
                    timeout=10,
                ) as answer:
                    http_status = answer.read().decode()
                for where, text in (
                    ("tracker.status", json.dumps(status)),
                    ("daemon.status", json.dumps(daemon.call("daemon.status"))),
                    ("musiquectl tracker status", shown.stdout + shown.stderr),
                    ("HTTP tracker status", http_status),
                ):
                    _assert_no_secret(f"{where} ({reason})", text)
        finally:
            daemon.stop()
        _assert_no_secret("the log", daemon.logs())
