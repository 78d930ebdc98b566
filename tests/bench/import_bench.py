"""Import benchmark: prints (a) throughput, (b) peak memory, (c) rate-limited efficiency.

(a) 200,000 scrobbles, no rate limit: end-to-end import through the real daemon; the same
    pages fetched and parsed by LastfmClient without storing (fetch-only); the same rows
    written by bare sqlite3 in one thread (storage-only); end-to-end / min(the two).
(b) Peak RSS (VmHWM) of the daemon importing 1,000,000 scrobbles.
(c) requests_per_second = 5, page_size = 200: scrobbles/s over ~30 s as a share of 1,000/s.

The simulator runs as its own process (``musique-sim lastfm``), like Last.fm would.
Targets: (a) >= 20,000/s and ratio >= 0.5; (b) <= 120 MB; (c) >= 0.95.

    .venv/bin/python tests/bench/import_bench.py [--skip-b]
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from musiqued.config import LastfmConfig  # noqa: E402
from musiqued.models import Scrobble  # noqa: E402
from musiqued.storage import listens  # noqa: E402
from musiqued.storage.migrations import MIGRATIONS  # noqa: E402
from musiqued.upstream.lastfm import LastfmClient  # noqa: E402
from musiqued.upstream.ratelimit import Governor  # noqa: E402
from tests.support import DaemonProcess, SimulatorProcess, write_config  # noqa: E402

BIN = Path(sys.executable).parent
NO_LIMIT = 100_000.0
PAGE_SIZE_A = int(next((a.split("=")[1] for a in sys.argv if a.startswith("--page-size=")), 200))
"""(a) uses the default page size, Last.fm's documented maximum (``--page-size=1000`` to compare)."""


class Simulator(SimulatorProcess):
    def __init__(self, size: int, workdir: Path) -> None:
        super().__init__("lastfm", "--size", str(size), workdir=workdir, log_name=f"sim-{size}.log")

    def lastfm(self, **values: Any) -> dict[str, Any]:
        return {
            "api_key": "simkey",
            "username": "simuser",
            "api_url": f"{self.url}/2.0/",
            "requests_per_second": NO_LIMIT,
            "max_in_flight": 4,
            "page_size": PAGE_SIZE_A,
            **values,
        }


def start_daemon(workdir: Path, name: str, lastfm: dict[str, Any]) -> DaemonProcess:
    run = workdir / name
    run.mkdir()
    sections = {
        "daemon": {"socket": str(run / "d.sock"), "database": str(run / "musique.db")},
        "lastfm": lastfm,
        "enrichment": {"enabled": False},
    }
    config = write_config(run / "musiqued.toml", sections)
    daemon = DaemonProcess(run, config, run / "d.sock")
    # Info level: a debug line per RPC call would only add noise to the figures.
    daemon.start(extra_args=("--log-level", "info"), timeout=30)
    return daemon


def wait_done(daemon: DaemonProcess, job_id: int, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, Any] = daemon.call("import.status", {"job_id": job_id})
        if job["state"] not in ("queued", "running"):
            return job
        time.sleep(0.05)
    raise TimeoutError(f"job {job_id} still running after {timeout}s")


def end_to_end(workdir: Path, sim: Simulator, name: str, size: int) -> tuple[float, int]:
    """Scrobbles/s of ``import --all`` through the daemon; and its peak RSS in kB."""
    daemon = start_daemon(workdir, name, sim.lastfm())
    try:
        started = time.perf_counter()
        job_id = daemon.call("import.start", {"all": True})["job_id"]
        job = wait_done(daemon, job_id, timeout=900)
        elapsed = time.perf_counter() - started
        assert daemon.proc is not None
        status = Path(f"/proc/{daemon.proc.pid}/status").read_text()
        hwm = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM"))
        if job["state"] != "done" or job["tracks_imported"] != size:
            raise RuntimeError(f"import did not end exact: {json.dumps(job)[:500]}")
        return size / elapsed, hwm
    finally:
        daemon.stop(60)


async def fetch_only(sim: Simulator) -> tuple[float, list[list[Scrobble]]]:
    """The same pages fetched and parsed by LastfmClient, 4 in flight, nothing stored."""
    config = LastfmConfig.model_validate(sim.lastfm())
    client = LastfmClient(config, Governor(NO_LIMIT, config.max_in_flight))
    await client.open()
    try:
        started = time.perf_counter()
        to_ts = int(time.time()) + 1
        first = await client.recent_tracks(page=1, to_ts=to_ts)
        pages: list[list[Scrobble]] = [first.scrobbles]
        queue = list(range(2, first.total_pages + 1))
        results: dict[int, list[Scrobble]] = {}

        async def worker() -> None:
            while queue:
                page = queue.pop(0)
                results[page] = (await client.recent_tracks(page=page, to_ts=to_ts)).scrobbles

        await asyncio.gather(*(worker() for _ in range(config.max_in_flight)))
        elapsed = time.perf_counter() - started
        pages += [results[p] for p in sorted(results)]
        return sum(len(p) for p in pages) / elapsed, pages
    finally:
        await client.close()


def storage_only(workdir: Path, pages: list[list[Scrobble]]) -> float:
    """The same rows, one transaction per page, by bare sqlite3 with listens.py's statements."""
    conn = sqlite3.connect(workdir / "storage-only.db", isolation_level=None)
    for pragma in ("journal_mode = WAL", "synchronous = NORMAL", "cache_size = -16000"):
        conn.execute(f"PRAGMA {pragma}")
    conn.executescript(MIGRATIONS[0])
    conn.execute("INSERT INTO jobs (kind, state, created_at) VALUES ('import', 'running', 0)")
    total = 0
    started = time.perf_counter()
    for page in pages:
        rows = listens.page_rows(page, source="import", job_id=1)
        conn.execute("BEGIN IMMEDIATE")
        for sql, params in rows.statements():
            conn.execute(sql, params)
        conn.execute("COMMIT")
        total += len(page)
    elapsed = time.perf_counter() - started
    conn.close()
    return total / elapsed


def rate_limited(workdir: Path, sim: Simulator, seconds: float = 30.0) -> float:
    """Scrobbles/s at 5 requests/s and 200 per page, as a share of the 1,000/s ceiling."""
    daemon = start_daemon(
        workdir, "c", sim.lastfm(requests_per_second=5.0, page_size=200, max_in_flight=4)
    )
    try:
        started = time.perf_counter()
        job_id = daemon.call("import.start", {"all": True})["job_id"]
        time.sleep(seconds)
        job = daemon.call("import.status", {"job_id": job_id})
        elapsed = time.perf_counter() - started
        daemon.call("import.cancel", {"job_id": job_id})
        processed = job["tracks_imported"] + job["tracks_skipped"]
        return processed / elapsed / 1000.0
    finally:
        daemon.stop(60)


class _SkipA(Exception):
    """``--only-b``: measure the million-listen import alone."""


def main() -> None:
    skip_b = "--skip-b" in sys.argv
    only_b = "--only-b" in sys.argv
    with tempfile.TemporaryDirectory(prefix="mq-bench-", dir="/tmp") as name:
        workdir = Path(name)
        sim = Simulator(10 if only_b else 200_000, workdir)
        try:
            if only_b:
                raise _SkipA
            e2e, _ = end_to_end(workdir, sim, "a", 200_000)
            fetch, pages = asyncio.run(fetch_only(sim))
            store = storage_only(workdir, pages)
            del pages
            ratio = e2e / min(fetch, store)
            print(f"(a) 200,000 scrobbles, no rate limit, page_size {PAGE_SIZE_A}, max_in_flight 4")
            print(f"    end-to-end import   {e2e:10,.0f} scrobbles/s   (target >= 20,000)")
            print(f"    fetch-only          {fetch:10,.0f} scrobbles/s")
            print(f"    storage-only        {store:10,.0f} scrobbles/s")
            print(f"    ratio               {ratio:10.2f}                 (target >= 0.5)")
            share = rate_limited(workdir, sim)
            print("(c) requests_per_second 5, page_size 200, 30 s")
            print(
                f"    achieved            {share * 1000:10,.0f} scrobbles/s = {share:.3f} of 1,000/s"
                "   (target >= 0.95)"
            )
        except _SkipA:
            pass
        finally:
            sim.stop()
        if not skip_b:
            big = Simulator(1_000_000, workdir)
            try:
                rate, hwm = end_to_end(workdir, big, "b", 1_000_000)
            finally:
                big.stop()
            print("(b) 1,000,000 scrobbles")
            print(f"    daemon peak RSS     {hwm / 1024:10,.1f} MB   (target <= 120 MB)")
            print(f"    end-to-end import   {rate:10,.0f} scrobbles/s")


if __name__ == "__main__":
    main()
