"""The optional dependencies: without the ``notify`` extra, ``musiquectl notify`` says what to
install; without the ``uvloop`` extra, the daemon and the simulators run on asyncio's loop."""

from __future__ import annotations

import subprocess
import sys

BLOCKED = "import sys\nfor name in {names}: sys.modules[name] = None  # as if not installed\n"


def _python(code: str, *blocked: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BLOCKED.format(names=list(blocked)) + code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_notify_without_jeepney_says_which_extra_to_install() -> None:
    """``musiquectl notify`` without jeepney: exit 1, one line naming the notify extra."""
    done = _python(
        "from musiquectl.cli import main\nmain(['--socket', '/nonexistent.sock', 'notify'])",
        "jeepney",
        "jeepney.io",
        "jeepney.io.blocking",
    )
    assert done.returncode == 1, done.stderr
    assert done.stderr == (
        "Error: musiquectl notify needs jeepney, in the notify extra: "
        "pip install 'musique[notify]' (make install includes it)\n"
    )


def test_without_uvloop_the_daemon_and_simulators_use_asyncio() -> None:
    """The daemon's and the simulators' runners fall back to ``asyncio.run``."""
    done = _python(
        "import asyncio\n"
        "from musiqued.app.cli import _run\n"
        "from musiqued.sim.server import run\n"
        "async def loop_kind() -> str:\n"
        "    return type(asyncio.get_running_loop()).__module__\n"
        "print(_run(loop_kind()), run(loop_kind()))\n",
        "uvloop",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["asyncio.unix_events", "asyncio.unix_events"]
