"""Export benchmark: 1,000,000 listens through ``musiquectl export`` against a direct export.

Builds a database with bare sqlite3 (the schema from ``musiqued.storage.migrations``), then, in
the same run: the direct export (plain Python ``sqlite3`` → ``csv.writer`` into a file, of the
very query the daemon streams), and ``musiquectl export --format csv|jsonl -o FILE`` through
musiqued as a process, in rounds of all three; ratios are taken within a round (runs made
under the same load: the machine is shared) and their median printed, with the CPU time each
took (the daemon's and musiquectl's together for an export). It checks that musiquectl's CSV
is byte for byte the direct export's, and prints musiquectl's peak RSS (its ``VmHWM``), the
daemon's RSS before and after the exports, and ``daemon.status`` latency from another
client while an export runs.

Targets: each format within 1.5x of the direct export, jsonl no slower than csv, musiquectl
<= 100 MB, the daemon's RSS flat.

    .venv/bin/python tests/bench/export_bench.py [--listens 1000000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import csv
import filecmp
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from musiquectl.client import Client  # noqa: E402
from musiqued.models import utc_day  # noqa: E402
from musiqued.storage.db import PRAGMAS  # noqa: E402
from musiqued.storage.history import EXPORT_FIELDS, EXPORT_SQL, NO_END  # noqa: E402
from musiqued.storage.migrations import LATEST_VERSION, MIGRATIONS  # noqa: E402
from tests.bench.cpu_use import process_cpu_s  # noqa: E402
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


def rss_kb(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


@dataclass
class Run:
    seconds: float
    cpu: float
    """CPU seconds: this process's for the direct export, the daemon's and musiquectl's."""
    peak_kb: int = 0
    client_cpu: float = 0.0
    """musiquectl's part of ``cpu``."""


def direct_export(db: Path, out: Path) -> Run:
    """The reference: the daemon's export query, run by plain sqlite3, into ``csv.writer``."""
    began, cpu = time.perf_counter(), time.process_time()
    conn = sqlite3.connect(db)
    for pragma in PRAGMAS[1:]:
        conn.execute(pragma)
    with out.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\r\n")
        writer.writerow(EXPORT_FIELDS)
        writer.writerows(conn.execute(EXPORT_SQL, (-NO_END, NO_END)))
    conn.close()
    return Run(time.perf_counter() - began, time.process_time() - cpu)


def watch_peak(pid: int, peak: list[int]) -> None:
    """Keep ``peak[0]`` at process ``pid``'s peak RSS (``VmHWM``) until it exits.

    Not ``wait4``'s ``ru_maxrss``: that counts the pages the child shared with this (large)
    process between fork and exec.
    """
    while True:
        try:
            peak[0] = max(peak[0], rss_kb(pid, "VmHWM"))
        except (FileNotFoundError, ProcessLookupError, ValueError):
            return
        time.sleep(0.01)


def run_export(socket_path: Path, daemon_pid: int, fmt: str, out: Path) -> Run:
    """``musiquectl export --format FMT -o OUT``; exits if musiquectl fails."""
    ctl = Path(sys.executable).parent / "musiquectl"
    began, daemon_cpu = time.perf_counter(), process_cpu_s(daemon_pid)
    proc = subprocess.Popen(
        [str(ctl), "--socket", str(socket_path), "export", "--format", fmt, "-o", str(out)],
        stderr=subprocess.DEVNULL,
    )
    peak = [0]
    watcher = threading.Thread(target=watch_peak, args=(proc.pid, peak))
    watcher.start()
    _, status, usage = os.wait4(proc.pid, 0)  # reaped: the watcher's next read fails
    seconds = time.perf_counter() - began
    watcher.join()
    if code := os.waitstatus_to_exitcode(status):
        raise SystemExit(f"musiquectl export --format {fmt} exited with {code}")
    client_cpu = usage.ru_utime + usage.ru_stime
    return Run(seconds, process_cpu_s(daemon_pid) - daemon_cpu + client_cpu, peak[0], client_cpu)


def status_latencies(socket_path: Path, stop: threading.Event) -> list[float]:
    """``daemon.status`` from another client every 5 ms until ``stop``; seconds each."""
    latencies: list[float] = []
    with Client(socket_path, timeout=30) as client:
        while not stop.wait(0.005):
            began = time.perf_counter()
            client.call("daemon.status")
            latencies.append(time.perf_counter() - began)
    return latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} (range {min(values):.2f}-{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listens", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
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
            before = rss_kb(pid)
            runs: dict[str, list[Run]] = {"direct": [], "csv": [], "jsonl": []}
            after: list[int] = []
            reference = work / "direct.csv"
            size = 0.0
            kinds = list(runs)
            for number in range(args.rounds):
                # Each round runs all three, in turn first: a ratio compares runs made under
                # the same load (this machine is shared), the median of the rounds is printed.
                for kind in kinds[number % 3 :] + kinds[: number % 3]:
                    if kind == "direct":
                        runs[kind].append(direct_export(db, reference))
                        continue
                    out = work / f"export.{kind}"
                    runs[kind].append(run_export(daemon.socket_path, pid, kind, out))
                    after.append(rss_kb(pid))
                    with out.open("rb") as f:
                        lines = sum(1 for _ in f)
                    if lines != args.listens + (kind == "csv"):
                        raise SystemExit(f"export --format {kind}: {lines:,} lines")
                    if kind == "csv":
                        if not filecmp.cmp(out, reference, shallow=False):
                            raise SystemExit("musiquectl's CSV differs from the direct export")
                        size = out.stat().st_size / 1e6
                    out.unlink()
            reference.unlink()

            def ratios(kind: str, to: str) -> list[float]:
                return [a.seconds / b.seconds for a, b in zip(runs[kind], runs[to], strict=True)]

            for kind, label in (
                ("direct", f"direct sqlite3 -> csv.writer ({size:.0f} MB)"),
                ("csv", "musiquectl export --format csv"),
                ("jsonl", "musiquectl export --format jsonl"),
            ):
                client = (
                    f" (musiquectl {statistics.median(r.client_cpu for r in runs[kind]):.2f})"
                    if kind != "direct"
                    else ""
                )
                print(
                    f"{label}: {summary([r.seconds for r in runs[kind]])} s, "
                    f"CPU {summary([r.cpu for r in runs[kind]])} s{client}"
                )
            print(
                f"ratio to direct, per round: csv {summary(ratios('csv', 'direct'))}, "
                f"jsonl {summary(ratios('jsonl', 'direct'))} (target <= 1.5); "
                "musiquectl's CSV is the direct export's bytes"
            )
            print(f"jsonl / csv, per round: {summary(ratios('jsonl', 'csv'))} (target <= 1.0)")
            print(
                f"musiquectl peak RSS: csv {max(r.peak_kb for r in runs['csv']) / 1024:.1f} MB, "
                f"jsonl {max(r.peak_kb for r in runs['jsonl']) / 1024:.1f} MB (target <= 100 MB)"
            )

            stop = threading.Event()
            latencies: list[float] = []
            prober = threading.Thread(
                target=lambda: latencies.extend(status_latencies(daemon.socket_path, stop))
            )
            prober.start()
            probed = run_export(daemon.socket_path, pid, "csv", work / "probed.csv")
            stop.set()
            prober.join()
            after.append(rss_kb(pid))
            print(
                "daemon.status every 5 ms from another client during a csv export "
                f"({probed.seconds:.2f} s): {len(latencies)} calls, "
                f"p50 {percentile(latencies, 0.5) * 1000:.1f} ms, "
                f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms, "
                f"max {max(latencies) * 1000:.1f} ms"
            )
            print(
                f"daemon RSS: before {before / 1024:.1f} MB, after each export "
                f"{', '.join(f'{kb / 1024:.1f}' for kb in after)} MB, "
                f"peak {rss_kb(pid, 'VmHWM') / 1024:.1f} MB"
            )

            began = time.perf_counter()
            everything = daemon.call("stats.summary", {})
            rollup = time.perf_counter() - began
            # The same period given as bounds is answered from the listens themselves.
            began = time.perf_counter()
            scanned = daemon.call("stats.summary", {"since": 0, "until": 2**53})
            scan = time.perf_counter() - began
            same = {**scanned, "since": None, "until": None} == everything
            print(
                f"stats.summary over everything: {rollup * 1000:.1f} ms from the running "
                f"totals (target <= 50 ms); {scan:.3f} s aggregated from the listens; "
                f"ratio {rollup / scan:.4f}; identical results: {same}"
            )
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
