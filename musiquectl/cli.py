"""``musiquectl``: click group, socket discovery, and the one place errors become exit codes.

Exit status: 0 success, 1 the daemon answered with an error or a job shown or followed did
not succeed, 2 usage error (found before the daemon is asked), 3 the daemon cannot be
reached, 130 interrupted (Ctrl-C) where Ctrl-C is not the normal way to stop.
"""

from __future__ import annotations

import errno
import importlib
import os
import sys
from pathlib import Path
from typing import IO, Any, NoReturn, cast

import click

from musiquectl.client import Client, ClientError, DaemonError, Unreachable
from musiquectl.errors import JobUnsuccessful, ReaderGone
from musiquectl.output import VisibleStderr, echo, show_headers, warn
from musiqued import wire

EXIT_DAEMON_ERROR = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_INTERRUPTED = 130


class Context:
    """What every command gets: where the daemon is and whether to print raw JSON.
    (A plain class: ``dataclasses`` costs musiquectl's start-up a few milliseconds.)"""

    __slots__ = ("json", "socket_path")

    def __init__(self, socket_path: Path, json: bool) -> None:
        self.socket_path = socket_path
        self.json = json

    def client(self, timeout: float | None = 30.0) -> Client:
        return Client(self.socket_path, timeout=timeout)

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        with self.client() as client:
            return client.call(method, params)


pass_context = click.make_pass_decorator(Context)


COMMAND_MODULES = {
    "status": "daemon",
    "reload": "daemon",
    "call": "daemon",
    "tracker": "tracker",
    "watch": "tracker",
    "history": "history",
    "stats": "history",
    "export": "export",
    "import": "imports",
    "jobs": "jobs",
    "verify": "verify",
    "lastfm": "lastfm",
    "enrich": "enrich",
    "albums": "enrich",
    "notify": "notify",
    "web": "web",
}
"""Each command and the module under ``musiquectl.commands`` that defines it: a call loads
only its own module (``musiquectl --json status`` does not pay for ``export``)."""


class _Group(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMAND_MODULES)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMAND_MODULES.get(cmd_name)
        if module is None:
            return None
        commands: tuple[click.Command, ...] = importlib.import_module(
            f"musiquectl.commands.{module}"
        ).COMMANDS
        return next(c for c in commands if c.name == cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        # click's main() turns an EPIPE OSError into a bare exit 1: surface it to main().
        try:
            return super().invoke(ctx)
        except OSError as exc:
            if exc.errno == errno.EPIPE:
                raise ReaderGone from None
            raise


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--socket",
    "socket_path",
    metavar="PATH",
    type=click.Path(dir_okay=False, readable=False),
    help="The daemon's socket. Default: $MUSIQUED_SOCKET, the user daemon's "
    "$XDG_RUNTIME_DIR/musiqued/musiqued.sock if it exists, else /run/musiqued/musiqued.sock.",
)
@click.option("--json", "as_json", is_flag=True, help="Print exactly the RPC result as JSON.")
@click.option(
    "--no-header",
    is_flag=True,
    help="Tables without their header line (and title): rows only, for scripts.",
)
@click.version_option(package_name="musique", prog_name="musiquectl")
@click.pass_context
def cli(ctx: click.Context, socket_path: str | None, as_json: bool, no_header: bool) -> None:
    """Control musiqued, the Last.fm listening-history daemon.

    \b
    Examples:
      musiquectl status
      musiquectl --json call daemon.status
    """
    show_headers(not no_header)
    ctx.obj = Context(socket_path=wire.discover_socket(socket_path), json=as_json)


def main(argv: list[str] | None = None) -> None:
    try:
        code = cli.main(args=argv, prog_name="musiquectl", standalone_mode=False)
    except click.exceptions.Abort:
        echo(err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        exc.show(file=cast("IO[str]", VisibleStderr()))
        sys.exit(exc.exit_code)
    except Unreachable as exc:
        warn(f"cannot reach musiqued at {exc.path}: {exc.reason}")
        echo(exc.advice, err=True)
        sys.exit(EXIT_UNREACHABLE)
    except DaemonError as exc:
        kind = exc.data.get("kind") if isinstance(exc.data, dict) else None
        suffix = f" [{kind}]" if kind else ""
        warn(f"error {exc.code}{suffix}: {exc.message}")
        sys.exit(EXIT_DAEMON_ERROR)
    except JobUnsuccessful as exc:
        warn(exc.line)
        sys.exit(EXIT_DAEMON_ERROR)
    except ClientError as exc:
        warn(str(exc))
        sys.exit(EXIT_DAEMON_ERROR)
    except (BrokenPipeError, ReaderGone):
        _quiet_broken_pipe()
    except OSError as exc:
        if exc.errno == errno.EPIPE:
            _quiet_broken_pipe()
        raise
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    # click returns the status of an explicit exit (--help, --version, ctx.exit) unraised.
    sys.exit(code if isinstance(code, int) else 0)


def _quiet_broken_pipe() -> NoReturn:
    """``musiquectl … | head``: the reader left; end quietly like a well-behaved filter."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.exit(0)
