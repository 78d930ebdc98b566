"""The library through the daemon: ``library.*`` over RPC and ``/api/v1/library/…`` over
HTTP give the same answers, ``musiquectl top/search/album/artist/year`` print them, and
days are those of ``[daemon] timezone``."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import sqlite3
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from musiqued.models import Scrobble
from tests.fixtures.whole_daemon import ThreadedWholeDaemon, whole_daemons
from tests.history_support import seed
from tests.support import free_port, short_tmp

ZONE = "Asia/Kathmandu"  # +05:45
TOKEN = "library-token-0123456789"
# Kathmandu's 2024-03-02 runs from 2024-03-01T18:15Z to 2024-03-02T18:15Z.
DAY_START = int(dt.datetime(2024, 3, 1, 18, 15, tzinfo=dt.UTC).timestamp())
HOSTILE = "Evil\x1b[31m Band\u202e"
DESCRIPTION = "First paragraph about the album.\n\nSecond paragraph, \x1b]0;pwned\x07 to the end."


def _listens() -> list[Scrobble]:
    out = []
    for i, offset in enumerate((-60, 0, 3600, 86399, 86400, 90000)):
        out.append(
            Scrobble(
                timestamp=DAY_START + offset,
                artist="Sigur Rós",
                title=f"Hoppípolla {i}",
                album="Takk…",
                loved=i == 2,
            )
        )
    out += [
        Scrobble(timestamp=DAY_START + 7200 + i, artist="Beyoncé", title="Halo", album="I Am")
        for i in range(3)
    ]
    out.append(Scrobble(timestamp=DAY_START + 9000, artist=HOSTILE, title="t", album="a"))
    return out


@pytest.fixture(scope="module")
def daemon() -> Iterator[tuple[ThreadedWholeDaemon, int]]:
    """One daemon for the module: each test only asks it things."""
    port = free_port()
    with short_tmp() as workdir, whole_daemons(workdir) as start:
        database = workdir / "musique.db"
        seed(database, _listens())
        process = start(
            daemon={"timezone": ZONE}, http={"listen": f"127.0.0.1:{port}", "token": TOKEN}
        )
        with sqlite3.connect(database) as conn:
            conn.execute(
                "UPDATE albums SET description = ?, url = 'https://www.last.fm/music/x/y',"
                " spotify_id = 'abc123' WHERE title = 'Takk…'",
                (DESCRIPTION,),
            )
        yield process, port


def _get(port: int, path: str) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {TOKEN}"})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_rpc_and_http_answer_alike(daemon: tuple[ThreadedWholeDaemon, int]) -> None:
    """Each view over HTTP equals the RPC method's answer; bad params are a 422 (HTTP) and
    an invalid-params error (RPC) naming the field; an unknown view is a 404."""
    process, port = daemon
    calls = {
        "top": {"kind": "artists", "since": "2024-03-02", "until": "2024-03-03"},
        "timeline": {"since": "2024-03-01", "until": "2024-03-04", "bucket": "day"},
        "search": {"q": "sigur ros"},
        "year": {"year": 2024},
        "on_this_day": {"date": "2025-03-02"},
        "artist": {"name": "beyoncé"},
    }
    for name, params in calls.items():
        query = "&".join(f"{k}={quote(str(v))}" for k, v in params.items())
        status, body = _get(port, f"/api/v1/library/{name}?{query}")
        assert status == 200, body
        assert body == process.call(f"library.{name}", params), name
    status, body = _get(port, "/api/v1/library/top?kind=albums&tz=Mars/Olympus")
    assert status == 422
    assert "tz" in json.dumps(body)
    error = process.call_error("library.top", {"kind": "albums", "tz": "Mars/Olympus"})
    assert error.code == -32602
    assert "Mars/Olympus" in str(error)
    assert _get(port, "/api/v1/library/nothing")[0] == 404


def test_days_are_the_configured_zones(daemon: tuple[ThreadedWholeDaemon, int]) -> None:
    """A date is midnight in ``[daemon] timezone`` for the CLI's ``--since``/``--until``, for
    the library's views and for ``stats``' days."""
    process, _ = daemon
    done = process.ctl("--json", "history", "--since", "2024-03-02", "--until", "2024-03-03")
    assert done.returncode == 0, done.stderr
    stamps = [x["timestamp"] for x in json.loads(done.stdout)["listens"]]
    assert stamps == sorted(x.timestamp for x in _listens() if 0 <= x.timestamp - DAY_START < 86400)
    timeline = process.call(
        "library.timeline", {"since": "2024-03-01", "until": "2024-03-04", "bucket": "day"}
    )
    assert [(b["date"], b["listens"]) for b in timeline["buckets"]] == [
        ("2024-03-01", 1),
        ("2024-03-02", 7),
        ("2024-03-03", 2),
    ]
    stats = process.call("stats.summary", {})
    assert [(d["day"], d["listens"]) for d in stats["per_day"]] == [
        ("2024-03-01", 1),
        ("2024-03-02", 7),
        ("2024-03-03", 2),
    ]


def test_ctl_library_commands(daemon: tuple[ThreadedWholeDaemon, int]) -> None:
    """``top``, ``search``, ``album``, ``artist`` and ``year`` print tables with untrusted
    names made visible, the description in full, and the exact answer with ``--json``."""
    process, _ = daemon
    done = process.ctl("top", "artists", "--period", "2024-03")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split("\t") == ["#", "artist", "listens", "change"]
    assert lines[1].split("\t") == ["1", "Sigur Rós", "6", "new"]
    assert "Evil␛[31m Band<U+202E>" in done.stdout
    assert "\x1b" not in done.stdout
    as_json = json.loads(process.ctl("--json", "top", "artists", "--period", "2024-03").stdout)
    assert as_json == process.call(
        "library.top", {"kind": "artists", "since": "2024-03-01", "until": "2024-04-01"}
    )

    done = process.ctl("search", "SIGUR", "ros", "takk")
    assert done.returncode == 0, done.stderr
    rows = [line.split("\t") for line in done.stdout.splitlines()[1:]]
    assert [row[1] for row in rows] == ["Sigur Rós"] * 6
    assert [row[5] for row in rows].count("♥") == 1

    done = process.ctl("album", "sigur rós — takk…")
    assert done.returncode == 0, done.stderr
    assert "First paragraph about the album." in done.stdout
    assert "Second paragraph, ␛]0;pwned␇ to the end." in done.stdout
    assert "https://open.spotify.com/album/abc123" in done.stdout
    album_id = json.loads(process.ctl("--json", "album", "Sigur Rós — Takk…").stdout)["id"]
    album = json.loads(process.ctl("--json", "album", str(album_id)).stdout)
    assert album["description"] == DESCRIPTION
    assert sum(t["listens"] for t in album["tracks"]) == 6

    done = process.ctl("artist", "beyonce")
    assert done.returncode == 1
    assert "no artist 'beyonce'" in done.stderr
    done = process.ctl("artist", "BEYONCÉ")
    assert done.returncode == 0, done.stderr
    assert "Halo\t3" in done.stdout

    done = process.ctl("year", "2024")
    assert done.returncode == 0, done.stderr
    assert "listens:" in done.stdout
    assert "2024-03\t10" in done.stdout


def test_ctl_refuses_bad_periods_and_targets(daemon: tuple[ThreadedWholeDaemon, int]) -> None:
    """A period, an album target or a search that cannot be read: exit 2 and one line."""
    process, _ = daemon
    for args, words in (
        (("top", "artists", "--period", "2024-13"), "'2024-13' is not a period"),
        (("top", "artists", "--period", "year", "--since", "2d"), "contradict"),
        (("album", "no separator"), "neither an album id nor"),
    ):
        done = process.ctl(*args)
        assert done.returncode == 2, (args, done.stderr)
        assert words in done.stderr
    done = process.ctl("search", "!!!")
    assert done.returncode != 0
    assert "no letter or digit" in done.stderr
