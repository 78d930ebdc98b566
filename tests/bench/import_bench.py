"""Import benchmark: the import floors of docs/performance.md, each printed with its target.

Everything runs as a user would run it: ``musique-sim lastfm`` as its own process (standing
in for Last.fm), ``musiqued`` as a real process, ``musiquectl import --all`` timed from its
start to its exit.

1. Paced: a ``--paced-scrobbles`` history at the daemon's default rate (5 requests/s,
   ``page_size`` 200): scrobbles/s as a share of 5 x page_size. Floor: >= 0.97.
2. Free-running: a ``--scrobbles`` history with ``requests_per_second`` high. Floors: >= 10,000
   scrobbles/s end to end; the stored listens equal the simulator's history (count and a
   digest of the identities); the daemon's peak RSS <= 120 MB; the time per page over the
   last 5 % of the pages <= 1.2x that over the first 5 % (from the job's progress events).
3. ``daemon.status`` from 10 clients, each calling again 1 ms after its answer, during a
   free-running import of ``--status-scrobbles``. Floor: p99 <= 50 ms. Printed first, the
   same clients against the idle daemon: the machine's own share of the latency.

    .venv/bin/python tests/bench/import_bench.py [--scrobbles N] [--paced-scrobbles N]
        [--status-scrobbles N] [--parts paced free status]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import selectors
import socket
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from musiqued.sim.history import History  # noqa: E402
from tests.support import (  # noqa: E402
    VENV_BIN,
    DaemonProcess,
    SimulatorProcess,
    short_tmp,
    write_config,
)

SEED = 1
DAY = 86400
PACED_RATE = 5.0
"""The daemon's default ``requests_per_second``, Last.fm's documented rate."""
PAGE_SIZE = 200
FREE_RATE = 1000.0
"""The most ``requests_per_second`` the config allows: 200,000 scrobbles a second, more than
the import stores."""
IDLE_S = 10.0


MISSED: list[bool] = []
"""One entry per floor that did not hold: the exit status says whether all held."""


def verdict(holds: bool) -> str:
    if not holds:
        MISSED.append(True)
    return "holds" if holds else "does not hold"


class Simulator(SimulatorProcess):
    """``musique-sim lastfm`` with a history ending at a fixed second, so that the bench can
    generate the same history to compare with."""

    def __init__(self, size: int, workdir: Path, end: int) -> None:
        self.size, self.end = size, end
        super().__init__(
            "lastfm",
            *("--size", str(size), "--seed", str(SEED), "--end", str(end)),
            workdir=workdir,
            log_name=f"sim-{size}.log",
        )


def start_daemon(run: Path, sim: Simulator, **lastfm: Any) -> DaemonProcess:
    run.mkdir()
    sections = {
        "daemon": {"socket": str(run / "d.sock"), "database": str(run / "musique.db")},
        "lastfm": {
            "api_key": "simkey",
            "username": "simuser",
            "api_url": f"{sim.url}/2.0/",
            "page_size": PAGE_SIZE,
            **lastfm,
        },
        "enrichment": {"enabled": False},
    }
    config = write_config(run / "musiqued.toml", sections)
    daemon = DaemonProcess(run, config, run / "d.sock")
    # Info level: a debug line per call would only add noise to the figures.
    return daemon.start(extra_args=("--log-level", "info"), timeout=60)


def cpu_s(process: subprocess.Popen[Any] | None) -> float:
    """CPU seconds ``process`` has used (user and system)."""
    assert process is not None
    fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Import:
    seconds: float
    """``musiquectl import --all``, start to exit."""
    daemon_cpu_s: float
    """The daemon's CPU time meanwhile."""
    events: list[dict[str, Any]]
    """The job's events."""


def import_all(daemon: DaemonProcess) -> Import:
    with daemon.events("job") as events:
        # Read as they come, so that the daemon never finds this subscriber behind.
        follower = threading.Thread(
            target=events.wait_for, args=("job",), kwargs={"state": "done", "timeout": 7200}
        )
        follower.start()
        cpu_before, started = cpu_s(daemon.proc), time.perf_counter()
        done = subprocess.run(
            [str(VENV_BIN / "musiquectl"), "--socket", str(daemon.socket_path), "import", "--all"],
            capture_output=True,
            text=True,
            check=False,
        )
        seconds, cpu = time.perf_counter() - started, cpu_s(daemon.proc) - cpu_before
        if done.returncode != 0:
            raise SystemExit(f"musiquectl import --all failed: {done.stderr[-2000:]}")
        follower.join()
        if not any(event["data"]["state"] == "done" for event in events.seen):
            raise SystemExit("the job's events stopped before its end")
        return Import(seconds, cpu, [event["data"] for event in events.seen])


def page_costs(events: Iterable[dict[str, Any]], pages: int) -> tuple[float, float]:
    """Seconds of the job's running time a page takes, over its first and last 5 % of pages:
    the median of the times between one page's progress event and the next's (a median, as
    a moment's load from elsewhere on this shared machine falls on a few pages only)."""
    running = dict(sorted((e["pages_done"], e["active_s"]) for e in events if e["pages_done"]))
    edge = max(pages // 20, 2)

    def cost(pages_in: range) -> float:
        return statistics.median(
            running[page] - running[page - 1]
            for page in pages_in
            if page in running and page - 1 in running
        )

    return cost(range(2, edge + 1)), cost(range(pages - edge + 1, pages + 1))


def peak_rss_kb(daemon: DaemonProcess) -> float:
    assert daemon.proc is not None
    status = Path(f"/proc/{daemon.proc.pid}/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM"))


def digest(identities: Iterable[tuple[int, str, str]]) -> tuple[int, str]:
    hashed, count = hashlib.sha256(), 0
    for timestamp, artist, title in identities:
        hashed.update(f"{timestamp}\0{artist}\0{title}\n".encode())
        count += 1
    return count, hashed.hexdigest()


def stored_identities(database: Path) -> Iterator[tuple[int, str, str]]:
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        yield from conn.execute(
            "SELECT l.timestamp, ar.name_key, t.title_key FROM listening_history l"
            " JOIN artists ar ON ar.id = l.artist_id JOIN tracks t ON t.id = l.track_id"
            " ORDER BY 1, 2, 3"
        )
    finally:
        conn.close()


def status_latencies(path: Path, clients: int, stop: threading.Event, out: list[float]) -> None:
    """``clients`` connections calling ``daemon.status``, each again 1 ms after its answer,
    until ``stop``; the latencies in ms into ``out``.

    One thread drives them all through a selector: a thread per client would measure, too,
    how long each waits for this process's GIL.
    """
    request = b'{"jsonrpc":"2.0","method":"daemon.status","id":1}\n'
    selector = selectors.DefaultSelector()
    sent_at: dict[socket.socket, float] = {}
    due: dict[socket.socket, float] = {}
    received: dict[socket.socket, bytes] = {}
    for _ in range(clients):
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(str(path))
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
        due[sock], received[sock] = 0.0, b""
    try:
        while not stop.is_set():
            now = time.perf_counter()
            for sock, when in list(due.items()):
                if when <= now:
                    del due[sock]
                    sent_at[sock] = time.perf_counter()
                    sock.sendall(request)
            wait = max(min(due.values(), default=now + 0.01) - time.perf_counter(), 0.0)
            for key, _ in selector.select(min(wait, 0.01)):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                received[sock] += sock.recv(65536)
                if received[sock].endswith(b"\n"):
                    answered = time.perf_counter()
                    out.append((answered - sent_at.pop(sock)) * 1000)
                    received[sock] = b""
                    due[sock] = answered + 0.001
    finally:
        for key in list(selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        selector.close()


@contextlib.contextmanager
def status_clients(daemon: DaemonProcess, clients: int = 10) -> Iterator[list[float]]:
    """``clients`` callers of ``daemon.status`` while the block runs; their latencies (ms)."""
    stop = threading.Event()
    latencies: list[float] = []
    thread = threading.Thread(
        target=status_latencies, args=(daemon.socket_path, clients, stop, latencies)
    )
    thread.start()
    try:
        yield latencies
    finally:
        stop.set()
        thread.join()


def paced(work: Path, size: int, end: int) -> None:
    sim = Simulator(size, work, end)
    try:
        daemon = start_daemon(work / "paced", sim)  # requests_per_second: the default
        try:
            seconds = import_all(daemon).seconds
        finally:
            daemon.stop(60)
    finally:
        sim.stop()
    share = size / seconds / (PACED_RATE * PAGE_SIZE)
    print(f"import at {PACED_RATE:g} requests/s, page_size {PAGE_SIZE}, {size:,} scrobbles")
    print(
        f"    {size / seconds:,.0f} scrobbles/s = {share:.3f} of {PACED_RATE * PAGE_SIZE:,.0f}/s"
        f"   (target >= 0.97: {verdict(share >= 0.97)})"
    )


def free_running(work: Path, size: int, end: int) -> None:
    sim = Simulator(size, work, end)
    try:
        daemon = start_daemon(work / "free", sim, requests_per_second=FREE_RATE)
        try:
            run = import_all(daemon)
            peak = peak_rss_kb(daemon) / 1024
        finally:
            daemon.stop(120)
    finally:
        sim.stop()
    rate = size / run.seconds
    pages = max(event["pages_total"] or 0 for event in run.events)
    first, last = page_costs(run.events, pages)
    stored = digest(stored_identities(work / "free" / "musique.db"))
    expected = digest(sorted(History.generate(SEED, size, end).identities()))
    print(f"import free-running, {size:,} scrobbles ({pages:,} pages)")
    print(
        f"    end to end        {rate:10,.0f} scrobbles/s"
        f"   (target >= 10,000: {verdict(rate >= 10_000)})"
    )
    # On a shared machine the daemon waits for a core: its own CPU time shows the rate it
    # reaches with one core to itself.
    print(
        f"    the daemon's CPU  {run.daemon_cpu_s:10,.1f} s: {size / run.daemon_cpu_s:,.0f} "
        f"scrobbles per CPU second, {run.daemon_cpu_s / run.seconds:.2f} of a core on average;"
        f" load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    print(
        f"    exact             {stored[0]:,} stored, {expected[0]:,} in the simulator's history,"
        f" identities {'equal' if stored == expected else 'DIFFERENT'}"
        f"   (target: equal: {verdict(stored == expected)})"
    )
    print(f"    daemon peak RSS   {peak:10.1f} MB   (target <= 120 MB: {verdict(peak <= 120)})")
    growth = last / first
    print(
        f"    time per page     first 5% {first * 1000:.2f} ms, last 5% {last * 1000:.2f} ms,"
        f" ratio {growth:.2f}   (target <= 1.2: {verdict(growth <= 1.2)})"
    )


def status_during_import(work: Path, size: int, end: int) -> None:
    sim = Simulator(size, work, end)
    try:
        daemon = start_daemon(work / "status", sim, requests_per_second=FREE_RATE)
        try:
            # The same clients with nothing else to do first: what this machine's load of
            # the moment costs them, beside what the import costs.
            with status_clients(daemon) as idle:
                time.sleep(IDLE_S)
            with status_clients(daemon) as latencies:
                seconds = import_all(daemon).seconds
        finally:
            daemon.stop(60)
    finally:
        sim.stop()
    print("daemon.status from 10 clients, each calling again 1 ms after its answer")
    print(f"    idle daemon ({IDLE_S:g} s)   {latency_figures(idle)}")
    p99 = statistics.quantiles(latencies, n=100)[98]
    print(
        f"    during an import  {latency_figures(latencies)};"
        f" {size:,} scrobbles at {size / seconds:,.0f}/s"
        f"   (target p99 <= 50 ms: {verdict(p99 <= 50)})"
    )


def latency_figures(latencies: list[float]) -> str:
    quantiles = statistics.quantiles(latencies, n=100)
    return (
        f"{len(latencies):,} calls: p50 {quantiles[49]:.1f} ms, p99 {quantiles[98]:.1f} ms,"
        f" max {max(latencies):.1f} ms"
    )


PARTS = {"paced": paced, "free": free_running, "status": status_during_import}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scrobbles", type=int, default=3_000_000, help="free-running import")
    parser.add_argument("--paced-scrobbles", type=int, default=50_000, help="import at 5 req/s")
    parser.add_argument("--status-scrobbles", type=int, default=200_000, help="with 10 clients")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    args = parser.parse_args()
    sizes = {
        "paced": args.paced_scrobbles,
        "free": args.scrobbles,
        "status": args.status_scrobbles,
    }
    end = (int(time.time()) // DAY - 1) * DAY  # the history ends at a fixed second
    with short_tmp() as work:
        for part in args.parts:
            PARTS[part](work, sizes[part], end)


if __name__ == "__main__":
    main()
    sys.exit(1 if MISSED else 0)
