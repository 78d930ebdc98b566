"""Enrichment through the whole daemon's services, served in the test's process: an import
feeding it and ``musiquectl`` (a process, against their socket) showing it, a clean restart
mid-queue, the per-import album cap while a job is paused.

What each source records, skipped and failing services, ``--retry-failed`` and Retry-After
are tested in-process in ``test_enricher_service.py``."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections import Counter
from typing import Any

from musiqued.sim.spotify import SpotifySim
from tests.fixtures.enrichment import AI_KEY, SPOTIFY_SECRET, SimulatedAi, SimulatedSpotify
from tests.fixtures.lastfm import SimulatedLastfm
from tests.fixtures.threaded import ServeInThread, ThreadedDaemon

FAST = {"retry_seconds": 0.1, "max_attempts": 3}


def _rows(daemon: ThreadedDaemon, sql: str) -> list[sqlite3.Row]:
    conn = sqlite3.connect(f"file:{daemon.workdir / 'musique.db'}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _albums(daemon: ThreadedDaemon) -> list[sqlite3.Row]:
    return _rows(
        daemon,
        "SELECT al.*, ar.name AS artist FROM albums al JOIN artists ar ON ar.id = al.artist_id",
    )


def _import_all(daemon: ThreadedDaemon) -> dict[str, Any]:
    job = daemon.call("import.start", {"all": True})
    return daemon.wait_job(job["job_id"])


def _settled(daemon: ThreadedDaemon, timeout: float = 60) -> dict[str, Any]:
    """enrich.status once nothing is pending or running."""

    def settled() -> dict[str, Any] | None:
        status: dict[str, Any] = daemon.call("enrich.status")
        return status if status["pending"] == 0 and status["running"] == 0 else None

    result: dict[str, Any] = daemon.wait_until(settled, timeout=timeout, interval=0.1)
    return result


def _no_secret(text: str) -> None:
    for secret in (SPOTIFY_SECRET, AI_KEY):
        assert secret not in text


def test_import_enriches_every_album_and_artist(
    lastfm_sim: SimulatedLastfm,
    spotify_sim: SimulatedSpotify,
    ai_sim: SimulatedAi,
    serve_in_thread: ServeInThread,
) -> None:
    """After an import every album has its Last.fm and Spotify images and a description
    grounded in the facts sent, every artist its Spotify image; running enrich again changes
    nothing; musiquectl shows it all; no secret shows anywhere."""
    lastfm_sim.reset(size=400, seed=7)
    daemon = serve_in_thread(
        socket=True,
        **lastfm_sim.sections(),
        **spotify_sim.sections(),
        **ai_sim.sections(),
        enrichment=FAST,
    )
    job = _import_all(daemon)
    assert job["state"] == "done"
    status = _settled(daemon)
    assert status["failed"] == 0
    assert {s: v["configured"] for s, v in status["by_source"].items()} == {
        "lastfm": True,
        "spotify": True,
        "ai": True,
    }

    albums = _albums(daemon)
    assert albums
    for album in albums:
        assert album["image_lastfm"], album["title"]
        assert album["url"]
        # The right candidate, though the simulator never lists it first.
        assert album["spotify_id"] == SpotifySim.album_id(album["artist"], album["title"])
        assert album["image_spotify"] == SpotifySim.album_image(
            album["artist"], album["title"], spotify_sim.base_url
        )
        assert album["title"] in album["description"]
        assert album["description_model"] == "sim-llm"
        assert album["description_at"]
    for artist in _rows(daemon, "SELECT name, image_spotify, spotify_id FROM artists"):
        assert artist["image_spotify"] == SpotifySim.artist_image(
            artist["name"], spotify_sim.base_url
        )

    # The prompt carried the facts: artist, album, tracks listened, the Last.fm wiki.
    prompts = [m[-1]["content"] for m in ai_sim.sim.prompt_log()]
    assert len(prompts) == len(albums)
    with_wiki = [a for a in albums if a["wiki_summary"]]
    assert with_wiki
    for album in with_wiki:
        head = f"Artist: {album['artist']}\nAlbum: {album['title']}\n"
        prompt = next(p for p in prompts if head in p)
        assert album["wiki_summary"] in prompt
        assert "Tracks listened: " in prompt
        assert "Read more on Last.fm" not in prompt

    # The job counts its albums enriched; enrich again is a no-op.
    job = daemon.call("import.status", {"job_id": job["job_id"]})
    assert job["albums_enriched"] == job["total_albums_to_enrich"] == len(albums)
    searches = len(spotify_sim.searches())
    again = daemon.ctl("--json", "enrich")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["queued"] == 0
    time.sleep(0.5)  # a negative: the woken lanes find nothing to search for
    assert len(spotify_sim.searches()) == searches
    assert [dict(a) for a in _albums(daemon)] == [dict(a) for a in albums]

    summary = daemon.call("daemon.status")["enrichment"]
    assert summary == {"pending": 0, "failed": 0, "done": status["done"]}

    table = daemon.ctl("albums")
    assert table.returncode == 0, table.stderr
    top = max(albums, key=lambda a: len(a["title"]))
    assert top["title"] in table.stdout
    assert "lastfm,spotify" in table.stdout
    listed = json.loads(daemon.ctl("--json", "albums", top["title"]).stdout)
    assert any(
        a["title"] == top["title"] and a["description"] == top["description"] for a in listed
    )
    shown = daemon.ctl("enrich", "status")
    assert shown.returncode == 0
    assert "spotify" in shown.stdout

    outputs = [
        table.stdout,
        shown.stdout,
        again.stdout,
        json.dumps(daemon.call("enrich.status")),
        json.dumps(daemon.call("daemon.status")),
        daemon.ctl("--json", "status").stdout,
        json.dumps(daemon.logs, default=str),
    ]
    for text in outputs:
        _no_secret(text)


def _prompted_albums(prompts: list[list[dict[str, str]]]) -> list[tuple[str, str]]:
    """(artist, album) of each prompt the AI endpoint received, in order."""
    asked = []
    for messages in prompts:
        text = "\n".join(m["content"] for m in messages if m.get("role") == "user")
        facts = dict(re.findall(r"^(Artist|Album): (.*)$", text, re.MULTILINE))
        asked.append((facts["Artist"], facts["Album"]))
    return asked


def test_restart_resumes_the_queue(
    lastfm_sim: SimulatedLastfm,
    ai_sim: SimulatedAi,
    serve_in_thread: ServeInThread,
) -> None:
    """A daemon stopped mid-queue picks the queue up where it was after a restart: every
    album ends up described, and none whose description was stored before the stop is
    asked for again (only a request the stop cut short is made once more).

    The prompts are counted over the whole run: a request the stop cut short may reach the
    AI simulator's log after the stop returns, so the log's length at the stop marks no
    boundary."""
    lastfm_sim.reset(size=300, seed=9)
    daemon = serve_in_thread(
        socket=True,
        **lastfm_sim.sections(),
        **ai_sim.sections(requests_per_second=10.0),
        enrichment=FAST,
    )
    _import_all(daemon)
    daemon.wait_until(lambda: daemon.call("enrich.status")["by_source"]["ai"]["done"] >= 3)
    daemon.stop()
    described = {(a["artist"], a["title"]) for a in _albums(daemon) if a["description"]}
    daemon.start()
    status = _settled(daemon)
    assert status["failed"] == 0
    albums = _albums(daemon)
    assert all(a["description"] for a in albums)
    assert len(described) < len(albums)
    asked = Counter(_prompted_albums(ai_sim.sim.prompt_log()))
    assert set(asked) == {(a["artist"], a["title"]) for a in albums}
    assert all(asked[album] == 1 for album in described)
    # The AI lane asks one album at a time: the stop cuts short one request at most.
    assert sum(asked.values()) - len(asked) <= 1


def _enriched_albums(daemon: ThreadedDaemon, job_id: int) -> int:
    """The job's albums whose every source is finished, read from the database."""
    rows = _rows(
        daemon,
        "SELECT item_id FROM enrichment_queue WHERE item_kind = 'album' AND job_id = "
        f"{int(job_id)} GROUP BY item_id HAVING SUM(state NOT IN ('done', 'skipped')) = 0",
    )
    return len(rows)


def test_album_cap_holds_back_a_jobs_albums_until_it_ends(
    lastfm_sim: SimulatedLastfm,
    spotify_sim: SimulatedSpotify,
    ai_sim: SimulatedAi,
    serve_in_thread: ServeInThread,
) -> None:
    """``[enrichment] max_albums_per_import = N``: while the import job is active (here
    paused) at most N of its albums are enriched, the job shows ``albums_enriched`` <= N and
    ``total_albums_to_enrich`` the whole queue; the rest are enriched once the job ends."""
    cap = 3
    lastfm_sim.reset(size=400, seed=5)
    # Every Last.fm answer a little late, one request at a time: the job is still running
    # when it is paused after its first pages.
    lastfm_sim.set_faults(rate=1.0, kinds=["slow"], slow_seconds=0.15)
    daemon = serve_in_thread(
        socket=True,
        **lastfm_sim.sections(page_size=20, max_in_flight=1),
        **spotify_sim.sections(),
        **ai_sim.sections(),
        enrichment={**FAST, "max_albums_per_import": cap},
    )
    job_id = int(daemon.call("import.start", {"all": True})["job_id"])

    def job() -> dict[str, Any]:
        status: dict[str, Any] = daemon.call("import.status", {"job_id": job_id})
        return status

    daemon.wait_until(lambda: job()["total_albums_to_enrich"] > cap, interval=0.02)
    daemon.call("import.pause", {"job_id": job_id})
    lastfm_sim.set_faults(rate=0.0)
    paused = daemon.wait_until(lambda: (j := job())["state"] == "paused" and j)
    total = paused["total_albums_to_enrich"]
    assert total > cap

    held = daemon.wait_until(lambda: (j := job())["albums_enriched"] >= cap and j)
    assert held["albums_enriched"] == cap
    assert held["state"] == "paused"
    # The lanes look again every couple of seconds while work is held back: nothing more.
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        current = job()
        assert current["albums_enriched"] <= cap
        assert _enriched_albums(daemon, job_id) <= cap
        time.sleep(0.2)
    current = job()
    assert current["albums_enriched"] == _enriched_albums(daemon, job_id) == cap
    assert current["total_albums_to_enrich"] == total
    assert daemon.call("enrich.status")["pending"] > 0

    daemon.call("import.resume", {"job_id": job_id})
    finished = daemon.wait_job(job_id)
    assert finished["state"] == "done"
    assert finished["total_albums_to_enrich"] >= total
    status = _settled(daemon)
    assert status["failed"] == 0
    ended = job()
    assert ended["albums_enriched"] == ended["total_albums_to_enrich"] > cap
    assert all(a["description"] for a in _albums(daemon))
