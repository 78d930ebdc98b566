"""``musiquectl notify``: freedesktop notifications over a real session D-Bus
(``dbus-daemon --session``) to a notification server that records what it gets.

``musiquectl`` is a process of its own; the daemon it follows runs in the test's process
(``tests/fixtures/whole_daemon.py``) except where its stop by SIGTERM is what is checked."""

from __future__ import annotations

import http.server
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import musiquectl.cli  # noqa: F401 (the command modules import it: load it first)
from musiquectl.commands.notify import cover_file, job_notification, scrobble_notification
from tests.dbus_support import NotificationServer, session_bus
from tests.fixtures.daemon import StartDaemon
from tests.fixtures.lastfm import SimulatedLastfm
from tests.fixtures.whole_daemon import ThreadedWholeDaemon, daemon_in_thread
from tests.support import VENV_BIN


@pytest.fixture
def followed(workdir: Path, lastfm_sim: SimulatedLastfm) -> Iterator[ThreadedWholeDaemon]:
    """The whole daemon in the test's process, on ``lastfm_sim``, enrichment off."""
    with daemon_in_thread(workdir, **lastfm_sim.sections(), enrichment={"enabled": False}) as d:
        yield d


@pytest.fixture
def notifications() -> Iterator[tuple[str, NotificationServer]]:
    with session_bus() as address:
        server = NotificationServer(address)
        try:
            yield address, server
        finally:
            server.close()


def test_new_scrobbles_and_ended_imports_are_notified(
    notifications: tuple[str, NotificationServer],
    followed: ThreadedWholeDaemon,
    lastfm_sim: SimulatedLastfm,
    tmp_path: Path,
) -> None:
    """A new scrobble becomes a notification titled with the track, the artist and album
    in the body with markup escaped and control characters visible; an import that ends
    becomes one with its figures."""
    address, server = notifications
    lastfm_sim.reset(size=300, seed=8)
    daemon = followed
    daemon.call("import.start", {"all": True})
    daemon.wait_until(lambda: daemon.call("jobs.list")[0]["state"] == "done")
    proc = subprocess.Popen(
        [str(VENV_BIN / "musiquectl"), "--socket", str(daemon.socket_path), "notify"],
        env={**os.environ, "DBUS_SESSION_BUS_ADDRESS": address, "XDG_CACHE_HOME": str(tmp_path)},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        assert "notifying" in proc.stderr.readline()  # subscribed: events from now on count
        daemon.call("tracker.start", {"interval_seconds": 1})
        lastfm_sim.add_rows(
            [
                {
                    "timestamp": int(time.time()),
                    "artist": "<b>Bold</b> & Sons\x1b[2J",
                    "title": "<i>Title</i>",
                    "album": "<img src='x'>",
                }
            ]
        )
        (scrobble,) = server.wait_for(1)
        assert scrobble.app_name == "musiqued"
        assert scrobble.summary == "<i>Title</i>"
        assert scrobble.body == "&lt;b&gt;Bold&lt;/b&gt; &amp; Sons\u241b[2J — &lt;img src='x'&gt;"
        assert "image-path" not in scrobble.hints

        daemon.call("tracker.stop")
        job_id = daemon.call("import.start", {"limit": 50, "skip_existing": False})["job_id"]
        ended = server.wait_for(2)[1]
        job = daemon.call("jobs.get", {"job_id": job_id})
        assert ended.summary == f"Import #{job_id} finished"
        assert ended.body == (
            f"{job['tracks_imported']} imported, {job['tracks_skipped']} skipped, 0 errors; "
            "301 scrobbles on Last.fm"
        )
        assert ended.hints["urgency"] == ("y", 1)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)
        if proc.stderr is not None:
            proc.stderr.close()
    assert len(server.received) == 2


def test_without_a_session_bus_it_says_so(workdir: Path) -> None:
    """Outside a desktop session: a one-line error naming what is missing, exit 1."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR")
    }
    with daemon_in_thread(workdir) as daemon:
        result = subprocess.run(
            [str(VENV_BIN / "musiquectl"), "--socket", str(daemon.socket_path), "notify"],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert result.returncode == 1
    assert "no session D-Bus" in result.stderr


def test_texts_are_plain() -> None:
    """Bodies escape markup; summaries are plain text with control characters visible."""
    summary, body = scrobble_notification({"artist": "A&B", "title": "x\x07", "album": None})
    assert (summary, body) == ("x\u2407", "A&amp;B")
    summary, body = job_notification(
        {
            "job_id": 3,
            "state": "failed",
            "tracks_imported": 1200,
            "tracks_skipped": 0,
            "tracks_errors": 0,
            "total_scrobbles": 5000,
            "error": "Last.fm said <no>",
        }
    )
    assert summary == "Import #3 failed"
    assert body.endswith("\nLast.fm said &lt;no&gt;")
    assert "1,200 imported" in body


class _Images(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body, kind = (
            (b"\x89PNG fake", "image/png") if self.path == "/cover" else (b"<html>", "text/html")
        )
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


def test_cover_is_fetched_once_and_only_if_an_image(tmp_path: Path) -> None:
    """An image URL is downloaded into the cache once; a page that is not an image, or a
    scheme other than http(s), gives no cover."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Images)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        first = cover_file(f"{base}/cover", tmp_path)
        assert first is not None
        assert first.read_bytes() == b"\x89PNG fake"
        server.shutdown()
        assert cover_file(f"{base}/cover", tmp_path) == first  # from the cache
    finally:
        server.shutdown()
        server.server_close()
    assert cover_file(f"{base}/page", tmp_path) is None
    assert cover_file("file:///etc/passwd", tmp_path) is None


def test_a_scrobble_with_very_long_names_is_notified(
    notifications: tuple[str, NotificationServer],
    followed: ThreadedWholeDaemon,
    lastfm_sim: SimulatedLastfm,
    tmp_path: Path,
) -> None:
    """A scrobble whose album (505 characters) and artist (600) are longer than any search
    the daemon takes is notified like any other, and notify goes on to the next one: it
    never fails on a user's data."""
    address, server = notifications
    lastfm_sim.reset(size=20, seed=3)
    daemon = followed
    daemon.call("import.start", {"all": True})
    daemon.wait_until(lambda: daemon.call("jobs.list")[0]["state"] == "done")
    proc = subprocess.Popen(
        [str(VENV_BIN / "musiquectl"), "--socket", str(daemon.socket_path), "notify"],
        env={**os.environ, "DBUS_SESSION_BUS_ADDRESS": address, "XDG_CACHE_HOME": str(tmp_path)},
        stderr=subprocess.PIPE,
        text=True,
    )
    album, artist = "Ä" + "a" * 504, "B" * 600
    try:
        assert proc.stderr is not None
        assert "notifying" in proc.stderr.readline()
        daemon.call("tracker.start", {"interval_seconds": 1})
        now = int(time.time())
        lastfm_sim.add_rows(
            [{"timestamp": now - 1, "artist": artist, "title": "Long", "album": album}]
        )
        (first,) = server.wait_for(1)
        assert first.summary == "Long"
        assert first.body == f"{artist} — {album}"
        lastfm_sim.add_rows([{"timestamp": now, "artist": "Short", "title": "Next", "album": "X"}])
        second = server.wait_for(2)[1]
        assert second.summary == "Next"
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)
        if proc.stderr is not None:
            proc.stderr.close()


def test_a_clean_stop_with_followers_connected_logs_no_error(
    notifications: tuple[str, NotificationServer], start_daemon: StartDaemon
) -> None:
    """SIGTERM while ``status --watch`` and ``notify`` are connected: the daemon exits 0
    and logs no error and no traceback, each of two times."""
    address, _ = notifications
    daemon = start_daemon()
    for stops in (1, 2):
        if stops > 1:
            daemon.start()
        followers = [
            subprocess.Popen(
                [str(VENV_BIN / "musiquectl"), "--socket", str(daemon.socket_path), *command],
                env={**os.environ, "DBUS_SESSION_BUS_ADDRESS": address},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for command in (("status", "--watch"), ("notify",))
        ]
        try:
            daemon.wait_until(lambda: daemon.subscribers() == 2)
            daemon.signal(signal.SIGTERM)
            assert daemon.proc is not None
            assert daemon.proc.wait(15) == 0
        finally:
            for follower in followers:
                follower.kill()
                follower.wait(10)
        errors = [r for r in daemon.log_records() if r.get("level") in ("error", "critical")]
        assert errors == []
        assert "Traceback" not in daemon.logs()
        assert "CancelledError" not in daemon.logs()
