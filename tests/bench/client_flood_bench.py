"""Clients that ask for large answers and never read them, against musiqued as a process:
how fast ``daemon.status`` is answered to another user throughout, and the daemon's peak
memory. Not a test (``tests/test_client_memory.py`` checks the same flood is bounded and
answered).

200 socket clients of uid nobody each send two batch lines of 100
``history.recent {limit: 5000}`` and 120 HTTP clients pipeline 20 such requests; none reads.
Meanwhile ``daemon.status`` is asked every 20 ms on fresh connections for 15 s. Run as root
(the flood's clients are another uid).

    .venv/bin/python tests/bench/client_flood_bench.py

Targets: ``daemon.status`` within 100 ms throughout (its slowest call, and the 99th
percentile beside it), peak RSS ≤ 400 MB.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.flood_support import (  # noqa: E402
    PROBE_EVERY_S,
    http_flood,
    peak_rss_kb,
    probe_rpc,
    socket_flood,
)
from tests.history_support import generated, seed  # noqa: E402
from tests.rawrpc import NOBODY  # noqa: E402
from tests.support import (  # noqa: E402
    HTTP_TOKEN,
    DaemonProcess,
    base_sections,
    free_port,
    short_tmp,
    write_config,
)

LISTENS = 6000
STATUS_MS = 100.0
PEAK_RSS_MB = 400.0


def verdict(holds: bool) -> str:
    return "holds" if holds else "does not hold"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="how long status is probed")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the flood's clients run as uid nobody")
    with short_tmp() as workdir:
        workdir.chmod(0o755)
        seed(workdir / "musique.db", generated(LISTENS))
        port = free_port()
        sections = base_sections(
            workdir,
            daemon={"socket_mode": "0666", "allowed_uids": [NOBODY]},
            http={"listen": f"127.0.0.1:{port}", "token": HTTP_TOKEN},
        )
        config = write_config(workdir / "musiqued.toml", sections)
        daemon = DaemonProcess(workdir, config, workdir / "d.sock").start()
        try:
            assert daemon.proc is not None
            with socket_flood(daemon.socket_path) as sent, http_flood(port):
                probe = probe_rpc(daemon.socket_path, args.seconds, every=PROBE_EVERY_S)
                peak_mb = peak_rss_kb(daemon.proc.pid) / 1024
        finally:
            daemon.stop()
    slowest = [(round(at, 2), round(ms)) for at, ms in probe.slowest]
    print(
        f"flood: {sent} socket clients sent both batch lines; load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"daemon.status: {probe.calls} calls, {probe.failures} failed, median "
        f"{probe.median_ms:.1f} ms, p99 {probe.p99_ms:.1f} ms, slowest {probe.max_ms:.1f} ms "
        f"(s into the probe, ms: {slowest})"
        f"   (target: within {STATUS_MS:.0f} ms throughout: "
        f"{verdict(probe.failures == 0 and probe.max_ms <= STATUS_MS)})"
    )
    print(
        f"peak RSS: {peak_mb:.0f} MB   (target <= {PEAK_RSS_MB:.0f} MB: "
        f"{verdict(peak_mb <= PEAK_RSS_MB)})"
    )
    if probe.failures or probe.max_ms > STATUS_MS or peak_mb > PEAK_RSS_MB:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
