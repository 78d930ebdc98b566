"""``musiquectl export``: every format is the stored history byte for byte, streams, and is
safe."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.export_support import FIELDS, HoldingRelay, expected_of, parse, rendered
from tests.fixtures.daemon import StartDaemon
from tests.fixtures.lastfm import SimulatedLastfm
from tests.fixtures.services import InProcess
from tests.fixtures.whole_daemon import StartWholeDaemon
from tests.history_support import generated, seed
from tests.support import VENV_BIN, DaemonProcess


def exported(daemon: DaemonProcess, *args: str) -> bytes:
    """What ``musiquectl export ARGS`` writes on stdout, as bytes (``run_ctl``'s text mode
    would turn CRLF into LF); it must succeed and say nothing on stderr."""
    done = subprocess.run(
        [str(VENV_BIN / "musiquectl"), "--socket", str(daemon.socket_path), "export", *args],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, b"")
    return done.stdout


def test_export_formats_round_trip_and_periods(
    workdir: Path, start_in_thread: StartWholeDaemon
) -> None:
    """Each format, to stdout and to a file, parses back field by field to the stored listens,
    and is byte for byte what Python's ``csv`` and ``json`` modules write for them;
    ``--since``/``--until`` bound the export; an empty one is still valid in each format."""
    scrobbles = generated(5230)
    seed(workdir / "musique.db", scrobbles)
    daemon = start_in_thread()
    expected = expected_of(scrobbles)
    for fmt in ("csv", "json", "jsonl"):
        assert exported(daemon, "--format", fmt) == rendered(fmt, expected)
        target = workdir / f"out.{fmt}"
        written = daemon.ctl("export", "--format", fmt, "-o", str(target))
        assert written.returncode == 0, written.stderr
        assert "exported 5,230 listens" in written.stderr
        raw = target.read_bytes()
        assert raw == rendered(fmt, expected)
        assert parse(fmt, raw.decode("utf-8")) == expected
        if fmt == "csv":
            assert raw.startswith(",".join(FIELDS).encode() + b"\r\n")  # RFC 4180 line ends
            assert raw.count(b"\r\n") == 5231
    assert [p.name for p in workdir.iterdir() if p.name.endswith(".part")] == []

    since, until = scrobbles[30].timestamp, scrobbles[60].timestamp
    out = daemon.ctl("export", "--format", "jsonl", "--since", str(since), "--until", str(until))
    assert out.returncode == 0, out.stderr
    kept = [s for s in scrobbles if since <= s.timestamp < until]
    assert kept
    assert parse("jsonl", out.stdout) == expected_of(kept)
    for fmt in ("csv", "json", "jsonl"):
        empty = exported(daemon, "--format", fmt, "--since", "2001-01-01", "--until", "2001-01-02")
        assert parse(fmt, empty.decode()) == []
        assert empty == rendered(fmt, [])


def test_broken_pipe_ends_quietly(workdir: Path, start_in_thread: StartWholeDaemon) -> None:
    """``musiquectl export … | head -1``: exit 0, nothing on stderr, the daemon unaffected."""
    seed(workdir / "musique.db", generated(3000))
    daemon = start_in_thread()
    proc = subprocess.Popen(
        [
            str(VENV_BIN / "musiquectl"),
            "--socket",
            str(daemon.socket_path),
            "export",
            "--format",
            "csv",
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
    """When the export fails midway (the daemon dies), the old file stays and no temp is left;
    musiquectl says it lost the daemon (exit 3)."""
    seed(workdir / "musique.db", generated(20000))  # ~2 MB of CSV
    daemon = start_daemon()
    target = workdir / "listens.csv"
    target.write_text("previous export\n", encoding="utf-8")
    # The daemon's first 512 KiB (a few parts of the answer) reach musiquectl, the rest is
    # held back: the export is midway for as long as the test needs.
    relay = HoldingRelay(workdir / "relay.sock", daemon.socket_path, limit=512 * 1024)
    proc = subprocess.Popen(
        [
            str(VENV_BIN / "musiquectl"),
            "--socket",
            str(relay.path),
            "export",
            "--format",
            "csv",
            "-o",
            str(target),
        ],
        stderr=subprocess.PIPE,
    )

    def partial() -> list[Path]:
        return [p for p in workdir.iterdir() if p.name.endswith(".part") and p.stat().st_size]

    try:
        deadline = time.monotonic() + 30
        while not partial() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert partial(), "the export never started writing"
        daemon.kill()
        _, err = proc.communicate(timeout=30)
    finally:
        relay.close()
    assert proc.returncode == 3, err
    assert b"the daemon closed the connection" in err
    assert target.read_text(encoding="utf-8") == "previous export\n"
    assert [p.name for p in workdir.iterdir() if p.name.endswith(".part")] == []


async def test_export_equals_simulator_history_after_import(
    in_process: InProcess, lastfm_sim: SimulatedLastfm
) -> None:
    """After a full import, every format holds exactly the simulator's history, field by
    field (``history.export``, in-process)."""
    lastfm_sim.reset(size=700, seed=5)

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

    async with in_process(**lastfm_sim.sections()) as daemon:
        assert (await daemon.run_import(all=True))["state"] == "done"
        for fmt in ("csv", "json", "jsonl"):
            result, text = await daemon.call_streamed("history.export", {"format": fmt})
            assert result == {"exported": 700, "format": fmt}
            listens = parse(fmt, text)
            assert [x["timestamp"] for x in listens] == sorted(x["timestamp"] for x in listens)
            assert sorted(listens, key=key) == expected, fmt
