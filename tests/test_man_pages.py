"""The man pages: made from the same sources as ``--help`` and ``etc/musiqued.toml``, up to
date with them, and rendered by groff and man without a warning."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT

MAN = ROOT / "man"
PAGES = ("musiquectl.1", "musiqued.8", "musiqued.toml.5")


def test_committed_pages_are_what_the_generator_writes(tmp_path: Path) -> None:
    """``make man`` would change nothing: the pages say what ``--help`` says today."""
    subprocess.run([sys.executable, str(MAN / "generate.py"), str(tmp_path)], check=True)
    for page in PAGES:
        assert (tmp_path / page).read_text() == (MAN / page).read_text(), (
            f"man/{page} is stale: run `make man`"
        )


@pytest.mark.parametrize("page", PAGES)
def test_each_page_renders_without_a_warning(page: str) -> None:
    """``groff -man -ww`` reports no warning, and ``man -l`` shows the page's name and, for
    the commands, every command or key it documents."""
    checked = subprocess.run(
        ["groff", "-man", "-ww", "-Tutf8", "-z", str(MAN / page)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0
    assert checked.stderr == ""
    shown = subprocess.run(
        ["man", "-l", str(MAN / page)],
        capture_output=True,
        text=True,
        env={**os.environ, "MANWIDTH": "80", "MAN_KEEP_FORMATTING": "0", "PAGER": "cat"},
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stderr == ""
    text = re.sub(".\b", "", shown.stdout)  # bold and underline are overstrikes here
    name = page.rsplit(".", 1)[0]
    assert text.startswith(name.upper())
    if page == "musiquectl.1":
        for command in ("status", "import", "history", "stats", "export", "jobs show"):
            assert f"\n   {command}\n" in text, command
    if page == "musiqued.toml.5":
        assert "interval_seconds = 120.0" in text
