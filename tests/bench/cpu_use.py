"""Where the CPU went while a bench ran: per process, and the daemon's event loop apart.

Read from the kernel's accounting: ``/proc/PID/task/TID/schedstat`` (a thread's time on a
core, and its time runnable but waiting for one), ``/proc/PID/stat`` (a process's CPU time,
its ended threads included) and ``/proc/stat`` (the whole machine, kernel threads such as
writeback included). A latency figure from a machine whose cores are near
full says as much about the machine as about the daemon: this shows which it was.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class TaskTimes:
    """Seconds a thread (or threads, summed) ran on a core and waited runnable for one."""

    running_s: float
    waiting_s: float

    def __sub__(self, other: TaskTimes) -> TaskTimes:
        return TaskTimes(self.running_s - other.running_s, self.waiting_s - other.waiting_s)


def thread_times(pid: int) -> dict[int, TaskTimes]:
    """Each live thread of ``pid`` (by thread id); {} once the process is gone."""
    times = {}
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return {}
    for tid in tasks:
        try:
            running, waiting, _ = Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()
        except (FileNotFoundError, ProcessLookupError):
            continue  # the thread ended meanwhile
        times[int(tid)] = TaskTimes(int(running) / 1e9, int(waiting) / 1e9)
    return times


def process_cpu_s(pid: int) -> float:
    """CPU seconds of all of ``pid``'s threads, ended ones included (0.0 once it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def busy_cores_s() -> float:
    """Core-seconds the whole machine has spent busy (not idle, not waiting on I/O)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / _CLOCK_TICKS


class CpuUse:
    """What ``processes`` (label: pid) and the machine used between ``__init__`` and
    ``summary``. The process labelled ``loop_of`` has its main thread (asyncio's event
    loop, for the daemon) shown apart from its other threads."""

    def __init__(self, processes: dict[str, int], loop_of: str) -> None:
        self._processes = processes
        self._loop_of = loop_of
        self._started = time.perf_counter()
        self._busy = busy_cores_s()
        self._threads = {label: thread_times(pid) for label, pid in processes.items()}
        self._cpu = {label: process_cpu_s(pid) for label, pid in processes.items()}

    def summary(self) -> str:
        """One line: each process's share of a core over the time since ``__init__``, and
        (in brackets) the share its threads spent runnable, waiting for a core."""
        wall = time.perf_counter() - self._started
        busy = (busy_cores_s() - self._busy) / wall / (os.cpu_count() or 1)
        parts = []
        for name, pid in self._processes.items():
            label, before = name, self._threads[name]
            # A thread that ended meanwhile is missing here (its waits are not counted), but
            # not from the process's CPU time.
            spent = {
                tid: times - before.get(tid, TaskTimes(0.0, 0.0))
                for tid, times in thread_times(pid).items()
            }
            running = process_cpu_s(pid) - self._cpu[name]
            if name == self._loop_of:
                loop = spent.pop(pid, TaskTimes(0.0, 0.0))
                loop_share = _share(loop.running_s, loop.waiting_s, wall)
                parts.append(f"{label}'s event loop {loop_share}")
                running -= loop.running_s
                label = "its other threads"
            waiting = sum(times.waiting_s for times in spent.values())
            parts.append(f"{label} {_share(running, waiting, wall)}")
        return (
            f"CPU, % of one core (waiting for one): {', '.join(parts)}; "
            f"the {os.cpu_count()} cores {busy:.0%} busy"
        )


def _share(running_s: float, waiting_s: float, wall: float) -> str:
    return f"{max(running_s, 0.0) / wall:.0%} ({waiting_s / wall:.0%})"


__all__ = ["CpuUse", "TaskTimes", "busy_cores_s", "process_cpu_s", "thread_times"]
