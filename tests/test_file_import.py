"""``musiquectl import-file`` through the daemon: the files handed over as descriptors, the
job, its summary, a refusal, a kill mid-file and the resume."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
from pathlib import Path
from typing import Any

from musiqued.models import Scrobble
from tests import interchange_files as files
from tests.fixtures.daemon import StartDaemon
from tests.fixtures.whole_daemon import StartWholeDaemon
from tests.history_support import seed
from tests.support import run_ctl

START = 1_600_000_000
ENTRIES = 24_000
"""The file killed midway: many batches of ``file_import.BATCH`` entries."""


def _spotify(count: int, *, every: int = 400) -> list[dict[str, Any]]:
    """``count`` plays of 200 s each, every ``every`` seconds; every 50th entry repeats
    the one before it (counted once)."""
    entries: list[dict[str, Any]] = []
    for i in range(count):
        if i % 50 == 49:
            entries.append(dict(entries[-1]))
            continue
        end = START + i * every + 200
        entries.append(files.spotify_play(end, track=f"Song {i % 997}", artist=f"Artist {i % 31}"))
    return entries


def test_import_file_through_the_cli_prints_the_summary(
    workdir: Path, start_in_thread: StartWholeDaemon
) -> None:
    """The dry run prints the summary and stores nothing; the import follows the job to its
    summary; history --json shows source file and origin spotify."""
    lastfm = [
        Scrobble(timestamp=START + i * 400 + 30, artist=f"Artist {i % 31}", title=f"Song {i % 997}")
        for i in range(0, 100, 4)
    ]
    seed(workdir / "musique.db", lastfm)
    dump = workdir / "Streaming_History_Audio_2020.json"
    dump.write_bytes(files.json_file(_spotify(100)))
    daemon = start_in_thread()
    dry = daemon.ctl("import-file", "--dry-run", str(dump))
    assert dry.returncode == 0, dry.stderr
    assert "Dry run: nothing stored" in dry.stdout
    assert daemon.call("daemon.status")  # still there
    assert len(daemon.call("history.list", {"limit": 5000})["listens"]) == 25
    done = daemon.ctl("--json", "import-file", str(dump))
    assert done.returncode == 0, done.stderr
    job = json.loads(done.stdout)
    assert job["kind"] == "file"
    assert job["state"] == "done"
    assert job["result"] == {
        "entries": 100,
        "added": 73,
        "already_stored": 25,
        "skipped": {"duplicate_in_file": 2},
        "unreadable": 0,
    }
    dry_summary = json.loads(daemon.ctl("--json", "import-file", "--dry-run", str(dump)).stdout)
    assert (dry_summary["added"], dry_summary["already_stored"]) == (0, 98)
    listens = daemon.call("history.list", {"limit": 5000})["listens"]
    assert len(listens) == 98
    assert {(x["source"], x["origin"]) for x in listens} == {
        ("import", "lastfm"),
        ("file", "spotify"),
    }
    shown = daemon.ctl("--json", "history", "--limit", "200")
    assert '"origin": "spotify"' in shown.stdout


def test_a_file_of_no_known_format_is_refused_naming_it(
    workdir: Path, start_in_thread: StartWholeDaemon
) -> None:
    """One line naming the file, exit status 2, no job, nothing stored."""
    notes = workdir / "notes.txt"
    notes.write_text("nothing to see\n")
    daemon = start_in_thread()
    refused = daemon.ctl("import-file", str(notes))
    assert refused.returncode == 2
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1
    assert f"{notes}: not a file musiqued can import" in lines[0]
    # Requests the daemon refuses before asking for any descriptor:
    zone = daemon.call_error(
        "import.file", {"files": [{"name": "x", "fd": 0}], "zone": "Mars/Olympus_Mons"}
    )
    assert zone.code == -32602
    assert "unknown time zone 'Mars/Olympus_Mons'" in zone.message
    twice = daemon.call_error(
        "import.file", {"files": [{"name": "x", "fd": 0}, {"name": "y", "fd": 0}]}
    )
    assert "each handed descriptor (0, 1, ...) exactly once" in twice.message
    assert daemon.call("jobs.list") == []


def test_a_kill_mid_file_then_the_resume_counts_exactly(
    workdir: Path, start_daemon: StartDaemon
) -> None:
    """SIGKILL while the job is storing a file: the restarted daemon resumes it from its
    checkpoint; every entry is counted once and every listen stored once; undo then removes
    exactly what it added."""
    entries = _spotify(ENTRIES, every=250)  # 12 batches: the kill lands after the third
    lastfm = [
        Scrobble(timestamp=START + i * 250 - 60, artist=f"Artist {i % 31}", title=f"Song {i % 997}")
        for i in range(0, ENTRIES, 7)
    ]
    seed(workdir / "musique.db", lastfm)
    dump = workdir / "endsong_3.json"
    dump.write_bytes(files.json_file(entries))
    daemon = start_daemon()
    with daemon.events("job") as events:
        started = daemon.ctl("--json", "import-file", "--detach", str(dump))
        assert started.returncode == 0, started.stderr
        job_id = json.loads(started.stdout)["job_id"]
        events.wait_for("job", lambda job: job["pages_done"] >= 3, job_id=job_id, timeout=60)
    daemon.kill()
    with sqlite3.connect(workdir / "musique.db") as conn:
        (state,) = conn.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
    assert state == "running"  # killed midway: the restart has a file to resume
    daemon.start()
    job = daemon.wait_until(
        lambda: (j := daemon.call("jobs.get", {"job_id": job_id}))["state"] == "done" and j,
        timeout=120,
    )
    duplicates = ENTRIES // 50
    plays = ENTRIES - duplicates
    matched = sum(1 for i in range(0, ENTRIES, 7) if i % 50 != 49)
    assert job["result"] == {
        "entries": ENTRIES,
        "added": plays - matched,
        "already_stored": matched,
        "skipped": {"duplicate_in_file": duplicates},
        "unreadable": 0,
    }
    status = daemon.call("stats.summary", {})
    assert status["listens"] == len(lastfm) + plays - matched
    undone = daemon.ctl("--json", "jobs", "undo", str(job_id))
    assert json.loads(undone.stdout) == {"job_id": job_id, "removed": plays - matched}
    assert daemon.call("stats.summary", {})["listens"] == len(lastfm)


def test_a_scrobbler_log_in_local_time_is_read_in_the_callers_zone(
    workdir: Path, start_in_thread: StartWholeDaemon
) -> None:
    """``#TZ/UNKNOWN``: the player wrote its wall clock; musiquectl says its zone (here
    $TZ), and the daemon, whatever its own zone, stores the true start."""
    wall = 1_612_124_100  # 2021-01-31 20:15 on the player's clock, written as if UTC
    log = workdir / ".scrobbler.log"
    log.write_bytes(
        files.scrobbler_log(
            [("Artist", "Album", "Song", "1", "200", "L", str(wall), "")], zone="UNKNOWN"
        )
    )
    daemon = start_in_thread()
    done = run_ctl(
        "--json",
        "import-file",
        str(log),
        socket_path=daemon.socket_path,
        env={"TZ": "Europe/Zurich"},
    )
    assert done.returncode == 0, done.stderr
    listens = daemon.call("history.list", {})["listens"]
    assert [(x["timestamp"], x["origin"]) for x in listens] == [(wall - 3600, "scrobbler-log")]


def test_a_handover_short_of_descriptors_is_refused_and_they_are_closed(
    workdir: Path, start_in_thread: StartWholeDaemon
) -> None:
    """A client that names two files but hands over one gets a one-line error; the daemon
    keeps no descriptor of it and goes on serving."""
    dump = workdir / "endsong_0.json"
    dump.write_bytes(files.json_file([files.spotify_play(START + 200)]))
    daemon = start_in_thread()
    request = {
        "jsonrpc": "2.0",
        "method": "import.file",
        "id": 1,
        "params": {"files": [{"name": "a", "fd": 0}, {"name": "b", "fd": 1}]},
    }
    with socket.socket(socket.AF_UNIX) as sock, dump.open("rb") as opened:
        sock.settimeout(20)
        sock.connect(str(daemon.socket_path))
        with sock.makefile("rb") as lines:
            sock.sendall(json.dumps(request).encode() + b"\n")
            go_ahead = json.loads(lines.readline())
            assert go_ahead == {
                "jsonrpc": "2.0",
                "method": "files.send",
                "params": {"id": 1, "count": 2},
            }
            socket.send_fds(sock, [b"F"], [opened.fileno()])
            answer = json.loads(lines.readline())
    assert answer["error"]["code"] == -32602
    assert answer["error"]["message"] == "expected 2 file descriptors in one message, got 1"
    assert daemon.call("jobs.list") == []
    assert str(dump) not in _open_files()  # the daemon is served in this process


def _open_files() -> set[str]:
    """What this process has open (a descriptor closed while they are listed is not)."""
    held = "/proc/self/fd"
    found = set()
    for fd in os.listdir(held):
        with contextlib.suppress(FileNotFoundError):
            found.add(os.readlink(f"{held}/{fd}"))
    return found
