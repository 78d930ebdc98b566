"""The tracker against the Last.fm simulator, with the daemon as a real process.

The tracker's decisions alone (what a poll stores, a long gap handed to a job, the late
sweep, a refused key) are tested in-process, faster, in ``test_tracker_service.py``."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from tests.fixtures.daemon import StartDaemon
from tests.fixtures.lastfm import SimulatedLastfm
from tests.import_helpers import wait_job
from tests.support import DaemonProcess, base_sections, write_config
from tests.tracker_support import (
    CtlProcess,
    Watch,
    caught_up,
    identities,
    lastfm_sections,
    stored,
    wait_polls,
)

FAST = {"interval_seconds": 1, "late_sweep_interval_seconds": 3600}


def _status(daemon: DaemonProcess) -> dict[str, Any]:
    result: dict[str, Any] = daemon.call("tracker.status")
    return result


def at_page(pages: int) -> Callable[[dict[str, Any]], bool]:
    """Matches a job event once the job has committed ``pages`` pages."""
    return lambda job: bool(job["pages_done"] >= pages)


def test_new_scrobbles_are_recorded_within_the_interval(
    start_daemon: StartDaemon, lastfm_sim: SimulatedLastfm
) -> None:
    """Scrobbles added to Last.fm are in the database, from the tracker, within interval + 2 s."""
    lastfm_sim.reset(size=40, seed=3)
    daemon = start_daemon(**lastfm_sim.sections(), tracker={"interval_seconds": 2})
    assert daemon.call("tracker.start") == {"status": "started"}
    daemon.wait_until(caught_up(daemon, lastfm_sim), timeout=10)

    added = lastfm_sim.add_scrobbles(n=1)
    began = time.monotonic()
    daemon.wait_until(caught_up(daemon, lastfm_sim), timeout=4.5, interval=0.05)
    assert time.monotonic() - began <= 2 + 2
    newest = daemon.call("history.recent", {"limit": 1})[0]
    assert newest["timestamp"] == added[0].timestamp
    assert newest["source"] == "tracker"
    status = _status(daemon)
    assert status["running"] is True
    assert status["last_track"] == {
        "artist": newest["artist"],
        "title": newest["title"],
        "album": newest["album"],
        "timestamp": newest["timestamp"],
    }
    assert status["interval_seconds"] == 2
    assert status["scrobbles_recorded"] >= 41
    assert status["last_poll_at"] <= status["next_poll_at"]
    assert status["last_error"] is None
    assert status["consecutive_failures"] == 0


def test_several_scrobbles_between_two_polls_are_all_recorded(
    start_daemon: StartDaemon, lastfm_sim: SimulatedLastfm
) -> None:
    """Short tracks played between two polls (even in the same second) are each recorded once."""
    lastfm_sim.reset(size=10, seed=4)
    daemon = start_daemon(**lastfm_sim.sections(), tracker={**FAST, "interval_seconds": 3})
    daemon.call("tracker.start")
    daemon.wait_until(caught_up(daemon, lastfm_sim), timeout=10)
    now = int(time.time())
    lastfm_sim.add_scrobbles(n=4, at=now - 30)
    lastfm_sim.add_scrobbles(n=3, at=now)
    daemon.wait_until(caught_up(daemon, lastfm_sim), timeout=3 + 2)
    rows = stored(daemon.workdir / "musique.db")
    assert len(rows) == len(lastfm_sim.expected())
    assert {source for ts, _, _, source in rows if ts >= now - 30} == {"tracker"}


def test_now_playing_is_shown_but_not_a_listen(
    start_daemon: StartDaemon, lastfm_sim: SimulatedLastfm
) -> None:
    """Now playing shows in status and in `watch`; it becomes a listen only once scrobbled."""
    lastfm_sim.reset(size=5, seed=5)
    daemon = start_daemon(**lastfm_sim.sections(), tracker=FAST)
    daemon.call("tracker.start")
    daemon.wait_until(caught_up(daemon, lastfm_sim), timeout=10)
    watch = Watch(daemon)
    try:
        lastfm_sim.set_now_playing("Nina Simone", "Sinnerman", "Pastel Blues")
        playing = daemon.wait_until(lambda: _status(daemon)["now_playing"], timeout=5)
        assert (playing["artist"], playing["title"], playing["album"]) == (
            "Nina Simone",
            "Sinnerman",
            "Pastel Blues",
        )
        assert isinstance(playing["since"], int | float)
        line = watch.wait_for("Sinnerman")
        assert "now_playing" in line
        assert "Nina Simone" in line
        # A negative: a whole poll after the one that saw it still records no listen.
        wait_polls(daemon, 1)
        listens = daemon.call("history.recent", {"limit": 100})
        assert all(listen["title"] != "Sinnerman" for listen in listens)

        lastfm_sim.clear_now_playing()
        daemon.wait_until(lambda: _status(daemon)["now_playing"] is None, timeout=5)
        watch.wait_for("nothing playing")
        lastfm_sim.add_scrobbles(n=1)
        watch.wait_for("scrobble")
        assert watch.interrupt() == 0
    finally:
        watch.close()


def test_restart_catches_up_and_resumes_by_itself(
    start_daemon: StartDaemon, lastfm_sim: SimulatedLastfm
) -> None:
    """Scrobbles made while the daemon is down are recorded after a restart, with no command."""
    lastfm_sim.reset(size=20, seed=6)
    daemon = start_daemon(**lastfm_sim.sections(), tracker=FAST)
    daemon.call("tracker.start", {"interval_seconds": 2})
    daemon.wait_until(caught_up(daemon, lastfm_sim), timeout=10)
    assert daemon.stop() == 0

    lastfm_sim.add_new_scrobbles(11)
    daemon.start()
    status = _status(daemon)
    assert status["running"] is True
    assert status["interval_seconds"] == 2
    daemon.wait_until(caught_up(daemon, lastfm_sim), timeout=5)


def test_a_long_gap_goes_through_an_import_job(
    start_daemon: StartDaemon, lastfm_sim: SimulatedLastfm
) -> None:
    """A gap of many pages is fetched by an import job; the history ends up exact."""
    lastfm_sim.reset(size=10, seed=7)
    sections = lastfm_sections(lastfm_sim, page_size=10)
    daemon = start_daemon(**sections, tracker=FAST)
    daemon.call("tracker.start")
    daemon.wait_until(caught_up(daemon, lastfm_sim), timeout=10)
    assert daemon.stop() == 0

    lastfm_sim.add_new_scrobbles(60)  # 6 pages of 10, after the newest stored listen
    daemon.start()
    daemon.wait_until(caught_up(daemon, lastfm_sim), timeout=30)
    # The rows can be stored before the job ends: it checks its window once more, then is done.
    jobs = daemon.wait_until(
        lambda: [j for j in daemon.call("import.list", {"limit": 5}) if j["state"] == "done"],
        timeout=15,
    )
    assert len(daemon.call("import.list", {"limit": 5})) == 1
    job = jobs[0]
    assert job["kind"] == "import"
    assert job["tracks_imported"] > 0
    records = [
        r for r in daemon.log_records() if r.get("event") == "tracker gap handed to an import job"
    ]
    assert records
    assert records[0]["job_id"] == job["job_id"]
    assert len(identities(daemon.workdir / "musique.db")) == 70


def test_tracker_and_full_import_at_once_give_the_exact_history(
    start_daemon: StartDaemon, lastfm_sim: SimulatedLastfm
) -> None:
    """A full import and the tracker write at the same time: no duplicate, no lock error."""
    lastfm_sim.reset(size=3000, seed=9)
    # 60 pages at 25 requests/s: the import lasts more than 2 s, one request every 40 ms.
    sections = lastfm_sections(lastfm_sim, page_size=50, requests_per_second=25)
    daemon = start_daemon(**sections, tracker=FAST)
    added = []
    with daemon.events("job") as progress:
        job_id = daemon.call("import.start", {"all": True})["job_id"]
        window_end = daemon.call("import.status", {"job_id": job_id})["window"]["to"]
        daemon.call("tracker.start")
        # Scrobbles keep coming while the import runs: two more every 12 pages it commits.
        # Page 48 is at least 1.9 s after the job began (the governor spaces requests
        # evenly), past its window's end: the last ones at least are outside the window.
        for pages in (12, 24, 36, 48):
            progress.wait_for("job", at_page(pages), job_id=job_id)
            added += lastfm_sim.add_scrobbles(n=2)
    assert wait_job(daemon, job_id)["state"] == "done"
    daemon.wait_until(caught_up(daemon, lastfm_sim), timeout=10)
    rows = stored(daemon.workdir / "musique.db")
    assert len(rows) == len(lastfm_sim.expected())
    # Scrobbled after the job's window was frozen: only the tracker can have recorded them.
    late = {s.identity for s in added if s.timestamp >= window_end}
    assert late
    assert {source for ts, a, t, source in rows if (ts, a, t) in late} == {"tracker"}
    assert "database is locked" not in daemon.logs()
    assert not [r for r in daemon.log_records() if r.get("level") in ("error", "critical")]


def test_faults_while_polling_show_then_recover_with_nothing_lost(
    start_daemon: StartDaemon, lastfm_sim: SimulatedLastfm
) -> None:
    """Upstream faults are shown in status, then the tracker recovers and nothing is lost."""
    lastfm_sim.reset(size=20, seed=10)
    daemon = start_daemon(**lastfm_sim.sections(), tracker=FAST)
    daemon.call("tracker.start")
    daemon.wait_until(caught_up(daemon, lastfm_sim), timeout=10)

    lastfm_sim.set_faults(rate=1.0, kinds=["http500", "http503", "error8", "error11", "malformed"])
    lastfm_sim.add_scrobbles(n=1)
    failing = daemon.wait_until(
        lambda: (s := _status(daemon))["consecutive_failures"] and s, timeout=30
    )
    assert failing["running"] is True
    assert failing["last_error"]
    assert "tracker failing" in daemon.call("daemon.status")["status"]

    lastfm_sim.set_faults(rate=0.1, kinds=[])
    lastfm_sim.add_scrobbles(n=2)
    wait_polls(daemon, 1, timeout=40)  # one poll at least with one request in ten failing
    lastfm_sim.add_scrobbles(n=1)
    lastfm_sim.set_faults(rate=0.0)
    daemon.wait_until(caught_up(daemon, lastfm_sim), timeout=40)
    daemon.wait_until(lambda: _status(daemon)["consecutive_failures"] == 0, timeout=40)
    assert _status(daemon)["last_error"] is None
    events = [r.get("event") for r in daemon.log_records()]
    assert events.count("tracker poll failing; backing off") >= 1
    assert events.count("tracker recovered") == events.count("tracker poll failing; backing off")


def test_an_invalid_key_stops_the_tracker_with_the_message(
    start_daemon: StartDaemon, lastfm_sim: SimulatedLastfm
) -> None:
    """Last.fm refusing the API key stops the tracker and status says why; once the key is
    fixed and the configuration reloaded, the tracker runs again by itself."""
    lastfm_sim.reset(size=5, seed=11)
    daemon = start_daemon(**lastfm_sections(lastfm_sim, api_key="0" * 32), tracker=FAST)
    daemon.call("tracker.start")
    status = daemon.wait_until(lambda: (s := _status(daemon))["last_error"] and s, timeout=20)
    assert status["running"] is False
    assert "key" in status["last_error"].lower()
    assert status["next_poll_at"] is None
    assert "tracker stopped" in daemon.call("daemon.status")["status"]
    result = daemon.ctl("tracker", "status")
    assert result.returncode == 0
    assert "stopped" in result.stdout
    assert status["last_error"] in result.stdout

    # The key fixed in the file and reloaded: the tracker, still wanted, runs again.
    write_config(daemon.config_path, base_sections(daemon.workdir, **lastfm_sim.sections()))
    daemon.call("daemon.reload")
    daemon.wait_until(caught_up(daemon, lastfm_sim), timeout=10)
    status = _status(daemon)
    assert status["running"] is True
    assert status["last_error"] is None


def test_running_state_and_interval_persist_and_autostart_applies_when_nothing_saved(
    start_daemon: StartDaemon, lastfm_sim: SimulatedLastfm
) -> None:
    """autostart starts a fresh daemon; after that, what the user last chose survives restarts."""
    lastfm_sim.reset(size=5, seed=12)
    daemon = start_daemon(
        **lastfm_sim.sections(), tracker={"autostart": True, "interval_seconds": 30}
    )
    status = _status(daemon)
    assert (status["running"], status["interval_seconds"]) == (True, 30)
    assert daemon.call("daemon.status")["tracker"]["running"] is True

    assert daemon.call("tracker.stop") == {"status": "stopped"}
    daemon.stop()
    daemon.start()
    assert _status(daemon)["running"] is False

    assert daemon.call("tracker.start", {"interval_seconds": 7}) == {"status": "started"}
    assert daemon.call("tracker.start", {"interval_seconds": 9}) == {"status": "already_running"}
    assert _status(daemon)["interval_seconds"] == 9
    daemon.stop()
    daemon.start()
    status = _status(daemon)
    assert (status["running"], status["interval_seconds"]) == (True, 9)
    assert "tracking every 9 s" in daemon.call("daemon.status")["status"]


def test_changing_the_interval_interrupts_the_current_wait(
    start_daemon: StartDaemon, lastfm_sim: SimulatedLastfm
) -> None:
    """A long wait is cut short when the interval is lowered while the tracker runs."""
    lastfm_sim.reset(size=5, seed=13)
    daemon = start_daemon(**lastfm_sim.sections(), tracker={"interval_seconds": 600})
    daemon.call("tracker.start")
    daemon.wait_until(caught_up(daemon, lastfm_sim), timeout=10)
    daemon.wait_until(lambda: (_status(daemon)["next_poll_at"] or 0) > time.time() + 500)
    lastfm_sim.add_scrobbles(n=1)
    result = daemon.ctl("tracker", "start", "--interval", "1")
    assert result.returncode == 0, result.stderr
    assert "already running, now polling every 1 s" in result.stdout
    daemon.wait_until(caught_up(daemon, lastfm_sim), timeout=4)


def test_tracker_commands_without_lastfm_say_not_configured(start_daemon: StartDaemon) -> None:
    """Without Last.fm credentials, tracker.start is refused with -32001; status still works."""
    daemon = start_daemon()
    assert daemon.call_error("tracker.start").code == -32001
    assert _status(daemon)["running"] is False
    result = daemon.ctl("tracker", "start")
    assert result.returncode == 1
    assert result.stderr.startswith("musiquectl: Last.fm is not configured: ")


def test_ctl_tracker_commands_and_json_watch(
    start_daemon: StartDaemon, lastfm_sim: SimulatedLastfm
) -> None:
    """`tracker start/status/stop` print readable lines, `status --watch` shows the tracker,
    `--json watch` prints one event a line and ends with status 0 on Ctrl-C."""
    lastfm_sim.reset(size=5, seed=14)
    daemon = start_daemon(**lastfm_sim.sections(), tracker=FAST)
    started = daemon.ctl("tracker", "start", "--interval", "2")
    assert started.returncode == 0, started.stderr
    assert started.stdout.strip() == "tracker started, polling every 2 s"
    daemon.wait_until(caught_up(daemon, lastfm_sim), timeout=10)
    shown = daemon.ctl("tracker", "status")
    assert "running, every 2 s" in shown.stdout
    assert json.loads(daemon.ctl("--json", "tracker", "status").stdout)["running"] is True
    overview = daemon.ctl("status")
    assert "tracker:" in overview.stdout
    assert "running" in overview.stdout

    watch = Watch(daemon, "--json")
    try:
        added = lastfm_sim.add_scrobbles(n=1)
        line = watch.wait_for('"scrobble"')
        event = json.loads(line)
        assert event["topic"] == "scrobble"
        assert event["data"]["timestamp"] == added[0].timestamp
        assert event["data"]["source"] == "tracker"
        assert watch.interrupt() == 0
    finally:
        watch.close()
    redraw = CtlProcess(daemon, "status", "--watch")
    try:
        redraw.wait_for("next poll:")
        redraw.interrupt()
    finally:
        redraw.close()
    assert any("running, every 2 s" in line for line in redraw.lines)

    stopped = daemon.ctl("tracker", "stop")
    assert stopped.stdout.strip() == "tracker stopped"
    assert _status(daemon)["running"] is False


def test_the_daemon_and_the_simulator_share_one_clock(start_daemon: StartDaemon) -> None:
    """The daemon (its own process) and the simulated Last.fm (in the suite's process) agree
    on what "now" is, even under faketime: an import window ends at the daemon's now,
    scrobbles are added at the simulator's."""
    daemon = start_daemon()
    with daemon.events("daemon") as events:
        before = time.time()
        daemon.call("daemon.reload")
        events.wait_for("daemon", event="reloaded")
        after = time.time()
    assert before - 1 <= events.seen[-1]["at"] <= after + 1
