"""Untrusted names through every command, as bytes on a terminal and piped.

One daemon for the module: the simulated Last.fm holds a scrobble for each hostile name
(``tests/untrusted.py``: escape sequences, C1, bidi, tab and newline, markup, emoji
codes) as artist, title and album; they are imported with ``musiquectl import``, their albums
described by the AI simulator from those names, a hostile track is playing now, and three
listens with hostile names are held here that Last.fm lacks (``verify`` reports them).
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from musiqued.models import Scrobble
from musiqued.sim.ai import AiSim
from musiqued.sim.ai import make_app as make_ai_app
from musiqued.sim.history import History
from musiqued.sim.lastfm import LastfmSim
from musiqued.sim.server import ThreadedServer
from tests.fixtures.enrichment import SimulatedAi
from tests.fixtures.lastfm import SimulatedLastfm, running_sim
from tests.fixtures.whole_daemon import StartWholeDaemon, ThreadedWholeDaemon, daemon_in_thread
from tests.history_support import seed
from tests.support import VENV_BIN, short_tmp
from tests.tracker_support import Watch
from tests.tty import TtyProcess, run_on_tty
from tests.untrusted import HOSTILE, assert_inert, failing_lastfm

DAY = 86400
WIDE = 240  # wide enough that no cell wraps: each name stays on one line
PLAYING = (HOSTILE[1], HOSTILE[7], HOSTILE[11])  # title-setting artist, bidi title, markup album
ONLY_HERE = HOSTILE[:3]


@dataclass
class Scene:
    daemon: ThreadedWholeDaemon
    lastfm: SimulatedLastfm
    base: int
    """When the first hostile scrobble was; one a minute after that."""


@pytest.fixture(scope="module")
def scene() -> Iterator[Scene]:
    now = int(time.time())
    base = now - 7200
    history = History.generate(3, 30, end=now - 3 * DAY)
    ai = AiSim(api_key="ai-key", models=("sim-llm",))
    with short_tmp() as workdir, running_sim(LastfmSim(history)) as lastfm:
        ai_server = ThreadedServer(lambda: make_ai_app(ai)).start()
        lastfm.add_rows(
            [
                {"timestamp": base + 60 * i, "artist": h.raw, "title": h.raw, "album": h.raw}
                for i, h in enumerate(HOSTILE)
            ]
        )
        seed(
            workdir / "musique.db",
            [
                Scrobble(base - 600 + i, h.raw, f"only here {h.raw}", h.raw)
                for i, h in enumerate(ONLY_HERE)
            ],
        )
        try:
            with daemon_in_thread(
                workdir,
                **lastfm.sections(),
                **SimulatedAi(ai, ai_server).sections(),
                enrichment={"retry_seconds": 0.1, "max_attempts": 3},
            ) as daemon:
                imported = daemon.ctl("import", "--all")
                assert imported.returncode == 0, imported.stderr
                daemon.wait_until(_settled(daemon), timeout=60)
                lastfm.set_now_playing(*(h.raw for h in PLAYING))
                daemon.call("tracker.start", {"interval_seconds": 1})
                daemon.wait_until(lambda: daemon.call("tracker.status")["now_playing"])
                yield Scene(daemon, lastfm, base)
        finally:
            ai_server.stop()


def _settled(daemon: ThreadedWholeDaemon) -> object:
    def settled() -> bool:
        status = daemon.call("enrich.status")
        return bool(status["pending"] == 0 and status["running"] == 0)

    return settled


def _both(scene: Scene, *args: str) -> list[str]:
    """The command piped and on a terminal: exit 0 both ways, nothing active in either."""
    piped = scene.daemon.ctl(*args)
    assert piped.returncode == 0, piped.stderr
    assert "Traceback" not in piped.stderr
    assert_inert(piped.stdout)
    assert_inert(piped.stderr)
    tty = run_on_tty(*args, socket_path=scene.daemon.socket_path, columns=WIDE)
    assert tty.returncode == 0, tty.plain
    assert_inert(tty.plain)
    return [piped.stdout, tty.plain]


def test_history_shows_every_name_as_its_text(scene: Scene) -> None:
    """``history`` shows each hostile artist, title and album as visible text, in its own
    cell, one row per listen, piped and on a terminal."""
    for out in _both(scene, "history", "-n", "20"):
        for h in HOSTILE:
            assert f"{h.shown}" in out, h.name
    piped = scene.daemon.ctl("history", "-n", "20").stdout.splitlines()
    rows = [line.split("\t") for line in piped[1:]]
    assert all(len(row) == 6 for row in rows)  # a tab or newline never breaks a row
    shown = {row[1] for row in rows}
    assert {h.shown for h in HOSTILE} <= shown


def test_json_output_is_exact_and_inert(scene: Scene) -> None:
    """``--json history`` gives back every name exactly, yet writes none of their control
    characters raw (JSON escapes them)."""
    done = scene.daemon.ctl("--json", "history", "-n", "20")
    assert done.returncode == 0, done.stderr
    assert_inert(done.stdout)
    artists = {x["artist"] for x in json.loads(done.stdout)}
    assert {h.raw for h in HOSTILE} <= artists
    status = scene.daemon.ctl("--json", "tracker", "status")
    assert_inert(status.stdout)
    playing = json.loads(status.stdout)["now_playing"]
    assert (playing["artist"], playing["title"], playing["album"]) == tuple(h.raw for h in PLAYING)


def _export(scene: Scene, fmt: str) -> str:
    """The export's bytes as written (``run_ctl``'s text mode would turn CR into LF)."""
    command = [str(VENV_BIN / "musiquectl"), "--socket", str(scene.daemon.socket_path)]
    done = subprocess.run(
        [*command, "export", "--format", fmt, "--since", str(scene.base)],
        capture_output=True,
        timeout=60,
        check=True,
    )
    return done.stdout.decode("utf-8")


def test_export_keeps_the_data_unchanged(scene: Scene) -> None:
    """``export`` is data, not a display: CSV and JSON lines hold the names byte for byte."""
    lines = _export(scene, "jsonl").split("\n")[:-1]
    assert [json.loads(x)["title"] for x in lines] == [h.raw for h in HOSTILE]
    rows = list(csv.DictReader(io.StringIO(_export(scene, "csv"), newline="")))
    assert [r["album"] for r in rows] == [h.raw for h in HOSTILE]


def test_albums_and_their_descriptions(scene: Scene) -> None:
    """``albums`` shows hostile album and artist names and the start of the AI descriptions
    written from them as text; ``[dunkelbunt]`` is not an empty cell, ``[/]`` no
    MarkupError, ``[bold red]`` no style."""
    albums = json.loads(scene.daemon.ctl("--json", "albums", "-n", "100").stdout)
    described = [" ".join(a["description"].split()) for a in albums if a["description"]]
    assert len(described) == len(albums)
    for out in _both(scene, "albums", "-n", "100"):
        for h in HOSTILE:
            assert f"{h.shown}" in out, h.name
        assert "[dunkelbunt] is an album by [dunkelbunt]." in out
        assert "[/] is an album by [/]." in out
        assert "[bold red]x[/bold red] is an album by" in out
        for description in described:  # as stored (the daemon drops their controls)
            assert description[:40] in out


def test_stats_blocks(scene: Scene) -> None:
    """``stats`` lists hostile top artists and albums as text under their labels (two
    periods, the top lists hold ten)."""
    middle = str(scene.base + 60 * 8)
    for args, names in (
        (("--since", str(scene.base), "--until", middle), HOSTILE[:8]),
        (("--since", middle), HOSTILE[8:]),
    ):
        for out in _both(scene, "stats", *args):
            for h in names:
                assert f"{h.shown}" in out, h.name
            for label in ("Top artists", "Top albums", "Listens per day"):
                assert label in out


def test_status_and_tracker_status(scene: Scene) -> None:
    """``status`` and ``tracker status`` show the hostile now-playing track and the newest
    listen as text."""
    playing = f"{PLAYING[0].shown} — {PLAYING[1].shown} [{PLAYING[2].shown}]"
    for command in (("status",), ("tracker", "status")):
        for out in _both(scene, *command):
            assert f"now playing: {playing}" in out
            assert "last track:" in out


def test_verify_and_jobs_show(scene: Scene) -> None:
    """``verify`` and ``jobs show`` of its job list the hostile listens held only here as
    text (a terminal shows the live bar first)."""
    since = str(scene.base - 3600)
    piped = scene.daemon.ctl("verify", "--since", since, "--no-repair")
    assert piped.returncode == 0, piped.stderr
    assert_inert(piped.stdout)
    for h in ONLY_HERE:
        assert f"only here {h.shown}" in piped.stdout
    tty = run_on_tty(
        "verify",
        "--since",
        since,
        "--no-repair",
        socket_path=scene.daemon.socket_path,
        columns=WIDE,
    )
    assert tty.returncode == 0, tty.plain
    assert_inert(tty.text, progress=True)
    for h in ONLY_HERE:
        assert f"only here {h.shown}" in tty.plain
    job_id = scene.daemon.call("jobs.list", {"limit": 1})[0]["job_id"]
    for out in _both(scene, "jobs", "show", str(job_id)):
        for h in ONLY_HERE:
            assert f"only here {h.shown}" in out


def test_watch_shows_new_scrobbles_as_text(scene: Scene) -> None:
    """``watch`` on a terminal and piped prints the tracker's new hostile scrobbles as text;
    ``--json watch`` keeps them exact."""
    daemon = scene.daemon
    subscribers = daemon.call("daemon.status")["subscribers"]
    on_tty = TtyProcess("watch", socket_path=daemon.socket_path)
    piped = Watch(daemon)
    as_json = Watch(daemon, "--json")
    try:
        daemon.wait_until(lambda: daemon.call("daemon.status")["subscribers"] >= subscribers + 3)
        now = int(time.time())
        fresh = HOSTILE[:9]
        scene.lastfm.add_rows(
            [
                {"timestamp": now - 30 + i, "artist": h.raw, "title": f"new {h.raw}", "album": ""}
                for i, h in enumerate(fresh)
            ]
        )
        for h in fresh:
            on_tty.wait_for(f"{h.shown} — new {h.shown}")
            piped.wait_for(f"{h.shown} — new {h.shown}")
            as_json.wait_for(json.dumps(f"new {h.raw}", ensure_ascii=True)[1:-1])
        assert on_tty.interrupt() == 0
        assert piped.interrupt() == 0
        assert as_json.interrupt() == 0
        assert_inert(on_tty.output.decode())
        assert_inert("\n".join(piped.lines))
        assert_inert("\n".join(as_json.lines))
        titles = {json.loads(line)["data"].get("title") for line in as_json.lines}
        assert {f"new {h.raw}" for h in fresh} <= titles
    finally:
        on_tty.close()
        piped.close()
        as_json.close()


def test_an_upstream_error_is_shown_as_text(start_in_thread: StartWholeDaemon) -> None:
    """Last.fm's own error message is untrusted too: a failed import says it as text, exits
    1 with it as the last line, and ``jobs``, ``jobs show`` and ``tracker status`` show it
    the same way."""
    hostile = "".join(h.raw for h in HOSTILE)
    shown = "".join(h.shown for h in HOSTILE)
    with failing_lastfm(hostile) as api_url:
        daemon = start_in_thread(lastfm={"api_key": "k", "username": "u", "api_url": api_url})
        failed = daemon.ctl("import", "10")
        assert failed.returncode == 1
        assert_inert(failed.stdout)
        assert_inert(failed.stderr)
        assert (
            failed.stderr.splitlines()[-1]
            == f"musiquectl: import job 1 failed: Last.fm error 99: {shown}"
        )
        for command, status in ((("jobs",), 0), (("jobs", "show", "1"), 1)):
            out = run_on_tty(*command, socket_path=daemon.socket_path, columns=500)
            assert out.returncode == status, out.plain
            assert_inert(out.plain)
            assert shown in out.plain
        daemon.ctl("tracker", "start")
        daemon.wait_until(lambda: daemon.call("tracker.status")["last_error"])
        tracker = run_on_tty("tracker", "status", socket_path=daemon.socket_path, columns=WIDE)
        assert_inert(tracker.plain)
        assert f"Last.fm error 99: {shown}" in tracker.plain
