"""Mirror benchmark: a 1,000,000-listen backlog to the simulated ListenBrainz.

Builds a database of LISTENS listens (``export_bench.build_database``), starts
``musique-sim listenbrainz --count-only`` (it counts what it receives instead of keeping it)
with LIMIT requests per WINDOW seconds, then musiqued with ``[listenbrainz]`` pointing there,
and follows the simulator's count and the daemon's RSS until every listen has arrived.

The simulator's windows are fixed (aligned on multiples of WINDOW seconds, as ListenBrainz's
are), so the first and last windows the backlog touches are partial: the rate is taken over
the whole windows between them, from the simulator's record of each request's time, against
the rate it allows (LIMIT per WINDOW). It prints that ratio, the most requests any window
received, and the daemon's RSS once the mirror began sending, at its middle and at the end.

Targets: the ratio at least 0.95; no window over LIMIT and no 429; the RSS flat (the end
within 10 % of the middle). The defaults are ListenBrainz's own limit.

    .venv/bin/python tests/bench/mirror_bench.py [--listens 1000000] [--limit 50] [--window 10]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.bench.export_bench import build_database  # noqa: E402
from tests.support import (  # noqa: E402
    DaemonProcess,
    SimulatorProcess,
    base_sections,
    short_tmp,
    write_config,
)

TOKEN = "benchtoken"


def rss_kb(pid: int) -> int:
    """The process's resident memory now, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise SystemExit("no VmRSS")


def admin(sim: SimulatorProcess, what: str) -> Any:
    with urllib.request.urlopen(f"{sim.url}/admin/{what}", timeout=30) as answer:  # noqa: S310
        return json.loads(answer.read())


def per_window(requests: list[dict[str, Any]], window: int) -> Counter[int]:
    """Requests the server counted per window (every request counts, as in the simulator)."""
    return Counter(int(r["at"]) // window for r in requests)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listens", type=int, default=1_000_000)
    parser.add_argument("--limit", type=int, default=50, help="requests per window")
    parser.add_argument("--window", type=int, default=10, help="seconds per window")
    args = parser.parse_args()
    with short_tmp() as workdir:
        began = time.monotonic()
        build_database(workdir / "musique.db", args.listens)
        print(f"database: {args.listens:,} listens in {time.monotonic() - began:.1f} s")
        sim = SimulatorProcess(
            "listenbrainz",
            "--token",
            f"{TOKEN}:bench",
            "--limit",
            str(args.limit),
            "--window",
            str(args.window),
            "--count-only",
            workdir=workdir,
        )
        sections = base_sections(
            workdir, listenbrainz={"enabled": True, "api_url": f"{sim.url}/", "token": TOKEN}
        )
        config = write_config(workdir / "musiqued.toml", sections)
        daemon = DaemonProcess(workdir, config, workdir / "d.sock").start()
        assert daemon.proc is not None
        pid = daemon.proc.pid
        try:
            rss_start = rss_middle = 0
            received = 0
            while received < args.listens:
                time.sleep(0.25)
                received = int(admin(sim, "stats")["listens"])
                if received and not rss_start:
                    rss_start = rss_kb(pid)
                if received >= args.listens // 2 and not rss_middle:
                    rss_middle = rss_kb(pid)
            rss_end = rss_kb(pid)
            stats = admin(sim, "stats")
            requests = admin(sim, "requests")
            status = daemon.call("mirror.status")
        finally:
            daemon.stop()
            daemon.kill()
            sim.stop()
    counts = per_window(requests, args.window)
    whole = [counts[w] for w in range(min(counts) + 1, max(counts))]
    ratio = sum(whole) / (args.limit * len(whole)) if whole else 0.0
    most = max(counts.values())
    print(f"mirror: {status['submitted']:,} listens submitted, {status['pending']} pending")
    print(
        f"rate: {sum(whole) / (len(whole) * args.window):.3f} requests/s over {len(whole)} "
        f"whole windows, of {args.limit / args.window:.3f} allowed ({args.limit} per "
        f"{args.window} s): ratio {ratio:.3f} (target >= 0.95)"
    )
    print(
        f"most requests in a window: {most} (limit {args.limit}); 429 answers: "
        f"{stats['statuses'].get('429', 0)} (target 0)"
    )
    print(
        f"daemon RSS: {rss_start / 1024:.1f} MB at the start, {rss_middle / 1024:.1f} MB at "
        f"the middle, {rss_end / 1024:.1f} MB at the end (target: end within 10 % of middle)"
    )
    flat = rss_end <= rss_middle * 1.1
    within = most <= args.limit and not stats["statuses"].get("429")
    return 0 if ratio >= 0.95 and flat and within else 1


if __name__ == "__main__":
    raise SystemExit(main())
