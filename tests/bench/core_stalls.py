"""How often this machine takes its cores away: a floor under any latency measured on it.

One process per core, pinned to it, reads the clock in a tight loop with nothing else to
wait for; a gap of over a millisecond between two reads is time the core was given to
something else: the kernel's own threads (here DAMON's ``kdamond``, a memory monitor, for
up to 4 ms at a time), or the host pausing the virtual CPU, which this guest does not see
(it counts no steal time). A thread of any program on that core, the daemon's event loop included,
is stopped for as long. Run it with the machine otherwise idle.

    .venv/bin/python tests/bench/core_stalls.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass

STALL_NS = 1_000_000


@dataclass(frozen=True)
class CoreStalls:
    core: int
    seconds: float
    stalls_ms: list[float]
    """Every gap between two reads of the clock over ``STALL_NS``."""

    def summary(self) -> str:
        longest = max(self.stalls_ms, default=0.0)
        over_2 = sum(stall > 2 for stall in self.stalls_ms)
        lost = sum(self.stalls_ms) / 1000 / self.seconds
        return (
            f"core {self.core}: {len(self.stalls_ms)} stalls over 1 ms in {self.seconds:.0f} s "
            f"({over_2} over 2 ms, the longest {longest:.1f} ms), {lost:.2%} of the time"
        )


def watch(core: int, seconds: float) -> list[float]:
    """Spin on ``core`` for ``seconds``; the stalls seen, in ms."""
    os.sched_setaffinity(0, {core})
    clock = time.perf_counter_ns
    stalls: list[float] = []
    last = clock()
    end = last + int(seconds * 1e9)
    while last < end:
        now = clock()
        if now - last > STALL_NS:
            stalls.append((now - last) / 1e6)
        last = now
    return stalls


def measure(seconds: float) -> list[CoreStalls]:
    """Watch every core this process may run on for ``seconds``, all at once (a process
    each: threads would take turns at the GIL)."""
    watchers = {
        core: subprocess.Popen(
            [sys.executable, __file__, "--core", str(core), "--seconds", str(seconds)],
            stdout=subprocess.PIPE,
        )
        for core in sorted(os.sched_getaffinity(0))
    }
    results = []
    for core, watcher in watchers.items():
        output, _ = watcher.communicate(timeout=seconds + 60)
        results.append(CoreStalls(core, seconds, json.loads(output)))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--core", type=int, help="watch this core only; print its stalls as JSON")
    args = parser.parse_args()
    if args.core is not None:
        print(json.dumps(watch(args.core, args.seconds)))
        return
    for core in measure(args.seconds):
        print(core.summary())


if __name__ == "__main__":
    main()
