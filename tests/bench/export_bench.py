"""Export benchmark: 1,000,000 listens through ``musiquectl export`` with bounded memory.

Builds a database with bare sqlite3 (the schema from ``musiqued.storage.migrations``), starts
musiqued as a process on it, runs ``musiquectl export --format jsonl|csv -o FILE`` and prints
the time, musiquectl's peak RSS (``os.wait4``'s ``ru_maxrss``) and the daemon's RSS before and
after each export. Target: musiquectl ≤ 100 MB, no growth in the daemon.

    .venv/bin/python tests/bench/export_bench.py [--listens 1000000]
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from musiqued.models import utc_day  # noqa: E402
from musiqued.storage.migrations import LATEST_VERSION, MIGRATIONS  # noqa: E402
from tests.support import DaemonProcess, base_sections, short_tmp, write_config  # noqa: E402

START = 1_262_304_000  # 2010-01-01T00:00:00Z


def build_database(path: Path, listens: int, seed: int = 7) -> None:
    """A plausible history: 2,000 artists, 4 albums and 20 tracks each, a listen every ~4 min."""
    rng = random.Random(seed)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = OFF")
    # The first schema, then the rows, then the later migrations: they derive what they
    # add (the running totals) from the rows, as on a real upgrade.
    conn.executescript(f"BEGIN;\n{MIGRATIONS[0]}\nPRAGMA user_version = 1;\nCOMMIT;")
    conn.execute("BEGIN")
    n_artists = 2000
    conn.executemany(
        "INSERT INTO artists (id, name, name_key, mbid) VALUES (?, ?, ?, '')",
        [(i, f"Artist {i}", f"artist {i}") for i in range(1, n_artists + 1)],
    )
    conn.executemany(
        "INSERT INTO albums (id, artist_id, title, title_key) VALUES (?, ?, ?, ?)",
        [
            (a * 4 + k, a, f"Album {k} of {a}", f"album {k} of {a}")
            for a in range(1, n_artists + 1)
            for k in range(4)
        ],
    )
    conn.executemany(
        "INSERT INTO tracks (id, artist_id, title, title_key) VALUES (?, ?, ?, ?)",
        [
            (a * 20 + k, a, f'Song, "{k}" by {a}', f'song, "{k}" by {a}')
            for a in range(1, n_artists + 1)
            for k in range(20)
        ],
    )

    def rows() -> object:
        ts = START
        for _ in range(listens):
            ts += rng.randint(60, 420)
            artist = rng.randint(1, n_artists)
            track = artist * 20 + rng.randrange(20)
            album = artist * 4 + (track % 20) // 5
            yield (ts, utc_day(ts), track, artist, album, "import")

    conn.executemany(
        "INSERT INTO listening_history (timestamp, date, track_id, artist_id, album_id, source)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        rows(),  # type: ignore[arg-type]
    )
    conn.execute("COMMIT")
    for version, script in enumerate(MIGRATIONS[1:], start=2):
        conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {version};\nCOMMIT;")
    assert len(MIGRATIONS) == LATEST_VERSION
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def run_export(socket_path: Path, fmt: str, out: Path) -> tuple[float, int, int]:
    """(seconds, peak RSS of musiquectl in kB, exit status)."""
    ctl = Path(sys.executable).parent / "musiquectl"
    began = time.perf_counter()
    proc = subprocess.Popen(
        [str(ctl), "--socket", str(socket_path), "export", "--format", fmt, "-o", str(out)]
    )
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - began, int(usage.ru_maxrss), proc.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listens", type=int, default=1_000_000)
    args = parser.parse_args()
    with short_tmp() as work:
        db = work / "musique.db"
        began = time.perf_counter()
        build_database(db, args.listens)
        print(f"database: {args.listens:,} listens built in {time.perf_counter() - began:.1f} s")
        config = write_config(work / "musiqued.toml", base_sections(work))
        daemon = DaemonProcess(work, config, work / "d.sock").start(timeout=60)
        try:
            assert daemon.proc is not None
            pid = daemon.proc.pid
            daemon.call("history.list", {"limit": 10})
            first = rss_kb(pid)
            print(f"daemon RSS before: {first / 1024:.1f} MB")
            for fmt in ("jsonl", "csv", "jsonl", "json"):
                out = work / f"export.{fmt}"
                seconds, peak_kb, code = run_export(daemon.socket_path, fmt, out)
                with out.open("rb") as f:
                    lines = sum(1 for _ in f)
                print(
                    f"export --format {fmt}: {seconds:.1f} s, {lines:,} lines, "
                    f"{out.stat().st_size / 1e6:.0f} MB file, exit {code}, "
                    f"musiquectl peak RSS {peak_kb / 1024:.1f} MB, "
                    f"daemon RSS after {rss_kb(pid) / 1024:.1f} MB"
                )
                out.unlink()
            began = time.perf_counter()
            daemon.call("stats.summary", {})
            print(f"stats.summary over everything: {time.perf_counter() - began:.2f} s")
            began = time.perf_counter()
            daemon.call(
                "stats.summary", {"since": START + 86400 * 365, "until": START + 86400 * 395}
            )
            print(f"stats.summary over 30 days: {time.perf_counter() - began:.3f} s")
            began = time.perf_counter()
            daemon.call("history.list", {"since": START + 86400 * 700, "limit": 1000})
            print(f"history.list page of 1000 mid-history: {time.perf_counter() - began:.3f} s")
        finally:
            daemon.stop()


if __name__ == "__main__":
    main()
