"""The ListenBrainz mirror with the whole daemon's services, against the simulated
ListenBrainz (and Last.fm for live listens): what arrives, once, within the server's limits,
through restarts, refusals and a bad token; ``musiquectl`` runs as a process against their
socket. The services are served in the test's process, but for a kill and a reload of the
config file (the daemon as a real process). Its decisions alone are tested in-process, with
a clock the test moves, in ``test_mirror_service.py``."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

from musiqued.models import Scrobble
from tests import interchange_files as files
from tests.fixtures.daemon import StartDaemon
from tests.fixtures.lastfm import SimulatedLastfm
from tests.fixtures.listenbrainz import SimulatedListenBrainz
from tests.fixtures.threaded import ServeInThread, ThreadedDaemon
from tests.history_support import generated, seed
from tests.support import DaemonProcess, base_sections, write_config
from tests.tracker_support import Watch, identities

FAST = {"interval_seconds": 1, "late_sweep_interval_seconds": 3600}


def received(sim: SimulatedListenBrainz) -> list[tuple[int, str, str]]:
    """Every listen the server received, duplicates included, as stored identities are."""
    return [
        (
            int(listen["listened_at"]),
            str(listen["track_metadata"]["artist_name"]).casefold(),
            str(listen["track_metadata"]["track_name"]).casefold(),
        )
        for listen in sim.listens()
    ]


def mirror_status(daemon: DaemonProcess | ThreadedDaemon) -> dict[str, Any]:
    status: dict[str, Any] = daemon.call("mirror.status")
    return status


def mirrored(daemon: DaemonProcess | ThreadedDaemon) -> dict[str, Any] | None:
    """The mirror's status once nothing is left to send."""
    status = mirror_status(daemon)
    return status if status["state"] == "idle" and status["pending"] == 0 else None


def test_backlog_arrives_exactly_once(
    serve_in_thread: ServeInThread, workdir: Path, listenbrainz_sim: SimulatedListenBrainz
) -> None:
    """Every stored listen reaches the server once, as imports of at most 1,000; status,
    `musiquectl mirror status` and `daemon.status` say so."""
    history = generated(2345)
    seed(workdir / "musique.db", history)
    daemon = serve_in_thread(socket=True, **listenbrainz_sim.sections())
    status = daemon.wait_until(lambda: mirrored(daemon), timeout=60)
    assert sorted(received(listenbrainz_sim)) == sorted(identities(workdir / "musique.db"))
    assert len(received(listenbrainz_sim)) == len(history)
    sizes = [r["listens"] for r in listenbrainz_sim.requests() if r.get("listen_type")]
    assert sizes == [1000, 1000, 345]
    assert status["submitted"] == len(history)
    assert status["last_error"] is None
    shown = daemon.ctl("mirror", "status")
    assert shown.returncode == 0, shown.stderr
    assert "up to date" in shown.stdout
    assert "2,345 listens" in shown.stdout
    assert daemon.call("daemon.status")["mirror"]["submitted"] == len(history)


def test_live_scrobbles_and_now_playing_are_forwarded(
    serve_in_thread: ServeInThread,
    workdir: Path,
    lastfm_sim: SimulatedLastfm,
    listenbrainz_sim: SimulatedListenBrainz,
) -> None:
    """A scrobble the tracker records reaches the server as `single` within the tracker's
    interval + 5 s; what plays now goes as `playing_now`; `watch` shows the mirror."""
    lastfm_sim.reset(size=30, seed=7)
    daemon = serve_in_thread(
        socket=True, **lastfm_sim.sections(), **listenbrainz_sim.sections(), tracker=FAST
    )
    daemon.call("tracker.start")
    database = workdir / "musique.db"
    daemon.wait_until(lambda: identities(database) == lastfm_sim.expected(), timeout=20)
    daemon.wait_until(lambda: mirrored(daemon), timeout=20)
    watch = Watch(daemon)
    try:
        added = lastfm_sim.add_new_scrobbles(n=1)
        began = time.monotonic()
        wanted = (added[0].timestamp, added[0].artist.casefold(), added[0].title.casefold())
        daemon.wait_until(lambda: wanted in received(listenbrainz_sim), timeout=15, interval=0.05)
        assert time.monotonic() - began <= FAST["interval_seconds"] + 5
        line = watch.wait_for("mirror ")
        assert "progress" in line
        assert "pending=0" in line
        assert watch.interrupt() == 0
    finally:
        watch.close()
    last = [r for r in listenbrainz_sim.requests() if r.get("listen_type")][-1]
    assert (last["listen_type"], last["listens"]) == ("single", 1)
    assert sorted(received(listenbrainz_sim)) == sorted(lastfm_sim.expected())

    lastfm_sim.set_now_playing("Nina Simone", "Sinnerman", "Pastel Blues")
    playing = daemon.wait_until(listenbrainz_sim.sim.playing_now, timeout=15)
    assert (playing["artist_name"], playing["track_name"], playing["release_name"]) == (
        "Nina Simone",
        "Sinnerman",
        "Pastel Blues",
    )


def test_429_storms_never_exceed_the_limit(
    serve_in_thread: ServeInThread, workdir: Path, listenbrainz_sim: SimulatedListenBrainz
) -> None:
    """With 2 requests per 1 s window and 429s on top, the mirror waits as told: the server
    never has to refuse a request for the rate, and everything arrives once."""
    seed(workdir / "musique.db", generated(4000))
    listenbrainz_sim.configure(limit=2, window=1)
    listenbrainz_sim.sim.faults.force("429", count=4, retry_after=1)
    daemon = serve_in_thread(**listenbrainz_sim.sections())
    daemon.wait_until(lambda: mirrored(daemon), timeout=90)
    answers = listenbrainz_sim.requests()
    over_limit = [r for r in answers if r["status"] == 429 and "fault" not in r]
    assert over_limit == []
    assert [r.get("fault") for r in answers].count("429") == 4
    assert sorted(received(listenbrainz_sim)) == sorted(identities(workdir / "musique.db"))


def test_a_refused_token_stops_until_a_reload_brings_a_new_one(
    start_daemon: StartDaemon, workdir: Path, listenbrainz_sim: SimulatedListenBrainz
) -> None:
    """A token the server refuses stops the mirror with a clear error in its status, the
    daemon's status line and the log; a reload with a good token sends the backlog."""
    history = generated(50)
    seed(workdir / "musique.db", history)
    daemon = start_daemon(**listenbrainz_sim.sections(token="not-the-token"))
    status = daemon.wait_until(
        lambda: (s := mirror_status(daemon))["state"] == "stopped" and s, timeout=20
    )
    assert "check listenbrainz.token" in status["last_error"]
    assert "mirror stopped" in daemon.call("daemon.status")["status"]
    shown = daemon.ctl("mirror", "status")
    assert "stopped: needs a human" in shown.stdout
    assert "check listenbrainz.token" in shown.stdout
    assert "mirror stopped: needs a human" in daemon.logs()
    assert "not-the-token" not in daemon.logs()
    assert listenbrainz_sim.listens() == []

    write_config(workdir / "musiqued.toml", base_sections(workdir, **listenbrainz_sim.sections()))
    assert daemon.ctl("reload").returncode == 0
    status = daemon.wait_until(lambda: mirrored(daemon), timeout=30)
    assert status["last_error"] is None
    assert len(received(listenbrainz_sim)) == len(history)


def test_a_kill_mid_backlog_resends_at_most_one_payload(
    start_daemon: StartDaemon, workdir: Path, listenbrainz_sim: SimulatedListenBrainz
) -> None:
    """SIGKILL while the backlog goes, then a restart: nothing is missing and at most the
    one payload in flight arrives twice."""
    seed(workdir / "musique.db", generated(5000))
    listenbrainz_sim.configure(limit=1, window=1)
    daemon = start_daemon(**listenbrainz_sim.sections())
    daemon.wait_until(lambda: len(listenbrainz_sim.listens()) >= 2000, timeout=60, interval=0.02)
    daemon.kill()
    listenbrainz_sim.configure(limit=1_000_000)
    daemon.start()
    daemon.wait_until(lambda: mirrored(daemon), timeout=60)
    got = received(listenbrainz_sim)
    assert set(got) == identities(workdir / "musique.db")
    twice = sum(n - 1 for n in Counter(got).values())
    assert twice <= 1000


def test_late_listens_arrive(
    serve_in_thread: ServeInThread,
    workdir: Path,
    lastfm_sim: SimulatedLastfm,
    listenbrainz_sim: SimulatedListenBrainz,
) -> None:
    """Listens that reach Last.fm late, older than what was sent already, are found by the
    tracker's late sweep and sent too."""
    lastfm_sim.reset(size=30, seed=8)
    daemon = serve_in_thread(
        **lastfm_sim.sections(),
        **listenbrainz_sim.sections(),
        tracker={"interval_seconds": 1, "late_sweep_interval_seconds": 1},
    )
    daemon.call("tracker.start")
    database = workdir / "musique.db"
    daemon.wait_until(lambda: identities(database) == lastfm_sim.expected(), timeout=20)
    daemon.wait_until(lambda: mirrored(daemon), timeout=20)
    late = lastfm_sim.add_scrobbles(n=3, back_days=3)
    wanted = {(s.timestamp, s.artist.casefold(), s.title.casefold()) for s in late}
    daemon.wait_until(lambda: wanted <= set(received(listenbrainz_sim)), timeout=30)
    got = received(listenbrainz_sim)
    assert sorted(got) == sorted(lastfm_sim.expected())


def test_a_refused_listen_is_recorded_and_skipped(
    serve_in_thread: ServeInThread, workdir: Path, listenbrainz_sim: SimulatedListenBrainz
) -> None:
    """A listen the server refuses is recorded with its reason, logged and skipped; every
    other listen of its payload arrives, and it is not sent again after a restart."""
    history = generated(40)
    ahead = Scrobble(timestamp=int(time.time()) + 5 * 86400, artist="Ahead", title="Of Time")
    seed(workdir / "musique.db", [*history[:20], ahead, *history[20:]])
    daemon = serve_in_thread(**listenbrainz_sim.sections())
    status = daemon.wait_until(lambda: mirrored(daemon), timeout=30)
    assert (status["submitted"], status["refused"]) == (40, 1)
    assert "listened_at is too high" in status["last_error"]
    assert daemon.logged("listen refused by the mirror's server")
    assert len(received(listenbrainz_sim)) == 40
    assert ("ahead", "of time") not in {(a, t) for _, a, t in received(listenbrainz_sim)}
    requests = len(listenbrainz_sim.requests())
    daemon.restart()
    daemon.wait_until(lambda: mirrored(daemon), timeout=30)
    assert [r["path"] for r in listenbrainz_sim.requests()[requests:]] == ["/1/validate-token"]


def test_pause_and_resume_from_the_command_line(
    serve_in_thread: ServeInThread, workdir: Path, listenbrainz_sim: SimulatedListenBrainz
) -> None:
    """`musiquectl mirror pause` holds what is stored, across a restart; `resume` sends it."""
    daemon = serve_in_thread(socket=True, **listenbrainz_sim.sections())
    paused = daemon.ctl("mirror", "pause")
    assert paused.returncode == 0, paused.stderr
    assert "paused (musiquectl mirror resume)" in paused.stdout
    daemon.stop()
    seed(workdir / "musique.db", generated(30))
    daemon.start()
    assert mirror_status(daemon)["state"] == "paused"
    assert mirror_status(daemon)["pending"] == 30
    assert listenbrainz_sim.listens() == []
    resumed = daemon.ctl("--json", "mirror", "resume")
    assert resumed.returncode == 0, resumed.stderr
    daemon.wait_until(lambda: mirrored(daemon), timeout=20)
    assert len(listenbrainz_sim.listens()) == 30


def test_file_imported_listens_arrive(
    workdir: Path,
    serve_in_thread: ServeInThread,
    listenbrainz_sim: SimulatedListenBrainz,
) -> None:
    """Listens a file import adds (older than every listen already sent) are sent too, as
    ``spotify.com`` plays, once the import's job has stored them."""
    seed(workdir / "musique.db", generated(40, start=1_700_000_000))
    daemon = serve_in_thread(socket=True, **listenbrainz_sim.sections())
    daemon.wait_until(lambda: mirrored(daemon), timeout=30)
    before = len(received(listenbrainz_sim))
    dump = workdir / "Streaming_History_Audio_2019.json"
    plays = [
        files.spotify_play(1_500_000_000 + i * 400 + 200, track=f"Filed {i}", artist="From a file")
        for i in range(25)
    ]
    dump.write_bytes(files.json_file(plays))
    done = daemon.ctl("--json", "import-file", str(dump))
    assert done.returncode == 0, done.stderr
    wanted = {(1_500_000_000 + i * 400, "from a file", f"filed {i}") for i in range(25)}
    daemon.wait_until(lambda: wanted <= set(received(listenbrainz_sim)), timeout=30)
    sent = listenbrainz_sim.listens()[before:]
    assert len(sent) == 25
    assert {x["track_metadata"]["additional_info"]["music_service"] for x in sent} == {
        "spotify.com"
    }
