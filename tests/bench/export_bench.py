"""Export benchmark: the export and summary floors of docs/performance.md, each printed with
its target.

Builds a database of ``--listens`` with bare sqlite3 (the schema from
``musiqued.storage.migrations``), starts musiqued on it as a process, then times, in alternating
rounds of one run, ``musiquectl export --format csv -o FILE`` against the direct export (plain
Python ``sqlite3`` running the daemon's own query into ``csv.writer``); the ratio is taken
within each round and the median printed. Floor: <= 2x; musiquectl's CSV must be the direct
export's bytes. Then ``stats.summary`` over everything, the median of several calls. Floor:
<= 50 ms.

    .venv/bin/python tests/bench/export_bench.py [--listens 1000000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import csv
import filecmp
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from musiquectl.client import Client  # noqa: E402
from musiqued.models import utc_day  # noqa: E402
from musiqued.storage.db import PRAGMAS  # noqa: E402
from musiqued.storage.history import EXPORT_FIELDS, EXPORT_SQL, NO_END  # noqa: E402
from musiqued.storage.migrations import LATEST_VERSION, MIGRATIONS  # noqa: E402
from tests.support import (  # noqa: E402
    VENV_BIN,
    DaemonProcess,
    base_sections,
    short_tmp,
    write_config,
)

START = 1_262_304_000  # 2010-01-01T00:00:00Z


@contextmanager
def kept_database(listens: int, keep: Path | None) -> Iterator[Path]:
    """The benches' database of ``listens`` listens, built in ``keep`` (and reused from there
    by later runs) or in a temporary directory removed afterwards."""
    with tempfile.TemporaryDirectory() as tmp:
        path = (keep or Path(tmp)) / f"library-{listens}.db"
        if not path.exists():
            started = time.perf_counter()
            build_database(path, listens)
            print(f"built {listens:,} listens in {time.perf_counter() - started:.0f} s")
        yield path


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


MISSED: list[bool] = []
"""One entry per floor that did not hold: the exit status says whether all held."""


def verdict(holds: bool) -> str:
    if not holds:
        MISSED.append(True)
    return "holds" if holds else "does not hold"


def direct_export(db: Path, out: Path) -> float:
    """Seconds for the reference: the daemon's export query, by plain sqlite3, into
    ``csv.writer``, ``loved`` written as the export writes it (``true``/``false``)."""
    began = time.perf_counter()
    conn = sqlite3.connect(db)
    for pragma in PRAGMAS[1:]:
        conn.execute(pragma)
    with out.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\r\n")
        writer.writerow(EXPORT_FIELDS)
        rows = conn.execute(EXPORT_SQL, (-NO_END, NO_END))
        writer.writerows((*row[:-1], "true" if row[-1] else "false") for row in rows)
    conn.close()
    return time.perf_counter() - began


def ctl_export(socket_path: Path, out: Path) -> float:
    """Seconds for ``musiquectl export --format csv -o OUT``, start to exit."""
    began = time.perf_counter()
    ctl = str(VENV_BIN / "musiquectl")
    subprocess.run(
        [ctl, "--socket", str(socket_path), "export", "--format", "csv", "-o", str(out)],
        check=True,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listens", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with short_tmp() as work:
        db = work / "musique.db"
        build_database(db, args.listens)
        config = write_config(work / "musiqued.toml", base_sections(work))
        daemon = DaemonProcess(work, config, work / "d.sock").start(timeout=60)
        try:
            reference, exported = work / "direct.csv", work / "export.csv"
            ratios: list[float] = []
            for number in range(args.rounds):
                # Alternating which goes first: a moment's load on this shared machine falls
                # on both alike.
                if number % 2:
                    ctl = ctl_export(daemon.socket_path, exported)
                    direct = direct_export(db, reference)
                else:
                    direct = direct_export(db, reference)
                    ctl = ctl_export(daemon.socket_path, exported)
                if not filecmp.cmp(exported, reference, shallow=False):
                    raise SystemExit("musiquectl's CSV differs from the direct export")
                ratios.append(ctl / direct)
                print(f"    round {number + 1}: musiquectl {ctl:.2f} s, direct {direct:.2f} s")
            ratio = statistics.median(ratios)
            print(
                f"musiquectl export of {args.listens:,} listens / direct sqlite3 -> csv: "
                f"{ratio:.2f} (median of {args.rounds} rounds; same bytes)"
                f"   (target <= 2: {verdict(ratio <= 2)})"
            )
            with Client(daemon.socket_path, timeout=30) as client:
                client.call(
                    "stats.summary", {}
                )  # warm-up: the first call reads its pages from disk
                times = []
                for _ in range(9):
                    began = time.perf_counter()
                    client.call("stats.summary", {})
                    times.append((time.perf_counter() - began) * 1000)
            summary = statistics.median(times)
            print(
                f"stats.summary at {args.listens:,} listens: {summary:.1f} ms (median of 9)"
                f"   (target <= 50 ms: {verdict(summary <= 50)})"
            )
        finally:
            daemon.stop()


if __name__ == "__main__":
    main()
    sys.exit(1 if MISSED else 0)
