"""``musiquectl``: click group, socket discovery, and the one place errors become exit codes.

Exit status: 0 success, 1 the daemon answered with an error or a job shown or followed did
not succeed, 2 usage error (found before the daemon is asked), 3 the daemon cannot be
reached, 75 a job followed was paused by the daemon itself (no space left), 130 interrupted
(Ctrl-C) where Ctrl-C is not the normal way to stop.
"""

from __future__ import annotations

import errno
import importlib
import os
import sys
from pathlib import Path
from typing import IO, Any, NoReturn, cast

import click

from musiquectl import interrupt
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

    __slots__ = ("json", "socket_path", "verbose")

    def __init__(self, socket_path: Path, json: bool, verbose: bool = False) -> None:
        self.socket_path = socket_path
        self.json = json
        self.verbose = verbose

    def client(self, timeout: float | None = 30.0) -> Client:
        return Client(self.socket_path, timeout=timeout)

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        with self.client() as client:
            return client.call(method, params)


pass_context = click.make_pass_decorator(Context)


GLOBAL_FLAGS = frozenset({"--json", "--no-header", "-v", "--verbose"})
GLOBAL_VALUED = frozenset({"--socket"})
"""The group's options, also accepted after the subcommand (``musiquectl albums X --json``)."""


def split_global_options(args: list[str]) -> tuple[list[str], list[str]]:
    """The group's options wherever they were typed (up to a ``--``, after which
    everything is an argument), and the rest in order."""
    hoisted: list[str] = []
    rest: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            rest.extend(args[index:])
            break
        name = arg.partition("=")[0]
        if arg in GLOBAL_FLAGS:
            hoisted.append(arg)
        elif name in GLOBAL_VALUED:
            hoisted.append(arg)
            if "=" not in arg and index + 1 < len(args):
                index += 1
                hoisted.append(args[index])
        else:
            rest.append(arg)
        index += 1
    return hoisted, rest


def hoist_global_options(args: list[str]) -> list[str]:
    """``args`` with the group's options moved before the subcommand."""
    hoisted, rest = split_global_options(args)
    return hoisted + rest


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
    "import-file": "files",
    "jobs": "jobs",
    "verify": "verify",
    "lastfm": "lastfm",
    "enrich": "enrich",
    "albums": "enrich",
    "notify": "notify",
    "web": "web",
    "mirror": "mirror",
    "top": "library",
    "search": "library",
    "album": "library",
    "artist": "library",
    "year": "library",
}
"""Each command and the module under ``musiquectl.commands`` that defines it: a call loads
only its own module (``musiquectl --json status`` does not pay for ``export``)."""


class _Group(click.Group):
    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_options(args))

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
@click.option(
    "-v", "--verbose", is_flag=True, help="Show errors with their JSON-RPC code and kind."
)
@click.version_option(package_name="musique", prog_name="musiquectl")
@click.pass_context
def cli(
    ctx: click.Context, socket_path: str | None, as_json: bool, no_header: bool, verbose: bool
) -> None:
    """Control musiqued, the Last.fm listening-history daemon.

    --socket, --json, --no-header and -v may also come after the command.

    \b
    Examples:
      musiquectl status
      musiquectl history -n 5 --json
      musiquectl --json call daemon.status
    """
    show_headers(not no_header)
    ctx.obj = Context(socket_path=wire.discover_socket(socket_path), json=as_json, verbose=verbose)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    interrupt.install()
    try:
        code = cli.main(args=args, prog_name="musiquectl", standalone_mode=False)
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
        warn(_daemon_error(exc, verbose=_with_codes(args)))
        sys.exit(EXIT_DAEMON_ERROR)
    except JobUnsuccessful as exc:
        warn(exc.line)
        sys.exit(exc.exit_code)
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


def _with_codes(args: list[str]) -> bool:
    """``-v`` or ``--json`` given, wherever typed (the error outlives the command's context)."""
    hoisted, _ = split_global_options(args)
    return bool({"-v", "--verbose", "--json"} & set(hoisted))


def _daemon_error(exc: DaemonError, *, verbose: bool) -> str:
    """The daemon's message; with its JSON-RPC code and kind for ``-v`` and ``--json``."""
    if not verbose:
        return exc.message
    kind = exc.data.get("kind") if isinstance(exc.data, dict) else None
    suffix = f" [{kind}]" if kind else ""
    return f"error {exc.code}{suffix}: {exc.message}"


def _quiet_broken_pipe() -> NoReturn:
    """``musiquectl … | head``: the reader left; end quietly like a well-behaved filter."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.exit(0)
