"""``musiquectl``'s exit status and messages tell the truth: usage errors found before the
daemon is asked, followed jobs that fail, and advice that fits the situation."""

from __future__ import annotations

import datetime as dt
import grp  # imported before a child drops root: the interpreter's files are root's
import json
import os
import pwd
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import musiquectl.cli
from tests.fixtures.lastfm import SimulatedLastfm
from tests.fixtures.whole_daemon import StartWholeDaemon, ThreadedWholeDaemon
from tests.history_support import generated, seed, ts
from tests.import_helpers import wait_job, wait_pages
from tests.rawrpc import NOBODY, run_as
from tests.support import VENV_BIN, run_ctl

NOWHERE = Path("/nonexistent/musiqued.sock")
"""No daemon: a usage error must be found without it (else the status would be 3)."""


def _usage_error(*args: str) -> str:
    """Run against no daemon; the status must be 2 and the message one ``Error:`` line.
    musiquectl's entry point runs in a forked child (``_forked_ctl``): a usage error is
    found before any socket is opened."""
    status, output = _forked_ctl("--socket", str(NOWHERE), *args)
    assert status == 2, (args, output)
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, output
    return errors[0]


def test_bad_moments_are_usage_errors_worded_alike() -> None:
    """A moment that cannot be read, an unknown unit, a --since in the future or not before
    --until: exit 2 before the daemon is asked, the same words in every command."""
    future = f"{dt.date.today().year + 5}-01-01"
    commands = (
        ("history",),
        ("stats",),
        ("export", "--format", "csv"),
        ("import",),
        ("verify",),
    )
    for command in commands:
        assert _usage_error(*command, "--since", "tomorrow") == (
            "Error: Invalid value for '--since': 'tomorrow' is not a moment: use Unix seconds, "
            "an ISO 8601 date (2024-05-01, 20240501: midnight in your time zone) or datetime "
            "(2024-05-01T18:30, naive means UTC), an age like 30d or 2w (units s, m (minutes), h, d, w, month (30 days), "
            "y (365 days)), 'last week', 'today', 'yesterday' or 'now'"
        )
        assert _usage_error(*command, "--until", "3fortnights") == (
            "Error: Invalid value for '--until': '3fortnights': unknown unit 'fortnights'; "
            "units s, m (minutes), h, d, w, month (30 days), y (365 days)"
        )
        assert _usage_error(*command, "--since", future).endswith("local time) is in the future")
        error = _usage_error(*command, "--since", "2024-02-01", "--until", "20240101")
        assert error.startswith("Error: --since 2024-02-01 (2024-0")
        assert " is not before --until 20240101 (" in error


def test_contradictory_import_options_are_refused() -> None:
    """LIMIT, --all, --incremental and --since that contradict each other: exit 2, one line
    naming both options and why."""
    cases = {
        ("10", "--all"): "LIMIT and --all contradict each other",
        ("10", "--incremental"): "LIMIT and --incremental contradict each other",
        ("--incremental", "--all"): "--incremental and --all contradict each other",
        ("--incremental", "--since", "7d"): "--incremental and --since contradict each other",
    }
    for args, words in cases.items():
        assert _usage_error("import", *args).startswith(f"Error: {words}: ")


def test_export_into_a_missing_directory_is_a_usage_error(workdir: Path) -> None:
    """``export -o DIR/FILE`` into a directory that is not there: exit 2, the path named."""
    target = workdir / "no-such-dir" / "listens.csv"
    assert _usage_error("export", "--format", "csv", "-o", str(target)) == (
        f"Error: -o {target}: no directory {target.parent} to write it in"
    )


def test_dates_are_read_as_people_write_them(
    workdir: Path, start_in_thread: StartWholeDaemon
) -> None:
    """``20240302`` is 2 March 2024 (ISO 8601 basic), not Unix seconds; ``@N`` is Unix
    seconds; ``30D`` is ``30d``."""
    seed(workdir / "musique.db", generated(60, start=ts("2024-03-01T00:00:00"), step=10800))
    daemon = start_in_thread()

    def listens(since: str) -> int:
        done = daemon.ctl("--json", "stats", "--since", since)
        assert done.returncode == 0, done.stderr
        return int(json.loads(done.stdout)["listens"])

    from_march_2 = listens("2024-03-02")
    assert 0 < from_march_2 < 60
    assert listens("20240302") == from_march_2
    assert listens(str(ts("2024-03-02T00:00:00"))) == from_march_2
    assert listens("@20240302") == 60  # 20 million seconds after 1970: everything
    assert listens("30D") == listens("30d") == 0


def test_a_failed_import_exits_1_with_its_error_last(
    lastfm_sim: SimulatedLastfm, start_in_thread: StartWholeDaemon
) -> None:
    """A followed import that fails exits 1 with the job's error as the last line: human,
    ``--json`` and ``jobs show`` alike; ``--detach`` exits 0 once the job is accepted."""
    daemon = start_in_thread(**lastfm_sim.sections(api_key="not-the-key"))
    error = "musiquectl: import job 1 failed: the Last.fm API key is invalid"
    human = daemon.ctl("import", "10")
    assert human.returncode == 1
    assert "Import job 1 FAILED" in human.stdout
    assert human.stderr.splitlines()[-1].startswith(error), human.stderr
    as_json = daemon.ctl("--json", "import", "10")
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout)["state"] == "failed"
    assert as_json.stderr.splitlines()[-1].startswith(error.replace("job 1", "job 2"))
    for args in (
        ("jobs", "show", "1"),
        ("--json", "jobs", "show", "1"),
        ("jobs", "show", "1", "--no-follow"),
    ):
        shown = daemon.ctl(*args)
        assert shown.returncode == 1, args
        assert shown.stderr.splitlines()[-1].startswith(error), args
    detached = daemon.ctl("import", "10", "--detach")
    assert detached.returncode == 0, detached.stderr
    assert detached.stdout == "import job 3 started; follow it with `musiquectl jobs show 3`\n"
    assert wait_job(daemon, 3)["state"] == "failed"


@contextmanager
def _following_import(daemon: ThreadedWholeDaemon, job_id: int) -> Iterator[subprocess.Popen[str]]:
    """``musiquectl import --all`` in its own process, once its job (``job_id``, the next
    one) has stored a page."""
    follower = subprocess.Popen(
        [str(VENV_BIN / "musiquectl"), "--socket", str(daemon.socket_path), "import", "--all"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        daemon.wait_until(
            lambda: [j for j in daemon.call("jobs.list", {"limit": 1}) if j["job_id"] == job_id]
        )
        wait_pages(daemon, job_id, 1)
        yield follower
    finally:
        if follower.poll() is None:
            follower.kill()
        follower.communicate(timeout=5)


def test_a_followed_job_detached_exits_0_and_cancelled_exits_1(
    lastfm_sim: SimulatedLastfm, start_in_thread: StartWholeDaemon
) -> None:
    """Ctrl-C while following an import detaches: exit 0, the job goes on and says how to
    follow it again. Cancelling a followed import ends ``musiquectl import`` with status 1
    and says so; cancelling it again, or pausing a paused job, succeeds with a note
    (idempotent)."""
    lastfm_sim.reset(size=2000, seed=8)
    daemon = start_in_thread(**lastfm_sim.sections(requests_per_second=5.0, page_size=50))
    with _following_import(daemon, 1) as follower:
        follower.send_signal(signal.SIGINT)
        _, err = follower.communicate(timeout=30)
    assert follower.returncode == 0, err
    assert "detached; job 1 goes on in the daemon" in err
    assert daemon.call("jobs.get", {"job_id": 1})["state"] in ("queued", "running")
    daemon.call("jobs.cancel", {"job_id": 1})

    with _following_import(daemon, 2) as follower:
        cancelled = daemon.ctl("jobs", "cancel", "2")
        assert cancelled.stdout == "job 2: cancelled\n"
        out, err = follower.communicate(timeout=30)
    assert follower.returncode == 1, err
    assert "Import job 2 cancelled" in out
    assert err.splitlines()[-1] == "musiquectl: import job 2 was cancelled"
    again = daemon.ctl("jobs", "cancel", "2")
    assert again.returncode == 0, again.stderr
    assert again.stdout == "job 2 is already cancelled; nothing to do\n"
    assert daemon.call("jobs.cancel", {"job_id": 2})["state"] == "cancelled"  # not -32003

    job_id = daemon.call("import.start", {"all": True})["job_id"]
    assert daemon.ctl("jobs", "pause", str(job_id)).stdout == f"job {job_id}: paused\n"
    twice = daemon.ctl("jobs", "pause", str(job_id))
    assert twice.returncode == 0, twice.stderr
    assert twice.stdout == f"job {job_id} is already paused; nothing to do\n"
    assert daemon.call("jobs.pause", {"job_id": job_id})["state"] == "paused"

    blocked = daemon.ctl("import", "10")
    assert blocked.returncode == 1
    assert blocked.stderr == (
        f"musiquectl: job {job_id} (import) is paused: finish it with "
        f"`musiquectl jobs resume {job_id}`, or `musiquectl jobs cancel {job_id}` before "
        "starting another import\n"
    )
    daemon.ctl("jobs", "cancel", str(job_id))


def test_a_regular_file_at_the_socket_path_is_named(workdir: Path) -> None:
    """A regular file where the socket should be: exit 3, saying so (not "start the daemon")."""
    impostor = workdir / "d.sock"
    impostor.write_text("not a socket\n")
    done = run_ctl("status", socket_path=impostor)
    assert done.returncode == 3
    assert done.stderr.splitlines() == [
        f"musiquectl: cannot reach musiqued at {impostor}: {impostor} is a regular file, "
        "not a socket",
        "Point --socket or $MUSIQUED_SOCKET at the daemon's socket ([daemon] socket in its "
        "configuration).",
    ]


def _forked_ctl(*args: str, uid: int | None = None) -> tuple[int, str]:
    """``musiquectl ARGS`` as the program runs it (its entry point, ``main``), in a child
    process forked from this one (as ``uid``; None: as ourselves), without starting an
    interpreter: its exit status and what it printed (stdout and stderr together)."""

    def child(out: int) -> int:
        # pytest's capture replaced sys.stdout/stderr: write straight to the pipe.
        sys.stdout = sys.stderr = open(out, "w", closefd=False)  # noqa: SIM115
        try:
            musiquectl.cli.main(list(args))
        except SystemExit as exc:
            return exc.code if isinstance(exc.code, int) else 1
        finally:
            sys.stdout.flush()
        return 0

    status, output = run_as(child, uid)
    return status, output.decode()


def _as_nobody(*args: str) -> tuple[int, str]:
    """``musiquectl ARGS`` in a child process that runs as nobody (nobody cannot read the
    interpreter under /root: the child reuses the modules this process has loaded)."""
    return _forked_ctl(*args, uid=NOBODY)


def test_a_user_kept_out_is_told_how_to_get_in(
    start_in_thread: StartWholeDaemon, workdir: Path
) -> None:
    """A user the socket's mode keeps out: exit 3, the socket's owner, group and mode, and
    how to get in (join the group, or allowed_uids), not "start the daemon".

    A socket open to all but a uid the daemon does not allow: exit 1 with the daemon's
    -32005 message (without the code), which names allowed_uids and allowed_gids."""
    workdir.chmod(0o755)
    daemon = start_in_thread(daemon={"socket_mode": "0660"})
    status, output = _as_nobody("--socket", str(daemon.socket_path), "status")
    assert status == 3, output
    group = grp.getgrgid(os.getegid()).gr_name
    owner = pwd.getpwuid(os.geteuid()).pw_name
    assert output.splitlines() == [
        f"musiquectl: cannot reach musiqued at {daemon.socket_path}: permission denied by "
        f"{daemon.socket_path} (owner {owner}, group {group}, mode 0660)",
        f"Only root, the daemon's user and members of group {group}: join it (`sudo usermod "
        f"-aG {group} $USER`, then log in again), or have an administrator add your uid "
        f"{NOBODY} to [daemon] allowed_uids (with a [daemon] socket_mode that lets you in).",
    ]
    assert "systemctl start" not in output

    daemon.socket_path.chmod(0o666)  # open to all, as socket_mode = "0666" makes it
    status, output = _as_nobody("--socket", str(daemon.socket_path), "status")
    assert status == 1, output
    assert f"musiquectl: uid {NOBODY} may not use this daemon" in output
    assert "allowed_uids or allowed_gids" in output


def test_socket_option_completes_file_paths() -> None:
    """``musiquectl --socket <TAB>`` completes file names (click's "file" completion)."""
    env = {
        **os.environ,
        "_MUSIQUECTL_COMPLETE": "bash_complete",
        "COMP_WORDS": "musiquectl --socket /tm",
        "COMP_CWORD": "2",
    }
    done = subprocess.run(
        [str(VENV_BIN / "musiquectl")],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.stdout.splitlines() == ["file,/tm"]
