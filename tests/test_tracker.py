"""The tracker where it crosses processes: restarts and the daemon's clock against the
simulator's (a musiqued process); a reload of the configuration file, ``musiquectl``'s
tracker commands and ``watch`` (against the whole daemon in the test's process).

The tracker's behaviour (what a poll stores and when, intervals, faults and recovery, a long
gap handed to a job, the late sweep, a refused key, a wall-clock jump) is tested in-process,
on a clock the test drives, in ``test_tracker_service.py``."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.fixtures.daemon import StartDaemon
from tests.fixtures.lastfm import SimulatedLastfm
from tests.fixtures.whole_daemon import StartWholeDaemon
from tests.support import DaemonProcess, base_sections, write_config
from tests.tracker_support import (
    CtlProcess,
    Watch,
    caught_up,
    identities,
    lastfm_sections,
)

FAST = {"interval_seconds": 1, "late_sweep_interval_seconds": 3600}


def _status(daemon: DaemonProcess) -> dict[str, Any]:
    result: dict[str, Any] = daemon.call("tracker.status")
    return result


@pytest.mark.slow
def test_the_tracker_across_restarts(
    start_daemon: StartDaemon, lastfm_sim: SimulatedLastfm
) -> None:
    """autostart starts a fresh daemon's tracker; after that, what the user last chose
    (stopped, or running at an interval) survives restarts. Scrobbles made while the daemon
    is down are recorded after a restart, with no command: the tracker runs again at its
    interval, and a gap of many pages is fetched by an import job. The history ends up
    exact. The daemon (its own process) and the simulated Last.fm (in the suite's process)
    agree on what "now" is, even under faketime (the gap's window ends at the daemon's now,
    its scrobbles were added at the simulator's): a reload is announced at the suite's
    time."""
    lastfm_sim.reset(size=10, seed=6)
    daemon = start_daemon(
        **lastfm_sections(lastfm_sim, page_size=10),
        tracker={**FAST, "autostart": True, "interval_seconds": 30},
    )
    status = _status(daemon)
    assert (status["running"], status["interval_seconds"]) == (True, 30)
    assert daemon.call("daemon.status")["tracker"]["running"] is True

    assert daemon.call("tracker.stop") == {"status": "stopped"}
    assert daemon.stop() == 0
    daemon.start()
    assert _status(daemon)["running"] is False

    assert daemon.call("tracker.start", {"interval_seconds": 7}) == {"status": "started"}
    assert daemon.call("tracker.start", {"interval_seconds": 2}) == {"status": "already_running"}
    assert _status(daemon)["interval_seconds"] == 2
    daemon.wait_until(caught_up(daemon, lastfm_sim), timeout=10)
    assert daemon.stop() == 0

    lastfm_sim.add_new_scrobbles(60)  # 6 pages of 10, after the newest stored listen
    daemon.start()
    status = _status(daemon)
    assert (status["running"], status["interval_seconds"]) == (True, 2)
    assert "tracking every 2 s" in daemon.call("daemon.status")["status"]
    with daemon.events("daemon") as events:
        before = time.time()
        daemon.call("daemon.reload")
        events.wait_for("daemon", event="reloaded")
        after = time.time()
    assert before - 1 <= events.seen[-1]["at"] <= after + 1
    daemon.wait_until(caught_up(daemon, lastfm_sim), timeout=30)
    # The rows can be stored before the job ends: it checks its window once more, then is done.
    (job,) = daemon.wait_until(
        lambda: [j for j in daemon.call("import.list", {"limit": 5}) if j["state"] == "done"],
        timeout=15,
    )
    assert len(daemon.call("import.list", {"limit": 5})) == 1
    assert job["kind"] == "import"
    assert job["tracks_imported"] > 0
    records = [
        r for r in daemon.log_records() if r.get("event") == "tracker gap handed to an import job"
    ]
    assert [r["job_id"] for r in records] == [job["job_id"]]
    assert len(identities(daemon.workdir / "musique.db")) == 70


def test_an_invalid_key_stops_the_tracker_with_the_message(
    start_in_thread: StartWholeDaemon, lastfm_sim: SimulatedLastfm
) -> None:
    """Last.fm refusing the API key stops the tracker and status says why; once the key is
    fixed and the configuration reloaded, the tracker runs again by itself."""
    lastfm_sim.reset(size=5, seed=11)
    daemon = start_in_thread(**lastfm_sections(lastfm_sim, api_key="0" * 32), tracker=FAST)
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


def test_tracker_commands_without_lastfm_say_not_configured(
    start_in_thread: StartWholeDaemon,
) -> None:
    """Without Last.fm credentials, tracker.start is refused with -32001; status still works."""
    daemon = start_in_thread()
    assert daemon.call_error("tracker.start").code == -32001
    assert _status(daemon)["running"] is False
    result = daemon.ctl("tracker", "start")
    assert result.returncode == 1
    assert result.stderr.startswith("musiquectl: Last.fm is not configured: ")


def test_ctl_tracker_commands_and_json_watch(
    start_in_thread: StartWholeDaemon, lastfm_sim: SimulatedLastfm
) -> None:
    """`tracker start/status/stop` print readable lines (a second start tells the new
    interval), `status --watch` shows the tracker, `watch` shows what is playing and when
    nothing is, `--json watch` prints one event a line; both end with status 0 on Ctrl-C."""
    lastfm_sim.reset(size=5, seed=14)
    daemon = start_in_thread(**lastfm_sim.sections(), tracker=FAST)
    started = daemon.ctl("tracker", "start", "--interval", "2")
    assert started.returncode == 0, started.stderr
    assert started.stdout.strip() == "tracker started, polling every 2 s"
    daemon.wait_until(caught_up(daemon, lastfm_sim), timeout=10)
    again = daemon.ctl("tracker", "start", "--interval", "1")
    assert again.returncode == 0, again.stderr
    assert "already running, now polling every 1 s" in again.stdout
    shown = daemon.ctl("tracker", "status")
    assert "running, every 1 s" in shown.stdout
    assert json.loads(daemon.ctl("--json", "tracker", "status").stdout)["running"] is True
    overview = daemon.ctl("status")
    assert "tracker:" in overview.stdout
    assert "running" in overview.stdout

    watch = Watch(daemon)
    try:
        lastfm_sim.set_now_playing("Nina Simone", "Sinnerman", "Pastel Blues")
        line = watch.wait_for("Sinnerman")
        assert "now_playing" in line
        assert "Nina Simone" in line
        lastfm_sim.clear_now_playing()
        watch.wait_for("nothing playing")
        assert watch.interrupt() == 0
    finally:
        watch.close()
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
    assert any("running, every 1 s" in line for line in redraw.lines)

    stopped = daemon.ctl("tracker", "stop")
    assert stopped.stdout.strip() == "tracker stopped"
    assert _status(daemon)["running"] is False
