"""``musiquectl``: click group, socket discovery, and the one place errors become exit codes.

Exit status: 0 success, 1 the daemon answered with an error, 2 usage error, 3 the daemon
cannot be reached.
"""

from __future__ import annotations

import errno
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from musiquectl.client import Client, ClientError, DaemonError, Unreachable
from musiqued import wire

EXIT_DAEMON_ERROR = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3


@dataclass
class Context:
    socket_path: Path
    json: bool

    def client(self, timeout: float | None = 30.0) -> Client:
        return Client(self.socket_path, timeout=timeout)

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        with self.client() as client:
            return client.call(method, params)


pass_context = click.make_pass_decorator(Context)


class ReaderGone(Exception):
    """stdout's reader left (``| head``); raised instead of the EPIPE OSError."""


class _Group(click.Group):
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
    help="The daemon's socket. Default: $MUSIQUED_SOCKET, the user daemon's "
    "$XDG_RUNTIME_DIR/musiqued/musiqued.sock if it exists, else /run/musiqued/musiqued.sock.",
)
@click.option("--json", "as_json", is_flag=True, help="Print exactly the RPC result as JSON.")
@click.version_option(package_name="musique", prog_name="musiquectl")
@click.pass_context
def cli(ctx: click.Context, socket_path: str | None, as_json: bool) -> None:
    """Control musiqued, the Last.fm listening-history daemon.

    \b
    Examples:
      musiquectl status
      musiquectl --json call daemon.status
    """
    ctx.obj = Context(socket_path=wire.discover_socket(socket_path), json=as_json)


def _register() -> None:
    from musiquectl.commands import daemon, enrich, history, imports, lastfm, notify, tracker

    for module in (daemon, tracker, history, imports, lastfm, enrich, notify):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def _unreachable_hint(path: Path) -> str:
    return (
        f"musiquectl: cannot reach musiqued at {path}: {{reason}}\n"
        "Start it with `systemctl start musiqued` (or `systemctl --user start musiqued`), "
        "or point at another socket with --socket or $MUSIQUED_SOCKET."
    )


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="musiquectl", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except Unreachable as exc:
        click.echo(_unreachable_hint(exc.path).format(reason=exc.reason), err=True)
        sys.exit(EXIT_UNREACHABLE)
    except DaemonError as exc:
        kind = exc.data.get("kind") if isinstance(exc.data, dict) else None
        suffix = f" [{kind}]" if kind else ""
        click.echo(f"musiquectl: error {exc.code}{suffix}: {exc.message}", err=True)
        sys.exit(EXIT_DAEMON_ERROR)
    except ClientError as exc:
        click.echo(f"musiquectl: {exc}", err=True)
        sys.exit(EXIT_DAEMON_ERROR)
    except (BrokenPipeError, ReaderGone):
        _quiet_broken_pipe()
    except OSError as exc:
        if exc.errno == errno.EPIPE:
            _quiet_broken_pipe()
        raise
    except KeyboardInterrupt:
        sys.exit(130)


def _quiet_broken_pipe() -> None:
    """``musiquectl … | head``: the reader left; end quietly like a well-behaved filter."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.exit(0)
