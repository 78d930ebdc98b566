"""musiquectl's help and shell completion, for every command of every area."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import click
from click.testing import CliRunner

from musiquectl.cli import cli
from tests.support import VENV_BIN


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        assert command is not None, name
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name)


def test_every_command_help_has_an_example() -> None:
    """``musiquectl … COMMAND --help`` shows an example for every command (its click
    command run in the test's process: help is click's alone)."""
    missing = []
    for path in _commands(cli):
        shown = CliRunner().invoke(cli, [*path, "--help"], prog_name="musiquectl")
        assert shown.exit_code == 0, shown.output
        if "Example" not in shown.stdout or f"musiquectl {' '.join(path)}" not in shown.stdout:
            missing.append(" ".join(path))
    assert missing == []


def test_bash_completion() -> None:
    """click's completion: the bash script, then commands and option values completed."""
    ctl = str(VENV_BIN / "musiquectl")
    script = subprocess.run(
        [ctl],
        env={**os.environ, "_MUSIQUECTL_COMPLETE": "bash_source"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert script.returncode == 0
    assert "_musiquectl_completion" in script.stdout

    def complete(words: str, cword: int) -> list[str]:
        env = {
            **os.environ,
            "_MUSIQUECTL_COMPLETE": "bash_complete",
            "COMP_WORDS": words,
            "COMP_CWORD": str(cword),
        }
        done = subprocess.run(
            [ctl], env=env, capture_output=True, text=True, timeout=30, check=False
        )
        return [line.split(",", 1)[1] for line in done.stdout.splitlines()]

    assert complete("musiquectl exp", 1) == ["export"]
    assert complete("musiquectl export --format ", 3) == [
        "csv",
        "json",
        "jsonl",
        "listenbrainz",
        "maloja",
    ]
    assert "--no-repair" in complete("musiquectl verify --", 2)
