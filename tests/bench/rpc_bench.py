"""RPC benchmark: daemon.status throughput and latency (1 and 50 clients), musiquectl's wall
time, and daemon start-to-ready. Prints its figures; not a test.

    .venv/bin/python tests/bench/rpc_bench.py [--seconds 3]

Targets on a 2-core machine: >= 10,000 calls/s with 50 clients and p99 <= 5 ms;
``musiquectl status --json`` <= 100 ms median; ready <= 1.0 s.
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
BIN = Path(sys.executable).parent
REQUEST = b'{"jsonrpc":"2.0","method":"daemon.status","id":1}\n'


def write_config(workdir: Path) -> Path:
    path = workdir / "musiqued.toml"
    path.write_text(
        f'[daemon]\nsocket = "{workdir / "d.sock"}"\ndatabase = "{workdir / "m.db"}"\n',
        encoding="utf-8",
    )
    return path


def start(workdir: Path, config: Path) -> tuple[subprocess.Popen[bytes], float]:
    """Start musiqued; returns the process and seconds until the socket answered."""
    sock_path = workdir / "d.sock"
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
    )
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"musiqued exited with {proc.returncode}")
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(str(sock_path))
                s.sendall(REQUEST)
                if s.recv(65536):
                    return proc, time.perf_counter() - started
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


def ctl_wall_time(sock_path: Path, runs: int) -> float:
    times = []
    env = {**os.environ, "MUSIQUED_SOCKET": str(sock_path)}
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(
            [str(BIN / "musiquectl"), "--json", "status"],
            capture_output=True,
            env=env,
            check=True,
        )
        times.append(time.perf_counter() - started)
        json.loads(done.stdout)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    print(f"rpc bench on {os.cpu_count()} cores, python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory(prefix="mq-bench-", dir="/tmp") as name:
        workdir = Path(name)
        config = write_config(workdir)
        ready = []
        for _ in range(5):
            proc, seconds = start(workdir, config)
            ready.append(seconds)
            stop(proc)
        print(
            f"daemon start to socket ready: median {statistics.median(ready):.3f} s "
            f"(min {min(ready):.3f}, max {max(ready):.3f}, 5 starts)"
        )
        proc, _ = start(workdir, config)
        try:
            path = str(workdir / "d.sock")
            report_load("daemon.status, 1 client", *load(path, 1, args.seconds))
            report_load("daemon.status, 50 clients", *load(path, 50, args.seconds))
            print(
                f"musiquectl --json status: median {ctl_wall_time(workdir / 'd.sock', 20) * 1000:.1f} ms "
                "(20 runs)"
            )
        finally:
            stop(proc)


if __name__ == "__main__":
    main()
