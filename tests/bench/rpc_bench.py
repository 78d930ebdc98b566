"""RPC benchmark: daemon start to READY, idle RSS, daemon.status throughput and latency (1 and
50 clients), and musiquectl's wall time next to a bare ``python -c pass`` in the same run.
Prints its figures; not a test.

    .venv/bin/python tests/bench/rpc_bench.py [--seconds 3]

Targets on a 2-core machine, HTTP listener off, Spotify and AI unconfigured: start to READY
<= 0.4 s median; idle RSS <= 45 MB; >= 10,000 calls/s with 50 clients and p99 <= 5 ms;
``musiquectl --json status`` <= 45 ms median where bare python takes 16 ms (printed as the
ratio of the two medians in this run: <= 2.81).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent

from musiquectl.client import Client  # noqa: E402
from tests.support import SimulatorProcess, base_sections  # noqa: E402
from tests.support import write_config as support_write_config  # noqa: E402

REQUEST = b'{"jsonrpc":"2.0","method":"daemon.status","id":1}\n'


def write_config(workdir: Path, lastfm_url: str | None = None, *, tracker: bool = False) -> Path:
    sections = base_sections(workdir)
    if lastfm_url is not None:
        sections["lastfm"] = {
            "api_key": "simkey",
            "username": "simuser",
            "api_url": f"{lastfm_url}/2.0/",
        }
    if tracker:
        sections["tracker"] = {"autostart": True}
    return support_write_config(workdir / "musiqued.toml", sections)


def idle_with_lastfm(workdir: Path, *, tracker: bool) -> float:
    """Idle RSS (MB) with Last.fm set against a simulated Last.fm: the tracker not started
    (the default: nothing asked of Last.fm, so aiohttp is not loaded), or started and past
    its first poll (what the tracker needs, aiohttp, counts then)."""
    run = workdir / ("with-tracker" if tracker else "with-lastfm")
    run.mkdir()
    sim = SimulatorProcess("lastfm", "--size", "1000", workdir=run)
    try:
        proc, _ = start(run, write_config(run, sim.url, tracker=tracker))
        try:
            sock_path = run / "d.sock"
            wait_answers(sock_path)
            if tracker:
                with Client(sock_path, timeout=30) as client:
                    while client.call("tracker.status")["last_poll_at"] is None:
                        time.sleep(0.05)
            time.sleep(2)  # settle, as for the idle figure without Last.fm
            return rss_mb(proc.pid)
        finally:
            stop(proc)
    finally:
        sim.stop()


def start(workdir: Path, config: Path) -> tuple[subprocess.Popen[bytes], float]:
    """Start musiqued as systemd would (``NOTIFY_SOCKET`` set); returns the process and the
    seconds until it sent ``READY=1``."""
    notify_path = workdir / "notify.sock"
    notify_path.unlink(missing_ok=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(notify_path))
        notify.settimeout(10)
        started = time.perf_counter()
        proc = subprocess.Popen(
            [
                str(BIN / "musiqued"),
                "--config",
                str(config),
                "--log-target",
                "logfmt",
                "--log-level",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "NOTIFY_SOCKET": str(notify_path)},
        )
        while True:
            try:
                message = notify.recv(4096)
            except TimeoutError:
                proc.kill()
                raise SystemExit(f"musiqued sent no READY=1 (exit {proc.poll()})") from None
            if b"READY=1" in message.split(b"\n"):
                return proc, time.perf_counter() - started


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise SystemExit("no VmRSS")


def wait_answers(sock_path: Path) -> None:
    while True:
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(str(sock_path))
                s.sendall(REQUEST)
                if s.recv(65536):
                    return
        except OSError:
            time.sleep(0.002)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(15)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _client(path: str, deadline: float, latencies: list[float]) -> None:
    reader, writer = await asyncio.open_unix_connection(path, limit=1 << 20)
    while (now := time.perf_counter()) < deadline:
        writer.write(REQUEST)
        line = await reader.readline()
        if not line.endswith(b"}\n"):
            raise SystemExit(f"bad answer {line[:200]!r}")
        latencies.append(time.perf_counter() - now)
    writer.close()


async def _load(path: str, clients: int, seconds: float) -> tuple[float, list[float]]:
    gc.collect()
    gc.freeze()
    latencies: list[float] = []
    # Warm-up, then the measured run.
    await asyncio.gather(*(_client(path, time.perf_counter() + 0.3, []) for _ in range(clients)))
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(*(_client(path, deadline, latencies) for _ in range(clients)))
    return len(latencies) / (time.perf_counter() - started), latencies


def load(path: str, clients: int, seconds: float) -> tuple[float, list[float]]:
    try:
        import uvloop

        return uvloop.run(_load(path, clients, seconds))
    except ImportError:
        return asyncio.run(_load(path, clients, seconds))


def report_load(label: str, rate: float, latencies: list[float]) -> None:
    print(
        f"{label}: {rate:,.0f} calls/s, p50 {statistics.median(latencies) * 1000:.3f} ms, "
        f"p99 {percentile(latencies, 0.99) * 1000:.3f} ms ({len(latencies):,} calls)"
    )


def wall_times(cases: dict[str, list[str]], env: dict[str, str], runs: int) -> dict[str, float]:
    """Median wall time of each command, the cases interleaved run by run so that a moment's
    load on this shared machine falls on all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(runs):
        for name, argv in cases.items():
            started = time.perf_counter()
            done = subprocess.run(argv, capture_output=True, env=env, check=True)
            times[name].append(time.perf_counter() - started)
            if argv[-1] == "status":
                json.loads(done.stdout)
    return {name: statistics.median(values) for name, values in times.items()}


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    print(f"rpc bench on {os.cpu_count()} cores, python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory(prefix="mq-bench-", dir="/tmp") as name:
        workdir = Path(name)
        config = write_config(workdir)
        ready = []
        for _ in range(7):
            proc, seconds = start(workdir, config)
            ready.append(seconds)
            stop(proc)
        median_ready = statistics.median(ready)
        print(
            f"daemon start to READY=1: median {median_ready:.3f} s "
            f"(min {min(ready):.3f}, max {max(ready):.3f}, 7 starts; target <= 0.4 s: "
            f"{verdict(median_ready <= 0.4)})"
        )
        proc, _ = start(workdir, config)
        try:
            sock_path = workdir / "d.sock"
            wait_answers(sock_path)
            time.sleep(2)  # settle: idle means after start-up, not during it
            idle = rss_mb(proc.pid)
            print(
                f"daemon idle RSS: {idle:.1f} MB (HTTP listener off, Last.fm, Spotify, AI "
                f"unconfigured; target <= 45 MB: {verdict(idle <= 45)})"
            )
            path = str(sock_path)
            report_load("daemon.status, 1 client", *load(path, 1, args.seconds))
            report_load("daemon.status, 50 clients", *load(path, 50, args.seconds))
            # As on a user's machine, Python keeps the compiled modules (this sandbox sets
            # PYTHONDONTWRITEBYTECODE, which would recompile musiquectl on every run).
            env = {**os.environ, "MUSIQUED_SOCKET": path}
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            medians = wall_times(
                {
                    "bare": [sys.executable, "-c", "pass"],
                    "click": [sys.executable, "-c", "import click"],
                    "ctl": [str(BIN / "musiquectl"), "--json", "status"],
                },
                env,
                40,
            )
            ctl, share = medians["ctl"], medians["ctl"] - medians["bare"]
            print(
                f"musiquectl --json status: median {ctl * 1000:.1f} ms; bare python -c pass "
                f"{medians['bare'] * 1000:.1f} ms; musiquectl's own share {share * 1000:.1f} ms, "
                f"of which importing click {(medians['click'] - medians['bare']) * 1000:.1f} ms "
                f"(40 interleaved runs each)"
            )
            # The target (45 ms where bare python takes 16 ms) as a ratio to bare python in
            # this run: both are mostly Python starting and importing, which scale together
            # with the machine.
            ratio = ctl / medians["bare"]
            print(
                f"musiquectl --json status / bare python: {ratio:.2f} "
                f"(target <= {45 / 16:.2f}, the issue's 45 ms over 16 ms: {verdict(ratio <= 45 / 16)})"
            )
        finally:
            stop(proc)
        with_lastfm = idle_with_lastfm(workdir, tracker=False)
        print(
            f"daemon idle RSS with Last.fm set (HTTP listener off, Spotify and AI "
            f"unconfigured): {with_lastfm:.1f} MB (target <= 45 MB: {verdict(with_lastfm <= 45)})"
        )
        tracking = idle_with_lastfm(workdir, tracker=True)
        print(
            f"daemon RSS with the tracker running, after its first poll (aiohttp loaded): "
            f"{tracking:.1f} MB"
        )


if __name__ == "__main__":
    main()
