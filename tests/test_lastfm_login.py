"""`musiquectl lastfm login` against the simulator: a private profile becomes readable."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from pathlib import Path

from tests.fixtures.daemon import StartDaemon
from tests.fixtures.lastfm import SimulatedLastfm
from tests.import_helpers import assert_exact, run_import
from tests.support import VENV_BIN, base_sections, write_config


def open_in_browser(url: str) -> None:
    """What the user does with the printed URL: open it (the simulator approves the token)."""
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (http to the sim)
        assert response.status == 200


def session_keys(sim: SimulatedLastfm) -> list[str]:
    return list(sim.sim._sessions)


def test_private_profile_after_login(
    lastfm_sim: SimulatedLastfm, start_daemon: StartDaemon, workdir: Path
) -> None:
    """An import of a private profile fails with the login hint; after `lastfm login`
    (URL opened, Enter pressed) it imports every scrobble, signed, also after a restart;
    the session key is never printed, logged or returned."""
    lastfm_sim.reset(size=300, seed=4)
    lastfm_sim.configure(private=True, auto_approve=False)
    daemon = start_daemon(**lastfm_sim.sections())

    job = run_import(daemon, all=True)
    assert job["state"] == "failed"
    assert "run `musiquectl lastfm login`" in job["error"]

    with subprocess.Popen(
        [str(VENV_BIN / "musiquectl"), "--socket", str(daemon.socket_path), "lastfm", "login"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as ctl:
        assert ctl.stdout is not None
        assert ctl.stdin is not None
        first = ctl.stdout.readline()
        assert "Open this URL" in first
        url = ctl.stdout.readline().strip()
        assert url.startswith(f"{lastfm_sim.base_url}/api/auth/?api_key=")
        open_in_browser(url)
        out, err = ctl.communicate("\n", timeout=30)
    assert ctl.returncode == 0, err
    assert "Logged in to Last.fm as simuser" in out

    job = run_import(daemon, all=True)
    assert job["state"] == "done", job
    assert_exact(workdir / "musique.db", lastfm_sim.scrobbles())

    keys = session_keys(lastfm_sim)
    assert len(keys) == 1
    status = json.dumps(daemon.call("daemon.status"))
    for text in (out, err, status, daemon.logs()):
        assert keys[0] not in text

    daemon.stop()
    lastfm_sim.add_scrobbles(3)
    restarted = start_daemon(**lastfm_sim.sections())
    job = run_import(restarted, all=True)
    assert job["state"] == "done", job
    assert_exact(workdir / "musique.db", lastfm_sim.scrobbles())


def test_login_in_two_steps_for_scripts(
    lastfm_sim: SimulatedLastfm, start_daemon: StartDaemon
) -> None:
    """`--no-wait` prints the URL and token; `--token` finishes once access is allowed."""
    lastfm_sim.configure(auto_approve=False)
    daemon = start_daemon(**lastfm_sim.sections())
    started = daemon.ctl("--json", "lastfm", "login", "--no-wait")
    assert started.returncode == 0, started.stderr
    begun = json.loads(started.stdout)
    assert set(begun) == {"url", "token"}

    early = daemon.ctl("lastfm", "login", "--token", begun["token"])
    assert early.returncode == 1
    assert "not authorised" in early.stderr

    open_in_browser(begun["url"])
    done = daemon.ctl("--json", "lastfm", "login", "--token", begun["token"])
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"username": "simuser"}


def test_login_needs_the_api_secret(lastfm_sim: SimulatedLastfm, start_daemon: StartDaemon) -> None:
    """Without lastfm.api_secret, login says what is missing (exit 1, not configured)."""
    sections = lastfm_sim.sections()
    sections["lastfm"].pop("api_secret")
    daemon = start_daemon(**sections)
    result = daemon.ctl("lastfm", "login", "--no-wait")
    assert result.returncode == 1
    assert "lastfm.api_secret" in result.stderr


def test_reload_applies_new_lastfm_settings(
    lastfm_sim: SimulatedLastfm, start_daemon: StartDaemon, workdir: Path
) -> None:
    """A wrong API key fails imports clearly; fixing the file and reloading makes them work."""
    lastfm_sim.reset(size=120, seed=2)
    daemon = start_daemon(**lastfm_sim.sections(api_key="wrong"))
    job = run_import(daemon, all=True)
    assert job["state"] == "failed"
    assert "the Last.fm API key is invalid" in job["error"]

    write_config(daemon.config_path, base_sections(workdir, **lastfm_sim.sections()))
    reloaded = daemon.ctl("--json", "reload")
    assert reloaded.returncode == 0, reloaded.stderr
    assert "lastfm" in json.loads(reloaded.stdout)["changed"]
    job = run_import(daemon, all=True)
    assert job["state"] == "done", job
    assert_exact(workdir / "musique.db", lastfm_sim.scrobbles())
