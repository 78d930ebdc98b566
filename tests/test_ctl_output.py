"""What ``musiquectl`` prints for people and scripts: headers, labels, limits, narrow
terminals, exports, and the followers that outlive a daemon restart."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from musiquectl.terminal import ERASE_LINE, display_width
from tests.fixtures.daemon import StartDaemon
from tests.fixtures.lastfm import SimulatedLastfm
from tests.fixtures.whole_daemon import StartWholeDaemon, ThreadedWholeDaemon, whole_daemons
from tests.history_support import generated, seed
from tests.import_helpers import wait_pages
from tests.support import VENV_BIN, DaemonProcess, base_sections, short_tmp, write_config
from tests.tty import TtyProcess, run_on_tty
from tests.untrusted import assert_inert

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d  ")


HISTORY = generated(90, step=100)
"""The listens of ``history_daemon``: awkward names, three to a second, all in one UTC day."""


@pytest.fixture(scope="module")
def history_daemon() -> Iterator[ThreadedWholeDaemon]:
    """One daemon holding ``HISTORY``, for the tests that only read it."""
    with short_tmp() as workdir, whole_daemons(workdir) as start:
        seed(workdir / "musique.db", HISTORY)
        yield start()


def test_piped_tables_keep_a_header_and_stats_labels_its_blocks(
    history_daemon: ThreadedWholeDaemon,
) -> None:
    """Piped, a table is a header line then tab-separated rows (``--no-header``: rows only);
    ``stats`` labels its three blocks piped and on a terminal."""
    daemon = history_daemon
    lines = daemon.ctl("history", "-n", "5").stdout.splitlines()
    assert lines[0] == "played (local)\tartist\ttitle\talbum\tsource\tloved"
    assert len(lines) == 6
    bare = daemon.ctl("--no-header", "history", "-n", "5").stdout.splitlines()
    assert bare == lines[1:]

    piped = daemon.ctl("stats").stdout.splitlines()
    per_day = "Listens per day (the last 1 day with listens)"
    for label, header in (
        ("Top artists", "#\tartist\tlistens"),
        ("Top albums", "#\talbum\tartist\tlistens"),
        (per_day, "day (UTC)\tlistens\t"),
    ):
        assert piped[piped.index(label) + 1] == header
    on_tty = run_on_tty("stats", socket_path=daemon.socket_path).plain
    for label in ("Top artists", "Top albums", per_day):
        assert label in on_tty


def test_history_says_when_it_stopped_at_its_limit(history_daemon: ThreadedWholeDaemon) -> None:
    """At its row limit ``history`` says on stderr how many there are in all and how to see
    them; ``-n 0`` shows every one (oldest first), piped and as JSON."""
    scrobbles = HISTORY
    daemon = history_daemon
    since = str(scrobbles[30].timestamp)
    period = daemon.ctl("history", "--since", since)
    assert period.returncode == 0, period.stderr
    assert len(period.stdout.splitlines()) == 21
    assert period.stderr == (
        "20 of 60 listens shown (the oldest of this period); -n N shows more, -n 0 all of them\n"
    )
    everything = daemon.ctl("history", "--since", since, "-n", "0")
    assert len(everything.stdout.splitlines()) == 61
    assert everything.stderr == ""
    as_json = json.loads(daemon.ctl("--json", "history", "-n", "0").stdout)
    assert [x["timestamp"] for x in as_json] == sorted(s.timestamp for s in scrobbles)
    recent = daemon.ctl("history", "-n", "90")
    assert recent.stderr == ""  # all of them fit: nothing to say


def test_history_keeps_the_timestamp_on_one_line_at_80_columns(
    history_daemon: ThreadedWholeDaemon,
) -> None:
    """On an 80-column terminal every row starts with its whole local timestamp, under a bold
    header; long names wrap in their own cells instead."""
    daemon = history_daemon
    shown = run_on_tty("history", "-n", "20", socket_path=daemon.socket_path, columns=80)
    assert shown.returncode == 0, shown.plain
    notice = "20 of 90 listens shown (the newest); -n N shows more, -n 0 all of them"
    header, *lines = [line for line in shown.plain.splitlines() if line != notice]
    assert header.split() == ["played", "(local)", "artist", "title", "album", "source", "loved"]
    assert shown.output.startswith(b"\x1b[1mplayed (local)")  # the header, in bold
    assert all(len(line) <= 80 for line in lines)
    assert len(lines) > 20  # names did wrap
    assert sum(bool(TIMESTAMP.match(line)) for line in lines) == 20
    for line in lines:
        assert TIMESTAMP.match(line) or line.startswith(" " * 21), line


@pytest.mark.parametrize("columns", [80, 200])
def test_a_followed_import_redraws_one_line_in_place(
    columns: int, lastfm_sim: SimulatedLastfm, start_in_thread: StartWholeDaemon
) -> None:
    """On a terminal a followed import draws one line, redrawn in place (carriage return,
    erase line): the job, a bar of blocks, its details (speed and time left first, counters
    short), within the terminal's width less a column (the details that do not fit are left
    out whole); the last drawing is the finished job with a full bar, then the summary starts
    on a line of its own."""
    lastfm_sim.reset(size=600, seed=3)
    daemon = start_in_thread(**lastfm_sim.sections(requests_per_second=20.0, page_size=50))
    shown = run_on_tty("import", "--all", socket_path=daemon.socket_path, columns=columns)
    assert shown.returncode == 0, shown.text
    assert_inert(shown.text, progress=True)
    started, drawn, summary = shown.text.split("\n", 2)
    assert started == "import job 1 started (Ctrl-C detaches, the job goes on)"
    assert drawn.startswith(ERASE_LINE)
    frames = drawn.split(ERASE_LINE)[1:]
    assert len(frames) >= 2  # the job as started, the job done
    assert all(display_width(frame) <= columns - 1 for frame in frames), frames
    running = [frame for frame in frames if frame.startswith("import job 1 ")]
    assert running, frames
    assert all(re.search(r" \d+(\.\d+k)?/s, \S+ left, page ", frame) for frame in running)
    cells = "█{10,30}" if columns == 80 else "█{30}"  # the details first: the bar takes the rest
    assert re.fullmatch(
        rf"import job 1: done {cells} \d+(\.\dk)?/s, page 12/12, 600 new, 0 skip, 0 err",
        frames[-1],
    ), frames[-1]
    assert summary.startswith("Import job 1 finished\n")


def test_export_to_stdout_and_the_json_summary(
    history_daemon: ThreadedWholeDaemon, tmp_path: Path
) -> None:
    """``-o -`` writes to standard output; ``--json export -o FILE`` prints a JSON summary
    once the file is complete."""
    daemon = history_daemon
    to_stdout = daemon.ctl("export", "--format", "jsonl", "-o", "-")
    assert to_stdout.returncode == 0, to_stdout.stderr
    assert len(to_stdout.stdout.splitlines()) == 90
    target = tmp_path / "listens.json"
    summary = daemon.ctl("--json", "export", "--format", "json", "-o", str(target))
    assert summary.returncode == 0, summary.stderr
    assert json.loads(summary.stdout) == {"exported": 90, "format": "json", "path": str(target)}
    assert len(json.loads(target.read_text())) == 90
    human = daemon.ctl("export", "--format", "csv", "-o", str(tmp_path / "l.csv"))
    assert human.stdout == ""
    assert human.stderr == f"exported 90 listens to {tmp_path / 'l.csv'}\n"


class _Running:
    """``musiquectl ARGS`` in its own process, its stdout and stderr lines collected apart."""

    def __init__(self, daemon: DaemonProcess, *args: str) -> None:
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "musiquectl"), "--socket", str(daemon.socket_path), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.out), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.err), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream: object, into: list[str]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            into.append(line.rstrip("\n"))

    def wait_for(self, lines: list[str], text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in list(lines)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{text!r} not printed: {self.out!r} {self.err!r}")
            time.sleep(0.05)

    def interrupt(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        status = self.proc.wait(10)
        for reader in self._readers:
            reader.join(5)
        return status

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        for reader in self._readers:
            reader.join(5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def test_followers_outlive_a_daemon_restart(
    lastfm_sim: SimulatedLastfm, start_daemon: StartDaemon
) -> None:
    """Every follower says the daemon went away, waits for it, says it is back and carries
    on (like ``journalctl -f``): ``watch``, ``status --watch`` and ``--json status --watch``
    (one JSON document per line) follow the new daemon, and Ctrl-C ends each with status 0;
    the job followers (``import`` piped, ``jobs show`` on a terminal) read the job again (it
    resumed by itself) and follow it to its end: exit 0, the summary. On the terminal the
    notices take the bar's line (erased first, not written after the bar), and the bar is
    drawn again under them until the job is done."""
    lastfm_sim.reset(size=1500, seed=12)
    daemon = start_daemon(**lastfm_sim.sections(requests_per_second=6.0, page_size=50))
    first_pid = daemon.call("daemon.status")["pid"]
    watchers = [
        _Running(daemon, "watch", "--topic", "daemon"),
        _Running(daemon, "status", "--watch"),
        _Running(daemon, "--json", "status", "--watch"),
    ]
    watch, redraw, as_json = watchers
    importer: _Running | None = None
    shown: TtyProcess | None = None
    try:
        daemon.wait_until(lambda: daemon.subscribers() >= 3)
        importer = _Running(daemon, "import", "--all")
        daemon.wait_until(lambda: daemon.call("jobs.list", {"limit": 1}))
        wait_pages(daemon, 1, 2)
        shown = TtyProcess("jobs", "show", "1", socket_path=daemon.socket_path, columns=120)
        shown.wait_for("import job 1 █")
        assert daemon.stop() == 0
        for follower in [*watchers, importer]:
            follower.wait_for(follower.err, f"lost musiqued at {daemon.socket_path}")
        shown.wait_for("lost musiqued")
        # Back at a faster pace: the rest of the job need not take long.
        write_config(
            daemon.config_path,
            base_sections(
                daemon.workdir, **lastfm_sim.sections(requests_per_second=50.0, page_size=50)
            ),
        )
        daemon.start()
        for follower in [*watchers, importer]:
            follower.wait_for(follower.err, "musiqued is back; carrying on")
        shown.wait_for("musiqued is back; carrying on")
        assert importer.proc.wait(60) == 0, importer.err
        assert shown.proc.wait(60) == 0
        second_pid = daemon.call("daemon.status")["pid"]
        assert daemon.ctl("reload").returncode == 0
        watch.wait_for(watch.out, "daemon      reloaded changed=[]")
        redraw.wait_for(redraw.out, f"(pid {second_pid},")
        as_json.wait_for(as_json.out, f'"pid": {second_pid},')
        assert [follower.interrupt() for follower in watchers] == [0, 0, 0]
    finally:
        for follower in watchers:
            follower.close()
        if importer is not None:
            importer.close()
        if shown is not None:
            shown.close()
    pids = [json.loads(line)["pid"] for line in as_json.out]  # every line one document
    assert pids[0] == first_pid
    assert pids[-1] == second_pid
    assert f"(pid {first_pid}," in "\n".join(redraw.out)
    assert all(line.startswith("musiquectl: ") for line in watch.err + redraw.err + as_json.err)

    assert "Import job 1 finished" in importer.out
    summary = importer.out[importer.out.index("Import job 1 finished") + 1 :]
    assert "  imported:         1,500" in summary

    text = shown.output.decode()
    assert_inert(text, progress=True)
    lost = text.index(f"{ERASE_LINE}musiquectl: lost musiqued at {daemon.socket_path}")
    back = text.index("\nmusiquectl: musiqued is back; carrying on\n", lost)  # right under
    assert f"{ERASE_LINE}import job 1 █" in text[:lost]
    assert f"{ERASE_LINE}import job 1: done" in text[back:]
    assert "\nImport job 1 finished\n" in text[back:]
