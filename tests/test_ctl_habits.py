"""musiquectl's everyday habits: global options anywhere, one stated limit, the export format
from the file name, one-line choice errors, numbers with separators, messages without
JSON-RPC codes, top tracks, loved listens, the resume hint, completion of every command."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from musiquectl.cli import COMMAND_MODULES
from musiqued import wire
from musiqued.app.cli import command
from musiqued.app.config import SYSTEM_CONFIG
from musiqued.models import Scrobble
from tests.fixtures.lastfm import SimulatedLastfm
from tests.fixtures.whole_daemon import StartWholeDaemon, ThreadedWholeDaemon, whole_daemons
from tests.history_support import generated, seed
from tests.support import HTTP_TOKEN, VENV_BIN, free_port, run_ctl, short_tmp
from tests.test_http_api import request


def _usage_line(*args: str) -> str:
    """The one ``Error:`` line of a usage error (exit 2), found before any daemon is asked."""
    done = run_ctl(*args, socket_path=Path("/nonexistent/musiqued.sock"))
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, done.stderr
    return errors[0]


@pytest.fixture(scope="module")
def twelve_listens() -> Iterator[ThreadedWholeDaemon]:
    """One daemon with 12 listens, for the tests that only ask it things."""
    with short_tmp() as workdir, whole_daemons(workdir) as start:
        seed(workdir / "musique.db", generated(12))
        yield start()


def test_global_options_are_accepted_after_the_command(twelve_listens: ThreadedWholeDaemon) -> None:
    """``--json``, ``--no-header``, ``-v`` and ``--socket`` work after the subcommand as
    before it; after ``--`` nothing is taken as an option."""
    daemon = twelve_listens
    socket = str(daemon.socket_path)
    before = run_ctl("--socket", socket, "--json", "history", "-n", "3")
    after = run_ctl("history", "-n", "3", "--json", "--socket", socket)
    assert after.returncode == 0, after.stderr
    assert json.loads(after.stdout) == json.loads(before.stdout)
    assert len(json.loads(after.stdout)) == 3
    equals = run_ctl("history", f"--socket={socket}", "--no-header", "-n", "2")
    assert equals.returncode == 0, equals.stderr
    assert len(equals.stdout.splitlines()) == 2  # rows only
    ended = run_ctl("--socket", socket, "call", "--", "daemon.status", "--json")
    assert ended.returncode != 0  # "--json" after "--" is the call's params, not an option


def test_albums_pages_through_the_daemons_limit(
    workdir: Path, start_in_thread: StartWholeDaemon
) -> None:
    """The daemon answers at most ``MAX_ALBUMS`` albums a call (stated once, in --help);
    ``albums -n`` asks for more page after page: every album once, most listened first."""
    count = wire.MAX_ALBUMS + 200
    seed(
        workdir / "musique.db",
        [
            Scrobble(timestamp=1_600_000_000 + i, artist="A", title=f"T{i}", album=f"Album {i}")
            for i in range(count)
        ]
        + [Scrobble(timestamp=1_610_000_000, artist="A", title="again", album="Album 7")],
    )
    daemon = start_in_thread()
    shown = run_ctl("albums", "--help")
    assert f"{wire.MAX_ALBUMS:,} at a time" in " ".join(shown.stdout.split())
    refused = daemon.call_error("albums.list", {"limit": wire.MAX_ALBUMS + 1})
    assert refused.code == -32602
    done = daemon.ctl("--json", "albums", "-n", str(count + 50))
    assert done.returncode == 0, done.stderr
    titles = [album["title"] for album in json.loads(done.stdout)]
    assert len(titles) == len(set(titles)) == count
    assert titles[0] == "Album 7"  # the one listened twice


def test_export_takes_its_format_from_the_file_name(
    workdir: Path, twelve_listens: ThreadedWholeDaemon
) -> None:
    """``export -o FILE.csv|.json|.jsonl|.listens.jsonl|.maloja.json`` writes that format
    without --format (the longest extension that fits); an extension
    it cannot tell, or stdout without --format, is a one-line usage error naming the
    choices."""
    daemon = twelve_listens
    for name, first in (
        ("x.csv", "timestamp,date,"),
        ("x.json", "["),
        ("x.jsonl", '{"timestamp"'),
        ("x.listens.jsonl", '{"listened_at"'),
        ("x.maloja.json", '{"maloja"'),
    ):
        target = workdir / name
        done = daemon.ctl("export", "-o", str(target))
        assert done.returncode == 0, done.stderr
        assert target.read_text(encoding="utf-8").startswith(first), name
    text = workdir / "x.txt"
    assert _usage_line("export", "-o", str(text)) == (
        f"Error: -o {text}: cannot tell the format from its extension (.csv, .json, .jsonl, "
        ".listens.jsonl, .maloja.json); give --format (csv, json, jsonl, listenbrainz, maloja)"
    )
    assert _usage_line("export") == (
        "Error: --format is needed when writing to stdout; choose from: csv, json, jsonl, "
        "listenbrainz, maloja"
    )


def test_human_errors_leave_the_codes_to_json_and_verbose(
    twelve_listens: ThreadedWholeDaemon,
) -> None:
    """A daemon error prints its message only; ``-v`` and ``--json`` add the JSON-RPC code
    and kind."""
    daemon = twelve_listens
    plain = daemon.ctl("jobs", "show", "99")
    assert plain.returncode == 1
    assert plain.stderr == "musiquectl: no job 99\n"
    for flag in ("-v", "--json"):
        coded = daemon.ctl("jobs", "show", "99", flag)
        assert coded.returncode == 1
        assert coded.stderr == f"musiquectl: error {wire.NOT_FOUND} [not_found]: no job 99\n"


def test_stats_top_n_with_tracks_and_numbers_with_separators(
    workdir: Path, start_in_thread: StartWholeDaemon
) -> None:
    """``stats --top N`` gives N artists, albums and tracks (the daemon's ``top_tracks``),
    and every count reads ``1,200``."""
    seed(workdir / "musique.db", generated(1200))
    daemon = start_in_thread()
    result = json.loads(daemon.ctl("stats", "--top", "2", "--json").stdout)
    assert len(result["top_artists"]) == len(result["top_tracks"]) == 2
    track = result["top_tracks"][0]
    assert set(track) == {"artist", "title", "listens"}
    assert track["listens"] == max(t["listens"] for t in result["top_tracks"])
    windowed = json.loads(daemon.ctl("stats", "--since", "@1", "--top", "3", "--json").stdout)
    assert windowed["top_tracks"] == daemon.call("stats.summary", {"top": 3})["top_tracks"]
    shown = daemon.ctl("stats", "--top", "2").stdout
    assert "listens:           1,200\n" in shown
    assert "Top tracks\n#\ttitle\tartist\tlistens\n" in shown


def test_history_marks_loved_listens(workdir: Path, start_in_thread: StartWholeDaemon) -> None:
    """A loved listen carries ``loved: true`` and ``history`` marks it with ♥."""
    seed(
        workdir / "musique.db",
        [
            Scrobble(1_700_000_000, "Fairuz", "Kifak Inta", "", loved=True),
            Scrobble(1_700_000_300, "Fairuz", "Li Beirut", ""),
        ],
    )
    daemon = start_in_thread()
    listens = daemon.call("history.recent", {"limit": 2})
    assert [x["loved"] for x in listens] == [False, True]
    rows = [line.split("\t") for line in daemon.ctl("history", "--no-header").stdout.splitlines()]
    assert [(row[2], row[-1]) for row in rows] == [("Li Beirut", ""), ("Kifak Inta", "♥")]


def test_config_check_names_the_file_and_every_problem(tmp_path: Path) -> None:
    """``musiqued --check-config`` says which file it read (or that the default one is not
    there, and, run as root, which user file it leaves unread); a file with several problems
    has each named on the one error line. (musiqued's command runs in the test's process:
    what it prints and its exit status are the program's.)"""
    env = {"MUSIQUED_CONFIG": "", "XDG_CONFIG_HOME": str(tmp_path / "xdg")}

    def check(*args: str) -> Result:
        done = CliRunner().invoke(command(), [*args, "--check-config"], env=env)
        if done.exception is not None and not isinstance(done.exception, SystemExit):
            raise done.exception
        return done

    good = tmp_path / "good.toml"
    good.write_text("[tracker]\ninterval_seconds = 30\n")
    assert check("--config", str(good)).stderr == f"musiqued: read {good}\n"
    # Root's default is the system file; this machine may have one (a real install).
    system_default = os.geteuid() == 0 and SYSTEM_CONFIG.exists()
    default = check()
    if system_default:
        assert default.stderr == f"musiqued: read {SYSTEM_CONFIG}\n"
    else:
        assert default.exit_code == 0
        assert default.stderr.startswith("musiqued: no configuration file at ")
        assert "(the default path); the defaults are used" in default.stderr
    user_file = tmp_path / "xdg" / "musique" / "musiqued.toml"
    user_file.parent.mkdir(parents=True)
    user_file.write_text("[tracker]\ninterval_seconds = 30\n")
    with_user_file = check().stderr
    if os.geteuid() != 0:
        assert with_user_file == f"musiqued: read {user_file}\n"
    elif not system_default:  # not read, and named with the way to read it
        assert f"{user_file} is there but not read" in with_user_file
        assert f"pass --config {user_file} to use it" in with_user_file
    bad = tmp_path / "bad.toml"
    bad.write_text("[daemon]\nsokcet = 1\n[lastfm]\npage_size = 5000\n[tracker]\nx = 1\n")
    done = check("--config", str(bad))
    assert done.exit_code == 78
    assert done.stderr.count("\n") == 1
    for problem in ("daemon.sokcet: unknown key", "lastfm.page_size: ", "tracker.x: unknown"):
        assert problem in done.stderr
    assert "more)" not in done.stderr


def test_the_http_api_takes_the_intervals_musiquectl_takes(
    start_in_thread: StartWholeDaemon, lastfm_sim: SimulatedLastfm
) -> None:
    """``POST …/tracker/start?interval_seconds=2.5`` is accepted as ``tracker start
    --interval 2.5`` is; a word that is no duration is a 422 naming the forms."""
    port = free_port()
    daemon = start_in_thread(
        **lastfm_sim.sections(), http={"listen": f"127.0.0.1:{port}", "token": HTTP_TOKEN}
    )
    base = f"http://127.0.0.1:{port}/api/v1/services/tracker"
    status, body, _ = request(f"{base}/start?interval_seconds=2.5", method="POST")
    assert status == 200, body
    assert daemon.call("tracker.status")["interval_seconds"] == 2.5
    status, body, _ = request(f"{base}/start?interval_seconds=often", method="POST")
    assert status == 422
    assert "is not a duration" in json.dumps(body)
    started = daemon.ctl("tracker", "start", "--interval", "1m")
    assert started.returncode == 0, started.stderr
    assert started.stdout == "tracker already running, now polling every 60 s\n"
    daemon.call("tracker.stop")


def test_completion_offers_every_command() -> None:
    """``musiquectl <TAB>`` offers every registered command."""
    env = {
        **os.environ,
        "_MUSIQUECTL_COMPLETE": "bash_complete",
        "COMP_WORDS": "musiquectl ",
        "COMP_CWORD": "1",
    }
    done = subprocess.run(
        [str(VENV_BIN / "musiquectl")],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    offered = {line.partition(",")[2] for line in done.stdout.splitlines()}
    assert offered == set(COMMAND_MODULES)
