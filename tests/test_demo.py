"""``make demo``'s manners: help on ``--help``, where to go next at the end, and Ctrl-C at
any step (or its reader leaving a pipe) stopping everything it started, with no traceback
and its temporary folder removed."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import ROOT

DEMO = [sys.executable, "-m", "musiqued.sim.demo", "--size", "600"]
WORKDIR = re.compile(rb"working in (/tmp/musique-demo-\S+)")


def _children(root: int) -> set[int]:
    """Every process descended from ``root`` now (from /proc), however deep."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdecimal():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its parent is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


class _Demo:
    """The demo in a process group of its own, its output read as it comes."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            DEMO,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self.out = b""
        self.started: set[int] = set()

    def read_until(self, marker: bytes, timeout: float = 120) -> None:
        """Read the output until ``marker``, noting every process the demo has started."""
        assert self.proc.stdout is not None
        os.set_blocking(self.proc.stdout.fileno(), False)
        deadline = time.monotonic() + timeout
        while marker not in self.out:
            assert time.monotonic() < deadline, self.out.decode(errors="replace")
            assert self.proc.poll() is None, self.out.decode(errors="replace")
            chunk = self.proc.stdout.read()
            if chunk:
                self.out += chunk
            self.started |= _children(self.proc.pid)
            time.sleep(0.05)

    @property
    def workdir(self) -> Path:
        found = WORKDIR.search(self.out)
        assert found is not None, self.out
        return Path(found.group(1).decode())

    def finish(self) -> tuple[int, str]:
        """The rest of its output read, its exit status and stderr."""
        assert self.proc.stdout is not None
        assert self.proc.stderr is not None
        os.set_blocking(self.proc.stdout.fileno(), True)
        self.out += self.proc.stdout.read()
        err = self.proc.stderr.read().decode(errors="replace")
        return self.proc.wait(120), err


@pytest.fixture
def demo() -> Iterator[_Demo]:
    running = _Demo()
    try:
        yield running
    finally:
        if running.proc.poll() is None:
            os.killpg(running.proc.pid, signal.SIGKILL)
            running.proc.wait()
        for pid in running.started:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        for stream in (running.proc.stdout, running.proc.stderr):
            if stream is not None:
                stream.close()


def test_help_shows_help_and_runs_nothing() -> None:
    """``python -m musiqued.sim.demo --help`` prints its usage and starts nothing."""
    done = subprocess.run(
        [sys.executable, "-m", "musiqued.sim.demo", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0
    assert done.stdout.startswith("Usage: python -m musiqued.sim.demo [OPTIONS]")
    assert "Ctrl-C" in done.stdout
    assert "working in" not in done.stdout


@pytest.mark.parametrize(
    "step",
    [b"starting musiqued against it", b"$ musiquectl import --all", b"$ musiquectl watch"],
)
def test_ctrl_c_at_a_step_stops_everything(demo: _Demo, step: bytes) -> None:
    """SIGINT to the demo's process group (Ctrl-C) at a step: exit 130, one line saying so,
    no traceback, no daemon, simulator or watch left, the temporary folder gone."""
    demo.read_until(step)
    assert demo.started, "the demo had started nothing yet"
    os.killpg(demo.proc.pid, signal.SIGINT)
    status, err = demo.finish()
    assert status == 130, err
    assert "Traceback" not in err
    assert err.strip().endswith("demo interrupted; everything it started is stopped")
    assert [pid for pid in demo.started if _alive(pid)] == []
    assert not demo.workdir.exists()


def test_a_reader_leaving_the_pipe_stops_everything(demo: _Demo) -> None:
    """``make demo | head``: once the reader is gone, the demo stops everything it started,
    quietly (no traceback), and removes its folder."""
    demo.read_until(b"$ musiquectl status")
    assert demo.proc.stdout is not None
    demo.proc.stdout.close()  # what head does after its lines
    assert demo.proc.stderr is not None
    err = demo.proc.stderr.read().decode(errors="replace")
    demo.proc.wait(120)
    assert demo.proc.returncode == 0, err
    assert "Traceback" not in err
    assert [pid for pid in demo.started if _alive(pid)] == []
    assert not demo.workdir.exists()


def test_the_last_lines_say_where_to_go_next(demo: _Demo) -> None:
    """A demo that runs to its end stops everything, then its last lines name the library's
    pages, ``musiquectl --help`` and the README."""
    demo.read_until(b"the statistics of the last 30 days")
    status, err = demo.finish()
    assert status == 0, err
    lines = demo.out.decode().rstrip().splitlines()
    assert lines[-4] == "demo finished. Where next:", lines[-6:]
    assert re.fullmatch(
        r"  - the library's pages \(here they were at http://127\.0\.0\.1:\d+/library\): .*",
        lines[-3],
    )
    assert lines[-2] == "  - musiquectl --help, and each command's --help, with examples"
    assert lines[-1] == f"  - the README: {ROOT / 'README.md'}"
    assert [pid for pid in demo.started if _alive(pid)] == []
    assert not demo.workdir.exists()
