"""The HTTP API is never a wider door than the control socket: it always needs a credential
(the configured token, or one the daemon makes), browsers log in through a one-time link
from ``musiquectl web``, sessions are the daemon's own random ids, and guessing is slow.

The services, the control socket and the HTTP listener are served in the test's process
(``musiquectl`` runs as a process against that socket); a configuration error is checked
through the daemon's command in-process."""

from __future__ import annotations

import http.client
import json
import os
import stat
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog
from click.testing import CliRunner

from musiqued import wire
from musiqued.app.cli import main
from musiqued.config import HttpConfig
from musiqued.http.throttle import (
    CLIENT_BURST,
    LOG_INTERVAL_S,
    OVERALL_BURST,
    OVERALL_REFILL_S,
    AuthThrottle,
)
from tests.fixtures.threaded import ServeInThread, ThreadedDaemon
from tests.rawrpc import call_as, run_as
from tests.support import VENV_BIN, base_sections, free_port, write_config


def fetch(
    port: int,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    *,
    body: Any = None,
    source: str = "127.0.0.1",
) -> tuple[int, Any, http.client.HTTPMessage]:
    """One request on its own connection, redirects not followed: (status, body, headers);
    ``body`` is sent as JSON; ``source`` is the loopback address it comes from."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(source, 0))
    sent = dict(headers or {})
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        sent["Content-Type"] = "application/json"
    try:
        conn.request(method, path, body=data, headers=sent)
        response = conn.getresponse()
        raw = response.read()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", errors="replace")
        return response.status, body, response.headers
    finally:
        conn.close()


def _path_of(url: str) -> str:
    return url.split("/", 3)[3].join(("/", ""))


def reload_http(daemon: ThreadedDaemon, **http: Any) -> None:
    """What a reload hands the HTTP listener: its new ``[http]`` section."""
    assert daemon.http is not None
    daemon.run(daemon.http.reconfigure(HttpConfig.model_validate(http)))


def test_without_a_token_the_daemon_makes_one_and_requires_it(
    serve_in_thread: ServeInThread, workdir: Path
) -> None:
    """With no ``[http] token`` the daemon makes one (0600, ≥ 128 bits, beside the database,
    kept across restarts): every API path answers 401 without it (reads and actions alike)
    and 200 with it as a bearer token, and a user the socket refuses cannot read it."""
    workdir.chmod(0o755)
    port = free_port()
    daemon = serve_in_thread(http={"listen": f"127.0.0.1:{port}"})
    token_file = workdir / "http-token"
    info = token_file.stat()
    assert stat.S_IMODE(info.st_mode) == 0o600
    token = daemon.http_token()
    assert len(token) >= 22  # 22 URL-safe characters carry 132 bits
    for method, path in (
        ("GET", "/api/v1/status"),
        ("GET", "/api/v1/history?limit=5"),
        ("GET", "/api/v1/services/tracker/status"),
        ("POST", "/api/v1/services/tracker/start"),
        ("POST", "/api/v1/imports"),
    ):
        status, body, headers = fetch(port, method, path)
        assert status == 401, path
        assert "musiquectl web" in body["detail"]
        assert headers["WWW-Authenticate"].startswith("Bearer")
    assert daemon.call("tracker.status")["running"] is False
    status, body, _ = fetch(port, "GET", "/api/v1/status", {"Authorization": f"Bearer {token}"})
    assert status == 200

    def read_token(out: int) -> int:
        try:
            token_file.read_text()
        except PermissionError:
            return 13
        return 0

    assert run_as(read_token)[0] == 13
    daemon.restart()
    assert daemon.http_token() == token


def test_a_short_token_is_a_config_error(workdir: Path) -> None:
    """A configured token under 16 characters stops the daemon: exit 78, one line naming
    the key and the minimum."""
    config = write_config(
        workdir / "musiqued.toml",
        base_sections(workdir, http={"listen": f"127.0.0.1:{free_port()}", "token": "tok-abc"}),
    )
    result = CliRunner().invoke(main, ["--config", str(config)])
    assert result.exit_code == 78
    (line,) = result.stderr.splitlines()
    assert line.startswith("musiqued: ")
    assert "http.token" in line
    assert "at least 16" in line
    assert not (workdir / "d.sock").exists()


def test_musiquectl_web_logs_a_browser_in_once(
    serve_in_thread: ServeInThread, workdir: Path
) -> None:
    """``musiquectl web`` prints a one-time link; visiting it sets a session cookie named
    after the port (HttpOnly, SameSite=Strict, Path=/, expiring after ``session_days``) and
    redirects to the page; the link works once; the cookie opens the API and the page; the
    session id is random, not the token; logging out ends it.

    With $DISPLAY (or $WAYLAND_DISPLAY) set, ``musiquectl web`` prints the link and hands
    it to xdg-open; without a display (over SSH), or with --no-open, it only prints it."""
    port = free_port()
    daemon = serve_in_thread(socket=True, http={"listen": f"127.0.0.1:{port}", "session_days": 2})
    shown = daemon.ctl("web", "--no-open")
    assert shown.returncode == 0, shown.stderr
    url = shown.stdout.strip()
    assert url.startswith(f"http://127.0.0.1:{port}/login?ticket=")

    status, _, headers = fetch(port, "GET", _path_of(url))
    assert status == 303
    assert headers["Location"] == "/"
    cookie = headers["Set-Cookie"]
    name, _, rest = cookie.partition("=")
    assert name == f"musiqued_session_{port}"
    value = rest.split(";", 1)[0]
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite", "path", "max-age"} <= attributes
    assert "SameSite=Strict" in cookie
    assert "Path=/" in cookie
    assert "Max-Age=172800" in cookie
    assert daemon.http_token() not in value
    assert len(value) >= 22

    session = {"Cookie": f"{name}={value}"}
    assert fetch(port, "GET", "/api/v1/status", session)[0] == 200
    assert 'id="tracker"' in fetch(port, "GET", "/", session)[1]
    again, body, _ = fetch(port, "GET", _path_of(url))
    assert again == 401
    assert "musiquectl web" in body["detail"]

    second_url = daemon.ctl("web", "--no-open").stdout.strip()
    second = fetch(port, "GET", _path_of(second_url))[2]["Set-Cookie"].split(";", 1)[0]
    assert second != f"{name}={value}"

    status, _, _ = fetch(port, "DELETE", "/api/v1/session", session)
    assert status == 204
    assert fetch(port, "GET", "/api/v1/status", session)[0] == 401
    assert fetch(port, "GET", "/api/v1/status", {"Cookie": second})[0] == 200

    bin_dir = workdir / "bin"
    bin_dir.mkdir()
    opened = workdir / "opened"
    opener = bin_dir / "xdg-open"
    opener.write_text(f'#!/bin/sh\nprintf "%s\\n" "$1" >> {opened}\n')
    opener.chmod(0o755)
    base = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    base["PATH"] = f"{bin_dir}:{base['PATH']}"

    def web(*args: str, **env: str) -> str:
        done = subprocess.run(
            [str(VENV_BIN / "musiquectl"), "--socket", str(daemon.socket_path), "web", *args],
            env={**base, **env},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert web().startswith(f"http://127.0.0.1:{port}/login?ticket=")
    assert web("--no-open", DISPLAY=":0").startswith(f"http://127.0.0.1:{port}/login?")
    printed = web(WAYLAND_DISPLAY="wayland-0")
    assert printed.startswith(f"http://127.0.0.1:{port}/login?ticket=")
    # Any opener started by the calls before would have written before this one's.
    daemon.wait_until(lambda: opened.exists() and printed in opened.read_text())
    assert opened.read_text().splitlines() == [printed]
    assert fetch(port, "GET", _path_of(printed))[0] == 303


def test_only_users_the_socket_admits_get_a_login_link(
    serve_in_thread: ServeInThread, workdir: Path
) -> None:
    """A user the socket refuses gets -32005 for ``http.login_url``; one it admits gets a
    link. With ``[http] listen`` unset by a reload, the link is refused with the reason."""
    workdir.chmod(0o755)
    port = free_port()
    daemon = serve_in_thread(
        socket=True, daemon={"socket_mode": "0666"}, http={"listen": f"127.0.0.1:{port}"}
    )
    answer = call_as(daemon.socket_path, method="http.login_url")
    assert answer["error"]["code"] == wire.FORBIDDEN
    assert daemon.call("http.login_url")["url"].startswith(f"http://127.0.0.1:{port}/login?")

    reload_http(daemon)  # [http] listen unset
    shown = daemon.ctl("web", "--no-open")
    assert shown.returncode == 1
    assert "[http] listen" in shown.stderr


def test_a_new_token_ends_every_session(serve_in_thread: ServeInThread) -> None:
    """A reload that changes the token (the listener handed its new ``[http]`` section, as a
    reload does) logs every browser out and refuses the old token; one that keeps it keeps
    the sessions, and so does a restart (the daemon keeps them in
    a 0600 file that does not hold the ids themselves)."""
    port = free_port()
    old, new = "first-token-0123456789", "second-token-0123456789"
    daemon = serve_in_thread(http={"listen": f"127.0.0.1:{port}", "token": old})
    link = daemon.http_login_url()
    cookie = fetch(port, "GET", _path_of(link))[2]["Set-Cookie"].split(";", 1)[0]
    session = {"Cookie": cookie}
    assert fetch(port, "GET", "/api/v1/status", session)[0] == 200

    reload_http(daemon, listen=f"127.0.0.1:{port}", token=old)
    assert fetch(port, "GET", "/api/v1/status", session)[0] == 200
    daemon.restart()
    assert fetch(port, "GET", "/api/v1/status", session)[0] == 200
    kept = daemon.workdir / "http-sessions"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert cookie.split("=", 1)[1] not in kept.read_text()

    reload_http(daemon, listen=f"127.0.0.1:{port}", token=new)
    assert fetch(port, "GET", "/api/v1/status", session)[0] == 401
    assert fetch(port, "GET", "/api/v1/status", {"Authorization": f"Bearer {old}"})[0] == 401
    assert fetch(port, "GET", "/api/v1/status", {"Authorization": f"Bearer {new}"})[0] == 200


def test_guessing_is_throttled_and_logged(serve_in_thread: ServeInThread) -> None:
    """1,000 wrong bearer tokens from one client: only the first few are compared (401), the
    rest answered 429 with Retry-After; even the right token waits its turn then, while a
    session keeps working. Guesses from many clients together are held to the overall
    rate. Failures are logged at warning with counts (the first at once, the rest by the
    time the daemon stops)."""
    port = free_port()
    token = "the-right-token-0123456789"
    daemon = serve_in_thread(http={"listen": f"127.0.0.1:{port}", "token": token})
    link = daemon.http_login_url()
    session = {"Cookie": fetch(port, "GET", _path_of(link))[2]["Set-Cookie"].split(";", 1)[0]}

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    statuses: dict[int, int] = {}
    retry_after = set()
    for guess in range(1000):
        conn.request("GET", "/api/v1/status", headers={"Authorization": f"Bearer wrong-{guess}"})
        response = conn.getresponse()
        response.read()
        statuses[response.status] = statuses.get(response.status, 0) + 1
        if response.status == 429:
            retry_after.add(int(response.headers["Retry-After"]))
    conn.close()
    assert statuses == {401: CLIENT_BURST, 429: 1000 - CLIENT_BURST}
    assert min(retry_after) >= 1
    right = {"Authorization": f"Bearer {token}"}
    assert fetch(port, "GET", "/api/v1/status", right)[0] == 429
    assert fetch(port, "GET", "/api/v1/status", session)[0] == 200

    started = time.monotonic()
    compared = 0
    for client in range(2, 102):
        for guess in range(3):
            status = fetch(
                port,
                "POST",
                "/api/v1/session",
                body={"token": f"wrong-{client}-{guess}"},
                source=f"127.0.2.{client}",
            )[0]
            assert status in (401, 429)
            compared += status == 401
    # 100 clients could make 3 guesses each on their own; together they get at most the
    # overall burst and what refills meanwhile.
    refilled = (time.monotonic() - started) / OVERALL_REFILL_S
    assert compared <= OVERALL_BURST + refilled + 1

    failures = CLIENT_BURST + compared
    refusals = (1000 - CLIENT_BURST) + 1 + (300 - compared)
    first = daemon.logged("http authentication failed")[0]
    assert (first["log_level"], first["failures"], first["refused_429"]) == ("warning", 1, 0)

    daemon.stop()
    lines = daemon.logged("http authentication failed")
    assert all(line["log_level"] == "warning" for line in lines)
    assert sum(line["failures"] for line in lines) == failures
    assert sum(line["refused_429"] for line in lines) == refusals


def test_failures_are_logged_once_per_interval_with_counts() -> None:
    """Failed guesses and refusals are logged one line per 10 s at most, each line counting
    what happened since the one before; what is pending is written on shutdown."""
    now = [0.0]
    throttle = AuthThrottle(lambda: now[0])
    with structlog.testing.capture_logs() as logs:
        for second in range(25):
            now[0] = float(second)
            throttle.failed(f"127.0.0.{second}")
        throttle.write()
    lines = [(e["log_level"], e["failures"], e["clients"]) for e in logs]
    assert LOG_INTERVAL_S == 10
    # A line at 0 s, 10 s and 20 s; the four seconds after 20 s on shutdown.
    assert lines == [("warning", 1, 1), ("warning", 10, 10), ("warning", 10, 10), ("warning", 4, 4)]


def _time_for_guesses(client_of: Callable[[int], str], count: int = 1000) -> float:
    """Seconds, on the throttle's own (injected) clock, that ``count`` wrong guesses take
    when each is made as soon as the throttle lets it be compared."""
    now = [0.0]
    throttle = AuthThrottle(lambda: now[0])
    guesses = 0
    while guesses < count:
        client = client_of(guesses)
        wait = throttle.retry_after(client)
        if wait > 0:
            now[0] += wait
            continue
        throttle.failed(client)
        guesses += 1
    return now[0]


def test_a_thousand_guesses_take_at_least_100_seconds() -> None:
    """However they are spread (one client, or a new client for every guess), 1,000 wrong
    guesses cannot all be compared in under 100 s."""
    assert _time_for_guesses(lambda _: "127.0.0.1") >= 100
    assert _time_for_guesses(lambda guess: f"10.0.{guess // 250}.{guess % 250}") >= 100
