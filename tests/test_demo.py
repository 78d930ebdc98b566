"""``make demo``'s manners: help on ``--help``, covers on its library's albums, where to go
next at the end, and Ctrl-C at any step (or its reader leaving a pipe) stopping everything
it started, with no traceback and its temporary folder removed."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
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


def _is_image(body: bytes) -> bool:
    """JPEG, PNG, WebP or GIF bytes, by their first bytes (the placeholder is an SVG)."""
    return body.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a")) or (
        body[:4] == b"RIFF" and body[8:12] == b"WEBP"
    )


def _covers_shown(origin: str, token: str) -> list[bytes] | None:
    """The bytes of the covers the library's top albums show (as the page asks for them),
    or None while an album has none, or only the placeholder, yet."""

    def get(path: str) -> bytes:
        request = urllib.request.Request(  # noqa: S310 (the demo's loopback listener)
            origin + path, headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            body: bytes = answer.read()
            return body

    top = json.loads(get("/api/v1/library/top?kind=albums&limit=10"))
    covers = []
    for album in top["items"]:
        if album["image"] is None or not album["image"].startswith("/images/"):
            return None
        body = get(album["image"])
        if not _is_image(body):
            return None
        covers.append(body)
    return covers or None


@pytest.mark.slow
def test_a_whole_run_shows_covers_then_says_where_to_go_next(demo: _Demo) -> None:
    """A demo that runs to its end: after its import, the library's top albums have covers
    (real image bytes the daemon serves under /images/, each album its own); then it stops
    everything, and its last lines name the library's pages, ``musiquectl --help`` and the
    README."""
    # After the import, the demo's next steps (the tracker followed live) keep the daemon
    # up: the demo alone is held there (SIGSTOP; the daemon runs on) while covers arrive.
    demo.read_until(b"$ musiquectl status")
    found = re.search(rb"the library is at (http://127\.0\.0\.1:\d+)/library", demo.out)
    assert found is not None, demo.out
    token = (demo.workdir / "http-token").read_text(encoding="utf-8").strip()
    os.kill(demo.proc.pid, signal.SIGSTOP)
    try:
        deadline = time.monotonic() + 60
        covers = _covers_shown(found.group(1).decode(), token)
        while covers is None:
            assert time.monotonic() < deadline, "the demo's top albums got no covers"
            time.sleep(0.2)
            covers = _covers_shown(found.group(1).decode(), token)
    finally:
        os.kill(demo.proc.pid, signal.SIGCONT)
    assert len(set(covers)) == len(covers)
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
