"""``musiquectl export``: every format parses back to the stored history, streams, and is safe."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from musiqued.models import Scrobble, iso_utc
from tests.fixtures.daemon import StartDaemon
from tests.fixtures.lastfm import SimulatedLastfm
from tests.history_support import generated, seed
from tests.support import VENV_BIN

FIELDS = [
    "timestamp",
    "date",
    "artist",
    "title",
    "album",
    "artist_mbid",
    "album_mbid",
    "track_mbid",
    "source",
]


def parse(fmt: str, text: str) -> list[dict[str, Any]]:
    """Read an export back into listens (CSV's empty cells mean null)."""
    if fmt == "json":
        return list(json.loads(text))
    if fmt == "jsonl":
        return [json.loads(line) for line in text.splitlines()]
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == FIELDS
    return [
        {f: (int(v) if f == "timestamp" else (v or None)) for f, v in zip(FIELDS, row, strict=True)}
        for row in rows[1:]
    ]


def expected_of(scrobbles: list[Scrobble]) -> list[dict[str, Any]]:
    return [
        {
            "timestamp": s.timestamp,
            "date": iso_utc(s.timestamp),
            "artist": s.artist,
            "title": s.title,
            "album": s.album or None,
            "artist_mbid": s.artist_mbid or None,
            "album_mbid": s.album_mbid or None,
            "track_mbid": s.track_mbid or None,
            "source": "import",
        }
        for s in sorted(scrobbles, key=lambda s: s.timestamp)
    ]


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl"])
def test_export_formats_round_trip(fmt: str, workdir: Path, start_daemon: StartDaemon) -> None:
    """Each format, to stdout and to a file, parses back field by field to the stored listens."""
    scrobbles = generated(523)
    seed(workdir / "musique.db", scrobbles)
    daemon = start_daemon()
    expected = expected_of(scrobbles)
    out = daemon.ctl("export", "--format", fmt, "--page-size", "100")
    assert out.returncode == 0, out.stderr
    assert parse(fmt, out.stdout) == expected
    target = workdir / f"out.{fmt}"
    written = daemon.ctl("export", "--format", fmt, "-o", str(target))
    assert written.returncode == 0, written.stderr
    assert "exported 523 listens" in written.stderr
    raw = target.read_bytes()
    assert parse(fmt, raw.decode("utf-8")) == expected
    if fmt == "csv":
        assert raw.startswith(",".join(FIELDS).encode() + b"\r\n")  # RFC 4180 line ends
        assert raw.count(b"\r\n") == 524
    assert [p.name for p in workdir.iterdir() if p.name.endswith(".part")] == []


def test_export_period_and_empty(workdir: Path, start_daemon: StartDaemon) -> None:
    """``--since``/``--until`` bound the export; an empty one is still valid in each format."""
    scrobbles = generated(90, step=100)
    seed(workdir / "musique.db", scrobbles)
    daemon = start_daemon()
    since, until = scrobbles[30].timestamp, scrobbles[60].timestamp
    out = daemon.ctl("export", "--format", "jsonl", "--since", str(since), "--until", str(until))
    assert out.returncode == 0, out.stderr
    kept = [s for s in scrobbles if since <= s.timestamp < until]
    assert parse("jsonl", out.stdout) == expected_of(kept)
    for fmt in ("csv", "json", "jsonl"):
        empty = daemon.ctl(
            "export", "--format", fmt, "--since", "2001-01-01", "--until", "2001-01-02"
        )
        assert empty.returncode == 0, empty.stderr
        assert parse(fmt, empty.stdout) == []


def test_broken_pipe_ends_quietly(workdir: Path, start_daemon: StartDaemon) -> None:
    """``musiquectl export … | head -1``: exit 0, nothing on stderr, the daemon unaffected."""
    seed(workdir / "musique.db", generated(3000))
    daemon = start_daemon()
    proc = subprocess.Popen(
        [
            str(VENV_BIN / "musiquectl"),
            "--socket",
            str(daemon.socket_path),
            "export",
            "--format",
            "csv",
            "--page-size",
            "200",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith(b"timestamp,date")
    proc.stdout.close()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert err == b""
    script = (
        f"set -o pipefail; {VENV_BIN / 'musiquectl'} --socket {daemon.socket_path} "
        "export --format jsonl | head -1"
    )
    shell = subprocess.run(
        ["/bin/bash", "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert shell.returncode == 0, shell.stderr
    assert shell.stderr == ""
    assert json.loads(shell.stdout)["source"] == "import"
    assert daemon.call("history.recent", {"limit": 1})


def test_file_is_atomic_on_failure(workdir: Path, start_daemon: StartDaemon) -> None:
    """When the export fails midway (the daemon dies), the old file stays and no temp is left."""
    seed(workdir / "musique.db", generated(3000))
    daemon = start_daemon()
    target = workdir / "listens.csv"
    target.write_text("previous export\n", encoding="utf-8")
    proc = subprocess.Popen(
        [
            str(VENV_BIN / "musiquectl"),
            "--socket",
            str(daemon.socket_path),
            "export",
            "--format",
            "csv",
            "--page-size",
            "1",
            "-o",
            str(target),
        ],
        stderr=subprocess.PIPE,
    )

    def partial() -> list[Path]:
        return [p for p in workdir.iterdir() if p.name.endswith(".part") and p.stat().st_size]

    deadline = time.monotonic() + 30
    while not partial() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert partial(), "the export never started writing"
    daemon.kill()
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 3, err
    assert target.read_text(encoding="utf-8") == "previous export\n"
    assert [p.name for p in workdir.iterdir() if p.name.endswith(".part")] == []


def test_export_equals_simulator_history_after_import(
    workdir: Path, start_daemon: StartDaemon, lastfm_sim: SimulatedLastfm
) -> None:
    """After a full import, every format holds exactly the simulator's history, field by field."""
    lastfm_sim.reset(size=700, seed=5)
    daemon = start_daemon(**lastfm_sim.sections())
    job_id = daemon.call("import.start", {"all": True})["job_id"]
    daemon.wait_until(
        lambda: daemon.call("import.status", {"job_id": job_id})["state"] == "done", timeout=60
    )

    def key(listen: dict[str, Any]) -> tuple[Any, ...]:
        return (listen["timestamp"], listen["artist"], listen["title"])

    expected = sorted(expected_of(lastfm_sim.scrobbles()), key=key)
    assert len(expected) == 700
    # The simulator gives some titles two MBIDs (two releases, one of them sometimes empty):
    # each listen keeps its own, so the comparison is exact field by field.
    mbids: dict[tuple[str, str], set[str | None]] = {}
    for x in expected:
        mbids.setdefault((x["artist"], x["title"]), set()).add(x["track_mbid"])
    assert any(len(choices) > 1 for choices in mbids.values())

    for fmt in ("csv", "json", "jsonl"):
        target = workdir / f"sim.{fmt}"
        done = daemon.ctl("export", "--format", fmt, "-o", str(target))
        assert done.returncode == 0, done.stderr
        exported = parse(fmt, target.read_text(encoding="utf-8"))
        assert [x["timestamp"] for x in exported] == sorted(x["timestamp"] for x in exported)
        assert sorted(exported, key=key) == expected, fmt
