"""``make demo``: the whole story offline, against the simulated Last.fm, Spotify and AI.

Starts ``musique-sim lastfm`` with ~20,000 scrobbles (and the Spotify and AI simulators),
writes a temporary configuration, starts ``musiqued`` against them, runs ``musiquectl import
--all`` (progress bar on a terminal), shows ``musiquectl status`` and the last listens, follows
the tracker live, shows the enriched albums and the statistics, then stops everything cleanly.
The daemon's HTTP listener is on (a free loopback port): the Settings page's URL is printed
at the start, and on a terminal the demo waits for Enter at the end so the page can be
looked at. Its last lines say where to go next.

Stopping it: Ctrl-C (or SIGTERM, or the reader of a pipe leaving: ``make demo | head``) at
any step stops the daemon and the simulators, and removes the temporary folder, without a
traceback. Every process it starts runs in a session of its own, so the terminal's Ctrl-C
reaches only the demo, which stops them in order (a musiquectl caught starting up would
otherwise print Python's traceback).

Extending it: append a step to ``STEPS`` (a function taking the running ``Demo``); it runs
after the import steps, while the simulator and the daemon are up. ``Demo.ctl`` runs
musiquectl, ``Demo.sim_admin`` drives the simulator's admin API (add scrobbles, now playing).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

BIN = Path(sys.executable).parent
SIZE = 20_000
API_KEY = "demokey"
USERNAME = "demo"


def _answers(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Demo:
    """The simulator and the daemon, as subprocesses, in one temporary directory."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = _free_port()
        self.spotify_port = _free_port()
        self.ai_port = _free_port()
        self.http_port = _free_port()
        self.socket = workdir / "musiqued.sock"
        self.config = workdir / "musiqued.toml"
        self._procs: list[subprocess.Popen[bytes]] = []

    @property
    def sim_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def page_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/"

    @property
    def library_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/library"

    def say(self, text: str) -> None:
        click.secho(f"\n▶ {text}", bold=True)

    def adopt(self, process: subprocess.Popen[bytes]) -> None:
        """Stop ``process`` (a foreground musiquectl) with the demo, if it is still running."""
        self._procs.append(process)

    def start_simulator(self, size: int = SIZE) -> None:
        self.say(f"starting the simulated Last.fm with {size:,} scrobbles")
        self._spawn(
            "musique-sim",
            "lastfm",
            "--port",
            str(self.port),
            "--size",
            str(size),
            "--api-key",
            API_KEY,
            "--username",
            USERNAME,
            log="simulator.log",
        )
        self._wait(lambda: self.sim_admin("stats") is not None, "the simulator")
        self.say("starting the simulated Spotify and AI (chat completions) services")
        self._spawn("musique-sim", "spotify", "--port", str(self.spotify_port), log="spotify.log")
        self._spawn("musique-sim", "ai", "--port", str(self.ai_port), log="ai.log")
        self._wait(lambda: _answers(self.spotify_port) and _answers(self.ai_port), "the simulators")

    def write_config(self) -> None:
        self.config.write_text(
            f"""[daemon]
socket = "{self.socket}"
database = "{self.workdir / "musique.db"}"

[lastfm]
api_key = "{API_KEY}"
username = "{USERNAME}"
api_url = "{self.sim_url}/2.0/"
requests_per_second = 50.0

[enrichment]
# The simulators serve the covers themselves: the daemon may fetch them there.
image_url_prefixes = ["{self.sim_url}/i/u/", "http://127.0.0.1:{self.spotify_port}/image/"]

[spotify]
client_id = "simclient"
client_secret = "simclientsecret"
api_url = "http://127.0.0.1:{self.spotify_port}/v1/"
token_url = "http://127.0.0.1:{self.spotify_port}/api/token"

[ai]
api_url = "http://127.0.0.1:{self.ai_port}/1/ai/1/openai/chat/completions"
api_key = "simaikey"
model = "sim-llm"
requests_per_second = 50.0

[http]
listen = "127.0.0.1:{self.http_port}"
""",
            encoding="utf-8",
        )

    def start_daemon(self) -> None:
        self.say("starting musiqued against it")
        self._spawn("musiqued", "--config", str(self.config), log="musiqued.log")
        self._wait(lambda: self.ctl("status", quiet=True).returncode == 0, "musiqued")
        self.say(
            f"the library is at {self.library_url}, Settings at {self.page_url}: "
            f"open {self.login_link()} to log in while the demo runs"
        )

    def login_link(self) -> str:
        """A one-time link that logs a browser in to the pages, as ``musiquectl web``
        prints it (the pages always need a session)."""
        done = self.ctl("--json", "call", "http.login_url", quiet=True)
        if done.returncode != 0:
            return f"the link `musiquectl --socket {self.socket} web` prints"
        return str(json.loads(done.stdout)["url"])

    def ctl(self, *args: str, quiet: bool = False) -> subprocess.CompletedProcess[bytes]:
        """``musiquectl`` against the demo daemon; output goes to the terminal unless quiet."""
        if not quiet:
            click.secho(f"$ musiquectl {' '.join(args)}", fg="cyan")
        return subprocess.run(
            [str(BIN / "musiquectl"), "--socket", str(self.socket), *args],
            check=False,
            capture_output=quiet,
            start_new_session=True,  # Ctrl-C is the demo's to handle: see main()
        )

    def sim_admin(self, path: str, body: dict[str, Any] | None = None) -> Any:
        """GET (no body) or POST to the simulator's ``/admin/<path>``; None if unreachable."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 (a local http URL we built)
            f"{self.sim_url}/admin/{path}", data=data, method="GET" if data is None else "POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
                return json.loads(response.read())
        except OSError:
            return None

    def stop(self) -> None:
        """Stop every process the demo started, the newest first (the daemon before the
        simulators it talks to)."""
        for proc in reversed(self._procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self._procs.clear()

    def _spawn(self, program: str, *args: str, log: str) -> None:
        with (self.workdir / log).open("ab") as out:
            self._procs.append(
                subprocess.Popen(
                    [str(BIN / program), *args],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=out,
                    start_new_session=True,  # the demo stops it, in order, not the terminal
                )
            )

    def _wait(self, ready: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self._procs):
                raise click.ClickException(f"{what} exited early; logs in {self.workdir}")
            if ready():
                return
            time.sleep(0.1)
        raise click.ClickException(f"{what} did not start in {timeout:.0f} s")


def import_everything(demo: Demo) -> None:
    demo.say("importing the whole history (Ctrl-C would only detach)")
    demo.ctl("import", "--all")


def show_status(demo: Demo) -> None:
    demo.say("the daemon's status")
    demo.ctl("status")


def show_last_listens(demo: Demo) -> None:
    demo.say("the last listens")
    demo.ctl("history", "-n", "10")


STEPS: list[Callable[[Demo], None]] = [import_everything, show_status, show_last_listens]
"""What the demo shows, in order; other parts (the tracker) append their own steps."""


def track_live(demo: Demo) -> None:
    """The tracker: a new scrobble and what is playing now, seen live by ``watch``."""
    demo.say("starting the real-time tracker, polling every 2 s")
    demo.ctl("tracker", "start", "--interval", "2")
    demo.say("musiquectl watch, while the simulated Last.fm gets a scrobble and a now playing")
    click.secho("$ musiquectl watch", fg="cyan")
    watch = subprocess.Popen(
        [str(BIN / "musiquectl"), "--socket", str(demo.socket), "watch"],
        start_new_session=True,
    )
    demo.adopt(watch)
    try:
        time.sleep(0.5)
        demo.sim_admin("scrobbles", {"n": 1})
        demo.sim_admin(
            "now_playing", {"artist": "Nina Simone", "title": "Sinnerman", "album": "Pastel Blues"}
        )
        time.sleep(5)
    finally:
        # SIGTERM, not Ctrl-C's SIGINT: a watch still starting up would print a traceback.
        watch.terminate()
        watch.wait(10)
    demo.say("the tracker's status and the newest listens")
    demo.ctl("tracker", "status")
    demo.ctl("history", "-n", "3")


def show_enrichment(demo: Demo) -> None:
    """The background worker has been giving albums images and descriptions all along."""
    demo.say("enrichment, going on in the background since the import")
    time.sleep(3)
    demo.ctl("enrich", "status")
    demo.ctl("albums", "-n", "5")


def show_stats(demo: Demo) -> None:
    demo.say("the statistics of the last 30 days, and an export")
    demo.ctl("stats", "--since", "30d", "--top", "5")
    export = demo.workdir / "listens.csv"
    demo.ctl("export", "-o", str(export))
    rows = export.read_text(encoding="utf-8").count("\n") - 1
    click.echo(f"{export.name}: {rows:,} listens")


def keep_page_open(demo: Demo) -> None:
    """On a terminal, leave everything up until Enter, so the page can be looked at."""
    if not sys.stdin.isatty():
        return
    demo.say(
        f"the library is at {demo.library_url}, Settings at {demo.page_url}; "
        f"log in with {demo.login_link()}; press Enter to stop the demo"
    )
    with contextlib.suppress(EOFError):
        input()


STEPS.extend([track_live, show_enrichment, show_stats, keep_page_open])


@contextlib.contextmanager
def running_demo(size: int) -> Iterator[Demo]:
    """The simulators and the daemon up in a temporary folder; on the way out, however it
    is left (an error, Ctrl-C, SIGTERM, a closed pipe), every process stopped and the
    folder removed."""
    with tempfile.TemporaryDirectory(prefix="musique-demo-", dir="/tmp") as name:
        demo = Demo(Path(name))
        try:
            click.echo(f"working in {demo.workdir} (removed at the end)")
            demo.start_simulator(size)
            demo.write_config()
            demo.start_daemon()
            yield demo
        finally:
            # A second Ctrl-C (or a SIGTERM) must not cut the stopping short and leave a
            # server or the folder behind.
            for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(signum, signal.SIG_IGN)
            with contextlib.suppress(OSError):
                demo.say("stopping musiqued and the simulators")
            demo.stop()


def where_next(page_url: str) -> None:
    """The last lines: where a person goes from here."""
    readme = README if README.is_file() else "/usr/local/share/doc/musique/README.md"
    click.secho("\ndemo finished. Where next:", bold=True)
    click.echo(
        f"  - the library's pages (here they were at {page_url}): set [http] listen in "
        "musiqued.toml, then `musiquectl web` opens them"
    )
    click.echo("  - musiquectl --help, and each command's --help, with examples")
    click.echo(f"  - the README: {readme}")


README = Path(__file__).resolve().parents[2] / "README.md"


def _interrupt(signum: int, _frame: object) -> None:
    """SIGTERM and SIGHUP end the demo as Ctrl-C does: through the same clean-up."""
    raise KeyboardInterrupt


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--size",
    default=SIZE,
    show_default=True,
    type=click.IntRange(100, 1_000_000),
    help="Scrobbles in the simulated Last.fm history.",
)
def main(size: int) -> None:
    """The whole story offline: a simulated Last.fm (and Spotify and AI), musiqued against
    it, an import, the tracker followed live, enrichment, statistics and an export.

    Everything runs in a temporary folder, removed at the end; Ctrl-C at any step stops
    everything the demo started.
    """
    os.environ.pop("MUSIQUED_SOCKET", None)
    # Line by line, so that the demo's lines and its musiquectl's keep their order in a pipe,
    # and a reader that leaves is noticed at the next line.
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    try:
        with running_demo(size) as demo:
            for step in STEPS:
                step(demo)
        where_next(demo.library_url)
    except KeyboardInterrupt:
        with contextlib.suppress(OSError):
            click.echo("\ndemo interrupted; everything it started is stopped", err=True)
        sys.exit(130)
    except BrokenPipeError:
        # The reader left (``make demo | head``): what is still buffered goes nowhere.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


if __name__ == "__main__":
    main()
