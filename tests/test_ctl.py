"""musiquectl as a user runs it: exit codes, socket discovery, --json, and a light start-up."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.whole_daemon import ThreadedWholeDaemon, whole_daemons
from tests.support import VENV_BIN, run_ctl, short_tmp

HEAVY = ("asyncio", "aiohttp", "pydantic", "structlog", "spotipy", "pylast", "rich", "aiosqlite")


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MUSIQUED_SOCKET", "XDG_RUNTIME_DIR")}
    env.update(extra)
    return env


def _ctl(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "musiquectl"), *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        check=False,
    )


@pytest.fixture(scope="module")
def daemon() -> Iterator[ThreadedWholeDaemon]:
    """One daemon for the module: each test only asks it things."""
    with short_tmp() as workdir, whole_daemons(workdir) as start:
        yield start()


def test_exit_0_on_success(daemon: ThreadedWholeDaemon) -> None:
    """``status`` against a running daemon: exit 0 and a human summary."""
    done = daemon.ctl("status")
    assert done.returncode == 0, done.stderr
    assert "musiqued" in done.stdout
    assert "listens" in done.stdout


def test_exit_1_on_daemon_error(daemon: ThreadedWholeDaemon) -> None:
    """A daemon error: exit 1 and its message on stderr (its code with -v)."""
    done = daemon.ctl("call", "nope.method")
    assert done.returncode == 1
    assert done.stderr == "musiquectl: method not found: nope.method\n"
    assert "-32601" in daemon.ctl("-v", "call", "nope.method").stderr
    done = daemon.ctl("call", "events.subscribe", '{"topics": ["nope"]}')
    assert done.returncode == 1
    assert "topics" in done.stderr


def test_exit_2_on_usage_error(daemon: ThreadedWholeDaemon) -> None:
    """Unknown options, commands, and params that are not JSON: exit 2 (usage)."""
    for args in (
        ("--bogus", "status"),
        ("frobnicate",),
        ("call", "daemon.status", "{not json"),
        ("call", "daemon.status", "42"),
    ):
        done = daemon.ctl(*args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert done.stderr


def test_exit_3_when_unreachable(tmp_path: Path) -> None:
    """No daemon: exit 3, the message names the socket tried and how to start the daemon."""
    missing = tmp_path / "none.sock"
    done = run_ctl("status", socket_path=missing)
    assert done.returncode == 3
    assert str(missing) in done.stderr
    assert "systemctl start musiqued" in done.stderr
    assert "Traceback" not in done.stderr


def test_socket_discovery_order(tmp_path: Path) -> None:
    """--socket, then $MUSIQUED_SOCKET, then $XDG_RUNTIME_DIR/musiqued/musiqued.sock if it
    exists, then /run/musiqued/musiqued.sock (seen in the unreachable message)."""
    runtime = tmp_path / "runtime"
    user_socket = runtime / "musiqued" / "musiqued.sock"

    def tried(*args: str, **env: str) -> str:
        done = _ctl(*args, "status", env=_clean_env(**env))
        assert done.returncode == 3, done.stderr
        return done.stderr.split(" at ", 1)[1].split(":", 1)[0]

    assert tried("--socket", "/x/a.sock", MUSIQUED_SOCKET="/x/b.sock") == "/x/a.sock"
    assert tried(MUSIQUED_SOCKET="/x/b.sock", XDG_RUNTIME_DIR=str(runtime)) == "/x/b.sock"
    assert tried(XDG_RUNTIME_DIR=str(runtime)) == "/run/musiqued/musiqued.sock"
    user_socket.parent.mkdir(parents=True)
    user_socket.touch()
    assert tried(XDG_RUNTIME_DIR=str(runtime)) == str(user_socket)
    assert tried() == "/run/musiqued/musiqued.sock"


def test_env_socket_reaches_daemon(daemon: ThreadedWholeDaemon) -> None:
    """$MUSIQUED_SOCKET alone is enough to reach the daemon."""
    done = _ctl("--json", "status", env=_clean_env(MUSIQUED_SOCKET=str(daemon.socket_path)))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["socket"] == str(daemon.socket_path)


def test_json_prints_exactly_the_result(daemon: ThreadedWholeDaemon) -> None:
    """``--json`` prints the RPC result and nothing else."""
    for args, method in (
        (("reload",), "daemon.reload"),
        (("call", "rpc.describe"), "rpc.describe"),
    ):
        done = daemon.ctl("--json", *args)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == daemon.call(method)
    status = json.loads(daemon.ctl("--json", "status").stdout)
    assert set(status) == set(daemon.call("daemon.status"))


def test_startup_imports_nothing_heavy() -> None:
    """``python -X importtime -m musiquectl --help`` loads none of the daemon's heavy
    dependencies."""
    done = subprocess.run(
        [str(VENV_BIN / "python"), "-X", "importtime", "-m", "musiquectl", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert "Usage" in done.stdout
    imported = {
        line.split("|")[-1].strip().split(".")[0]
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "click" in imported  # the check does see imports
    assert not imported & set(HEAVY), sorted(imported & set(HEAVY))
