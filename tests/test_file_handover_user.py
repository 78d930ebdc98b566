"""The file handover to a daemon that runs as another user (as under systemd): it imports a
file that only the caller may read, through the descriptor the caller hands over."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from musiquectl.client import ClientError
from tests import interchange_files as files
from tests.support import DaemonProcess, base_sections, short_tmp, write_config

NOBODY = 65534


@pytest.fixture
def nobody_daemon() -> Iterator[DaemonProcess]:
    """musiqued as nobody (``tests.nobody_musiqued``) in a directory nobody owns; root (the
    test, the caller) is let in by ``allowed_uids``."""
    if os.geteuid() != 0:
        pytest.skip("running the daemon as another user needs root")
    with short_tmp() as workdir:
        os.chown(workdir, NOBODY, NOBODY)
        config = write_config(
            workdir / "musiqued.toml", base_sections(workdir, daemon={"allowed_uids": [0]})
        )
        config.chmod(0o644)
        daemon = DaemonProcess(workdir, config, workdir / "d.sock")
        with daemon.log_path.open("ab") as log:
            # No NOTIFY_SOCKET: nobody may not write to one the test (root) made, so the
            # test asks the socket until it answers.
            daemon.launch(
                [sys.executable, "-m", "tests.nobody_musiqued", "--config", str(config)],
                env={"NOTIFY_SOCKET": ""},
                stdout=log,
            )
        try:
            daemon.wait_until(lambda: _serves(daemon))
            yield daemon
        finally:
            daemon.stop()
            daemon.kill()


def _serves(daemon: DaemonProcess) -> bool:
    assert daemon.proc is not None
    if daemon.proc.poll() is not None:
        raise RuntimeError(f"musiqued exited:\n{daemon.logs()[-3000:]}")
    try:
        daemon.call("daemon.status")
    except ClientError:
        return False
    return True


def test_a_daemon_running_as_nobody_imports_a_file_only_the_caller_may_read(
    tmp_path: Path, nobody_daemon: DaemonProcess
) -> None:
    """The file is root's, mode 0600, in a directory only root may enter; the daemon runs as
    nobody; musiquectl (root) opens it and hands it over: the listens are stored."""
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    dump = private / "Streaming_History_Audio_2020.json"
    dump.write_bytes(
        files.json_file([files.spotify_play(1_600_000_000 + i * 400) for i in range(3)])
    )
    dump.chmod(0o600)
    assert nobody_daemon.proc is not None
    status = Path(f"/proc/{nobody_daemon.proc.pid}/status").read_text()
    assert f"Uid:\t{NOBODY}\t{NOBODY}\t{NOBODY}\t{NOBODY}" in status
    done = nobody_daemon.ctl("--json", "import-file", str(dump))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["result"]["added"] == 3
    listens = nobody_daemon.call("history.list", {})["listens"]
    assert [(x["source"], x["origin"]) for x in listens] == [("file", "spotify")] * 3
