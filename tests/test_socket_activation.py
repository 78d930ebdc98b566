"""Socket activation: systemd (here ``systemd-socket-activate``) binds, the daemon serves.

The activated socket is used as-is wherever the config points, answered from the first
connection (the one that triggered the start), and left in place at exit for the next
activation.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from musiqued.app.systemd import listen_sockets, unix_stream_socket
from tests.support import VENV_BIN, base_sections, run_ctl, write_config

ACTIVATE = shutil.which("systemd-socket-activate")


@pytest.fixture
def activated(workdir: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path, Path]]:
    """musiqued under systemd-socket-activate on ``act.sock``; the config names another path."""
    if ACTIVATE is None:
        pytest.skip("systemd-socket-activate is not installed")
    config = write_config(workdir / "musiqued.toml", base_sections(workdir))
    socket_path = workdir / "act.sock"
    log = (workdir / "musiqued.log").open("wb")
    process = subprocess.Popen(
        [
            ACTIVATE,
            "--listen",
            str(socket_path),
            "--fdname",
            "control",
            "-E",
            "PATH",
            str(VENV_BIN / "musiqued"),
            "--config",
            str(config),
            "--log-target",
            "json",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    deadline = time.monotonic() + 10
    while not socket_path.exists():
        assert time.monotonic() < deadline, "systemd-socket-activate did not bind"
        time.sleep(0.02)
    yield process, socket_path, workdir / "d.sock"
    if process.poll() is None:
        process.kill()
        process.wait(10)


def test_activated_daemon_answers_musiquectl_status(
    activated: tuple[subprocess.Popen[bytes], Path, Path], workdir: Path
) -> None:
    """The first ``musiquectl status`` starts the daemon and is answered on the activated
    socket; the daemon reports that socket, binds none of its own, and leaves the
    socket file in place when it stops."""
    process, socket_path, configured = activated
    status = run_ctl("--json", "status", socket_path=socket_path, timeout=60)
    assert status.returncode == 0, status.stderr + (workdir / "musiqued.log").read_text()
    result = json.loads(status.stdout)
    assert result["pid"] == process.pid
    assert result["socket"] == str(socket_path)
    assert not configured.exists()

    human = run_ctl("status", socket_path=socket_path)
    assert human.returncode == 0
    assert str(socket_path) in human.stdout

    process.send_signal(signal.SIGTERM)
    assert process.wait(15) == 0
    assert socket_path.exists()
    records = [
        json.loads(line)
        for line in (workdir / "musiqued.log").read_text().splitlines()
        if line.startswith("{")
    ]
    ready = next(r for r in records if r.get("event") == "musiqued ready")
    assert ready["activated"] is True


def test_listen_fds_for_another_pid_are_ignored() -> None:
    """LISTEN_FDS meant for a parent (LISTEN_PID differs) hands nothing over."""
    environ = {"LISTEN_PID": str(os.getpid() + 1), "LISTEN_FDS": "1"}
    assert listen_sockets(environ) == []


def test_listen_fds_names_and_unix_stream_choice(workdir: Path) -> None:
    """The passed fds start at 3; the Unix stream one is chosen, the others left alone."""
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stream.bind(str(workdir / "s.sock"))
    script = (
        "import os, json\n"
        "from musiqued.app.systemd import listen_sockets, unix_stream_socket\n"
        "found = listen_sockets()\n"
        "chosen = unix_stream_socket(found)\n"
        "print(json.dumps({'found': len(found), 'chosen': chosen.getsockname(),"
        " 'left': [k for k in os.environ if k.startswith('LISTEN_')]}))\n"
    )
    # The child gets udp as fd 3 and the Unix socket as fd 4, the way systemd passes them.
    u, s = udp.fileno(), stream.fileno()
    result = subprocess.run(
        [
            "/bin/bash",
            "-c",
            f'exec 3>&{u} 4>&{s} {u}>&- {s}>&-; LISTEN_PID=$$ exec "{VENV_BIN / "python"}" -c "$0"',
            script,
        ],
        env={**os.environ, "LISTEN_FDS": "2", "LISTEN_FDNAMES": "metrics:control"},
        pass_fds=(u, s),
        capture_output=True,
        text=True,
        check=False,
    )
    udp.close()
    stream.close()
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data == {"found": 2, "chosen": str(workdir / "s.sock"), "left": []}
    assert unix_stream_socket([]) is None
