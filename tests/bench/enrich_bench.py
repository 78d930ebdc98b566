"""Import throughput with enrichment on vs off: enrichment must not slow an import.

The same simulated history is imported twice per round into a fresh database by the real
daemon, once with ``[enrichment] enabled = true`` (Last.fm, Spotify and AI all configured,
their simulators up) and once with ``enabled = false``; rounds alternate the order. Each
simulator is its own process (``musique-sim lastfm|spotify|ai``), as the services would be.
Prints the median scrobbles/s of each mode, the ratio on/off (target >= 0.90), and how much
enrichment got done while the import ran.

    .venv/bin/python tests/bench/enrich_bench.py [--size 100000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support import DaemonProcess, SimulatorProcess, short_tmp, write_config  # noqa: E402

BIN = Path(sys.executable).parent


def run_import(workdir: Path, sections: dict[str, Any], enabled: bool) -> dict[str, Any]:
    run = workdir / ("on" if enabled else "off")
    run.mkdir()
    sections = {
        **sections,
        "daemon": {"socket": str(run / "d.sock"), "database": str(run / "musique.db")},
        "enrichment": {"enabled": enabled},
    }
    config = write_config(run / "musiqued.toml", sections)
    daemon = DaemonProcess(run, config, run / "d.sock").start()
    try:
        started = time.monotonic()
        job_id = daemon.call("import.start", {"all": True})["job_id"]
        job = daemon.wait_until(
            lambda: (
                (j := daemon.call("import.status", {"job_id": job_id}))["state"] == "done" and j
            ),
            timeout=600,
            interval=0.02,
        )
        elapsed = time.monotonic() - started
        enrich = daemon.call("enrich.status")
    finally:
        daemon.stop()
    return {
        "rate": job["tracks_imported"] / elapsed,
        "elapsed": elapsed,
        "albums": job["total_albums_to_enrich"],
        "enriched_during": job["albums_enriched"],
        "done_during": enrich["done"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with short_tmp() as workdir:
        lastfm = SimulatorProcess("lastfm", "--size", str(args.size), workdir=workdir)
        spotify = SimulatorProcess("spotify", workdir=workdir)
        ai = SimulatorProcess("ai", workdir=workdir)
        sections = {
            "lastfm": {
                "api_key": "simkey",
                "username": "simuser",
                "api_url": f"{lastfm.url}/2.0/",
                "requests_per_second": 100_000.0,
                "max_in_flight": 4,
                "page_size": 1000,
            },
            "spotify": {
                "client_id": "simclient",
                "client_secret": "simclientsecret",
                "api_url": f"{spotify.url}/v1/",
                "token_url": f"{spotify.url}/api/token",
            },
            "ai": {
                "api_url": f"{ai.url}/1/ai/1/openai/chat/completions",
                "api_key": "simaikey",
                "model": "sim-llm",
                "requests_per_second": 50.0,
            },
        }
        results: dict[bool, list[dict[str, Any]]] = {True: [], False: []}
        try:
            for round_no in range(args.rounds):
                order = (False, True) if round_no % 2 == 0 else (True, False)
                for enabled in order:
                    with short_tmp() as rundir:
                        result = run_import(rundir, sections, enabled)
                    results[enabled].append(result)
                    print(
                        f"round {round_no + 1} enrichment {'on ' if enabled else 'off'}: "
                        f"{result['rate']:,.0f} scrobbles/s ({result['elapsed']:.2f} s, "
                        f"{result['albums']} albums, {result['done_during']} enrichment "
                        f"rows done during the import)",
                        flush=True,
                    )
        finally:
            for sim in (lastfm, spotify, ai):
                sim.stop()
    on = statistics.median(r["rate"] for r in results[True])
    off = statistics.median(r["rate"] for r in results[False])
    print(f"\n{args.size:,} scrobbles, median of {args.rounds} rounds")
    print(f"enrichment off: {off:,.0f} scrobbles/s")
    print(f"enrichment on:  {on:,.0f} scrobbles/s")
    print(f"ratio on/off:   {on / off:.3f} (target >= 0.90)")


if __name__ == "__main__":
    main()
