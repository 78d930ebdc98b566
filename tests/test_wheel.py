"""The distribution as a user gets it: the wheel built by ``python -m build``, installed into
a clean venv from the lock file (hashes checked), runs its three commands and carries its
static files and man pages."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT

LEFT_OUT = (
    ".git",
    ".venv",
    ".hypothesis",
    "build",
    "*.egg-info",
    "tests",
    "__pycache__",
    ".*_cache",
    "docs",
)
"""What the build does not read, and what other tests may be writing meanwhile."""
STATIC = ("index.html", "app.js", "style.css", "login.html", "login.js", "favicon.svg")
MAN_PAGES = ("man1/musiquectl.1", "man5/musiqued.toml.5", "man8/musiqued.8")


def _run(*command: str | Path, timeout: float = 120) -> str:
    done = subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.timeout(240)
def test_the_wheel_installs_from_the_lock_and_runs(tmp_path: Path) -> None:
    """Built from a copy of the sources (the work tree is left alone), installed with
    ``pip install --require-hashes -r requirements.lock`` then the wheel without dependencies:
    ``musiqued --version``, ``musiquectl --help`` and ``musique-sim --help`` run, the
    Settings page's files are in the package and the man pages in the venv's share/man."""
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*LEFT_OUT))
    dist = tmp_path / "dist"
    _run(sys.executable, "-m", "build", "--wheel", "--outdir", dist, source)
    (wheel,) = dist.glob("musique-*.whl")

    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv)
    pip = venv / "bin" / "pip"
    _run(pip, "install", "-q", "--require-hashes", "-r", ROOT / "requirements.lock")
    _run(pip, "install", "-q", "--no-deps", wheel)

    assert _run(venv / "bin" / "musiqued", "--version").startswith("musiqued, version ")
    assert _run(venv / "bin" / "musiquectl", "--help").startswith("Usage: musiquectl ")
    assert _run(venv / "bin" / "musique-sim", "--help").startswith("Usage: musique-sim ")
    (package,) = (venv / "lib").glob("python3.*/site-packages/musiqued")
    for name in STATIC:
        assert (package / "http" / "static" / name).is_file(), name
    for page in MAN_PAGES:
        installed = venv / "share" / "man" / page
        assert installed.read_text() == (ROOT / "man" / Path(page).name).read_text(), page
