"""HTTP flood benchmark: 1,100 requests whose headers never end plus idle keep-alive
connections against musiqued's HTTP listener, started with systemd's default soft descriptor
limit (1024). Prints the daemon's descriptors and the control socket's latency before, during
and after, and how long the stalled connections stay open. Not a test.

    .venv/bin/python tests/bench/http_flood_bench.py [--connections 1100] [--keepalives 50]

Targets: no RPC call fails during the flood, its median latency stays within 2x of the quiet
one, the daemon's descriptors stay under 300, every stalled connection is closed within the
configured timeouts (defaults: 10 s for a request, 30 s for an idle connection).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.flood_support import (  # noqa: E402
    HALF_SENT,
    SYSTEMD_DEFAULT_NOFILE,
    allow_descriptors,
    close_all,
    fd_count,
    nofile_soft_limit,
    open_idle_keepalives,
    open_slow,
    probe_rpc,
    wait_closed,
)
from tests.support import DaemonProcess, base_sections, free_port, short_tmp, write_config  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=1100)
    parser.add_argument("--keepalives", type=int, default=50)
    parser.add_argument("--wait", type=float, default=45.0, help="seconds to wait for closes")
    args = parser.parse_args()
    allow_descriptors(args.connections + args.keepalives)
    with short_tmp() as workdir:
        port = free_port()
        config = write_config(
            workdir / "musiqued.toml",
            base_sections(workdir, http={"listen": f"127.0.0.1:{port}"}),
        )
        daemon = DaemonProcess(workdir, config, workdir / "d.sock")
        with nofile_soft_limit(SYSTEMD_DEFAULT_NOFILE):
            daemon.start()
        assert daemon.proc is not None
        pid = daemon.proc.pid
        try:
            quiet = probe_rpc(daemon.socket_path, 2.0)
            print(f"quiet: {fd_count(pid)} fds; daemon.status median {quiet.median_ms:.2f} ms")

            started = time.monotonic()
            idle = open_idle_keepalives(port, args.keepalives)
            stalled = open_slow(port, args.connections, HALF_SENT)
            print(
                f"flood: {len(stalled)}/{args.connections} half-sent requests and "
                f"{len(idle)}/{args.keepalives} idle keep-alives connected in "
                f"{time.monotonic() - started:.1f} s"
            )
            during = probe_rpc(daemon.socket_path, 3.0)
            fds = fd_count(pid)
            ctl_started = time.perf_counter()
            ctl = daemon.ctl("status", timeout=30)
            ctl_ms = (time.perf_counter() - ctl_started) * 1000
            print(
                f"during: {fds} fds; daemon.status {during.calls} calls, "
                f"{during.failures} failed, median {during.median_ms:.2f} ms, "
                f"max {during.max_ms:.2f} ms; ratio to quiet "
                f"{during.median_ms / quiet.median_ms:.2f}x"
            )
            if during.first_error:
                print(f"  first RPC error: {during.first_error}")
            print(f"  musiquectl status: exit {ctl.returncode} in {ctl_ms:.0f} ms")

            for name, group in (("half-sent", stalled), ("idle keep-alive", idle)):
                endings = [e for e in wait_closed(group, args.wait) if e is not None]
                last = max((e.at for e in endings), default=started) - started
                print(
                    f"after: {len(endings)}/{len(group)} {name} connections closed by the "
                    f"daemon, the last {last:.1f} s after the flood began"
                )
            print(f"  then {fd_count(pid)} fds")
            close_all(stalled + idle)
        finally:
            daemon.stop()
            daemon.kill()
        if "Traceback" in daemon.logs():
            print("the daemon logged a traceback", file=sys.stderr)


if __name__ == "__main__":
    main()
