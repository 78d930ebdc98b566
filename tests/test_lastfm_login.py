"""`musiquectl lastfm login` end to end: the daemon process, pylast, the simulator over HTTPS;
the login's failures through the RPC methods with the services in-process.

The simulator serves a certificate from a test CA made for the session; the daemon trusts it
through ``SSL_CERT_FILE`` (``lastfm_sim.trust_env``), as pylast and aiohttp both read it.
"""

from __future__ import annotations

import json
import socket
import subprocess
import urllib.request
from pathlib import Path

from musiqued.upstream.lastfm_auth import AUTH_DEADLINE_S
from tests.fixtures.daemon import StartDaemon
from tests.fixtures.lastfm import SimulatedLastfm
from tests.fixtures.services import InProcess
from tests.import_helpers import assert_exact, run_import
from tests.support import VENV_BIN, DaemonProcess, base_sections, write_config

MASK = "********"


def open_in_browser(lastfm_sim: SimulatedLastfm, url: str) -> None:
    """What the user does with the printed URL: open it (the simulator approves the token)."""
    assert lastfm_sim.tls is not None
    with urllib.request.urlopen(url, timeout=10, context=lastfm_sim.tls.client) as response:  # noqa: S310
        assert response.status == 200


def session_keys(sim: SimulatedLastfm) -> list[str]:
    return list(sim.sim._sessions)


def start_over_tls(
    start_daemon: StartDaemon, lastfm_sim: SimulatedLastfm, **kw: object
) -> DaemonProcess:
    return start_daemon(env=lastfm_sim.trust_env, **kw, **lastfm_sim.sections(tls=True))


def interactive_login(daemon: DaemonProcess, lastfm_sim: SimulatedLastfm) -> tuple[str, str]:
    """`musiquectl lastfm login` as a person runs it: read the URL, open it, press Enter."""
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
        assert url.startswith(f"{lastfm_sim.tls_base_url}/api/auth/?api_key=simkey&token=")
        open_in_browser(lastfm_sim, url)
        out, err = ctl.communicate("\n", timeout=30)
    assert ctl.returncode == 0, err
    return out, err


def assert_masked_in_logs(daemon: DaemonProcess, secret: str) -> None:
    """A log line that quotes the secret shows the mask instead (the scrubber knows it)."""
    daemon.call("test.log", {"event": "quoting a session key", "fields": {"seen": f"<{secret}>"}})
    record = daemon.wait_until(
        lambda: next(
            (r for r in daemon.log_records() if r.get("event") == "quoting a session key"), None
        )
    )
    assert record["seen"] == f"<{MASK}>"
    assert secret not in daemon.logs()


def test_private_profile_after_login(
    lastfm_sim: SimulatedLastfm, start_daemon: StartDaemon, workdir: Path
) -> None:
    """Over HTTPS, a private profile: an import fails with the login hint and the tracker
    stops with "this profile hides its recent tracks". After `lastfm login` (URL opened,
    Enter pressed) an import gets every scrobble, signed, also after a restart, and the
    tracker runs again by itself, its error cleared. The session key is never printed,
    returned or logged (a log line quoting it shows the mask, before and after the
    restart); the auth calls went out as pylast's XML."""
    lastfm_sim.reset(size=300, seed=4)
    lastfm_sim.configure(private=True, auto_approve=False)
    daemon = start_over_tls(start_daemon, lastfm_sim, hooks=True, tracker={"interval_seconds": 1})

    job = run_import(daemon, all=True)
    assert job["state"] == "failed"
    assert "run `musiquectl lastfm login`" in job["error"]
    daemon.call("tracker.start")
    stopped = daemon.wait_until(
        lambda: (s := daemon.call("tracker.status"))["last_error"] and not s["running"] and s
    )
    assert "hides its recent tracks" in stopped["last_error"]

    out, err = interactive_login(daemon, lastfm_sim)
    assert "Logged in to Last.fm as simuser" in out
    assert lastfm_sim.stats()["xml"] == 2  # auth.getToken and auth.getSession, through pylast

    job = run_import(daemon, all=True)
    assert job["state"] == "done", job
    assert_exact(workdir / "musique.db", lastfm_sim.scrobbles())
    running = daemon.wait_until(lambda: (s := daemon.call("tracker.status"))["running"] and s)
    assert running["last_error"] is None

    keys = session_keys(lastfm_sim)
    assert len(keys) == 1
    status = json.dumps(daemon.call("daemon.status"))
    for text in (out, err, status, daemon.logs()):
        assert keys[0] not in text
    assert_masked_in_logs(daemon, keys[0])

    daemon.stop()
    lastfm_sim.add_scrobbles(3)
    restarted = start_over_tls(start_daemon, lastfm_sim, hooks=True)
    job = run_import(restarted, all=True)
    assert job["state"] == "done", job
    assert_exact(workdir / "musique.db", lastfm_sim.scrobbles())
    assert_masked_in_logs(restarted, keys[0])


def test_login_from_the_command_line(
    lastfm_sim: SimulatedLastfm, start_daemon: StartDaemon
) -> None:
    """The hot path stays on the async JSON client, over HTTPS too: an import and tracker
    polls send no XML request and leave pylast unimported; a login then loads it.

    `--no-wait` prints the URL and token; `--token` on a token not yet approved says so
    (exit 1) and stores nothing; once access is allowed it finishes.

    A token approved too late (Last.fm's error 15) asks for a new login; nothing is
    stored, and a new login then works.

    Last.fm answering 503 to everything: login retries briefly, then says Last.fm is
    unavailable (exit 1); once it is back, the same command works."""
    lastfm_sim.reset(size=450, seed=5)
    daemon = start_over_tls(start_daemon, lastfm_sim, hooks=True)
    assert run_import(daemon, all=True)["state"] == "done"
    daemon.call("tracker.start", {"interval_seconds": 1})
    daemon.wait_until(lambda: daemon.call("tracker.status")["last_poll_at"])
    daemon.call("tracker.stop")
    modules = {"names": ["pylast", "httpx2"]}
    assert daemon.call("test.modules", modules) == {"loaded": []}
    assert "xml" not in lastfm_sim.stats()

    lastfm_sim.configure(auto_approve=False)
    started = daemon.ctl("--json", "lastfm", "login", "--no-wait")
    assert started.returncode == 0, started.stderr
    assert daemon.call("test.modules", modules) == {"loaded": ["pylast", "httpx2"]}
    assert lastfm_sim.stats()["xml"] == 1
    begun = json.loads(started.stdout)
    assert set(begun) == {"url", "token"}
    assert begun["url"] == (
        f"{lastfm_sim.tls_base_url}/api/auth/?api_key=simkey&token={begun['token']}"
    )

    early = daemon.ctl("lastfm", "login", "--token", begun["token"])
    assert early.returncode == 1
    assert "the Last.fm token was not authorised: open the URL, allow access" in early.stderr
    assert session_keys(lastfm_sim) == []

    open_in_browser(lastfm_sim, begun["url"])
    done = daemon.ctl("--json", "lastfm", "login", "--token", begun["token"])
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"username": "simuser"}
    assert len(session_keys(lastfm_sim)) == 1

    # An expired token.
    begun = json.loads(daemon.ctl("--json", "lastfm", "login", "--no-wait").stdout)
    open_in_browser(lastfm_sim, begun["url"])
    lastfm_sim.configure(token_lifetime=0.0)  # the hour Last.fm gives a token has passed

    late = daemon.ctl("lastfm", "login", "--token", begun["token"])
    assert late.returncode == 1
    assert "the Last.fm token has expired: run `musiquectl lastfm login` again" in late.stderr
    assert len(session_keys(lastfm_sim)) == 1  # no new session

    lastfm_sim.configure(token_lifetime=3600.0, auto_approve=True)
    again = daemon.ctl("--json", "lastfm", "login", "--no-wait")
    token = json.loads(again.stdout)["token"]
    done = daemon.ctl("lastfm", "login", "--token", token)
    assert done.returncode == 0, done.stderr
    assert "Logged in to Last.fm as simuser" in done.stdout

    # Last.fm down, then back.
    lastfm_sim.set_faults(rate=1.0, kinds=["http503"])
    down = daemon.ctl("lastfm", "login", "--no-wait")
    assert down.returncode == 1
    assert "Last.fm answered HTTP 503" in down.stderr
    assert lastfm_sim.stats()["fault:http503"] == 3  # AUTH_RETRY's attempts

    lastfm_sim.set_faults(rate=0.0)
    back = daemon.ctl("lastfm", "login", "--no-wait")
    assert back.returncode == 0, back.stderr
    assert "Open this URL and allow access" in back.stdout


def test_reload_applies_new_lastfm_settings(
    lastfm_sim: SimulatedLastfm, start_daemon: StartDaemon, workdir: Path
) -> None:
    """Wrong Last.fm settings are named, and fixing the file and reloading makes them work:
    a wrong API key fails imports clearly; a wrong lastfm.api_secret makes Last.fm refuse
    the signature (error 13), and login says which setting to check (exit 1, an upstream
    error, not retried)."""
    lastfm_sim.reset(size=120, seed=2)
    daemon = start_daemon(
        env=lastfm_sim.trust_env, **lastfm_sim.sections(tls=True, api_key="wrong")
    )
    job = run_import(daemon, all=True)
    assert job["state"] == "failed"
    assert "the Last.fm API key is invalid" in job["error"]

    def reload(**lastfm: str) -> None:
        sections = base_sections(workdir, **lastfm_sim.sections(tls=True, **lastfm))
        write_config(daemon.config_path, sections)
        reloaded = daemon.ctl("--json", "reload")
        assert reloaded.returncode == 0, reloaded.stderr
        assert "lastfm" in json.loads(reloaded.stdout)["changed"]

    reload(api_secret="not-the-secret")
    job = run_import(daemon, all=True)
    assert job["state"] == "done", job
    assert_exact(workdir / "musique.db", lastfm_sim.scrobbles())
    result = daemon.ctl("lastfm", "login", "--no-wait")
    assert result.returncode == 1
    assert "Last.fm refused the request signature: check lastfm.api_secret" in result.stderr
    assert lastfm_sim.stats()["error:13"] == 1
    error = daemon.call_error("lastfm.auth_url")
    assert error.code == -32004

    reload()
    assert daemon.ctl("lastfm", "login", "--no-wait").returncode == 0


# -- in-process: the login's failures that need no TLS exchange --------------------------
# (pylast reads SSL_CERT_FILE once, when imported: only a daemon started with ``trust_env``
# trusts the simulator's test CA, so what needs an answer over HTTPS stays above.)


async def test_lastfm_unreachable(lastfm_sim: SimulatedLastfm, in_process: InProcess) -> None:
    """Nothing listening at lastfm.api_url: login says Last.fm cannot be reached."""
    async with in_process(**lastfm_sim.sections(tls=True)) as daemon:
        lastfm_sim.server.stop()
        error = await daemon.call_error("lastfm.auth_url")
    assert "cannot reach Last.fm: the connection was refused" in error.message


async def test_login_needs_https(lastfm_sim: SimulatedLastfm, in_process: InProcess) -> None:
    """A plain http:// lastfm.api_url: login says it needs https:// (pylast speaks only
    HTTPS) without sending anything; imports over http:// still work."""
    lastfm_sim.reset(size=50, seed=3)
    async with in_process(**lastfm_sim.sections()) as daemon:
        error = await daemon.call_error("lastfm.auth_url")
        assert "method:auth.gettoken" not in lastfm_sim.stats()
        job = await daemon.run_import(all=True)
    assert "logging in to Last.fm needs an https:// lastfm.api_url" in error.message
    assert job["state"] == "done"


async def test_login_needs_the_api_secret(
    lastfm_sim: SimulatedLastfm, in_process: InProcess
) -> None:
    """Without lastfm.api_secret, login says what is missing (not configured, -32001)."""
    sections = lastfm_sim.sections(tls=True)
    sections["lastfm"].pop("api_secret")
    async with in_process(**sections) as daemon:
        error = await daemon.call_error("lastfm.auth_url")
    assert error.code == -32001
    assert "lastfm.api_secret" in error.message


async def test_a_hung_lastfm_is_reported_within_the_login_deadline(
    lastfm_sim: SimulatedLastfm, in_process: InProcess
) -> None:
    """Last.fm accepts the connection and never answers: login ends with -32004 saying
    Last.fm did not answer within the login deadline (not that the daemon did not). The
    deadline is shortened here as ``test.lastfm_retry`` shortens the client's retries."""
    with socket.create_server(("127.0.0.1", 0)) as hung:
        port = hung.getsockname()[1]
        sections = lastfm_sim.sections(tls=True, api_url=f"https://127.0.0.1:{port}/2.0/")
        async with in_process(**sections) as daemon:
            assert daemon.services.lastfm.web_auth.deadline == AUTH_DEADLINE_S
            daemon.services.lastfm.web_auth.deadline = 0.5
            error = await daemon.call_error("lastfm.auth_url")
    assert error.code == -32004
    assert "Last.fm did not answer within 0.5 s; try again later" in error.message
