"""``musiqued``: the daemon's command line."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from musiqued import __version__
from musiqued.app.config import config_source, load_config
from musiqued.errors import (
    AlreadyRunningError,
    ConfigError,
    MusiqueError,
    StorageFullError,
    StoreError,
)

if TYPE_CHECKING:
    from musiqued.rpc.table import Method

EX_CONFIG = 78
"""A human must fix something (configuration, database file, socket path): systemd's
``RestartPreventExitStatus=`` lists it, so a restart loop cannot hide it."""
EX_TEMPFAIL = 75
"""Another musiqued holds the database or the socket; also in ``RestartPreventExitStatus=``."""


def exit_status(exc: MusiqueError) -> int:
    """The process exit status for an error that stops the daemon."""
    if isinstance(exc, AlreadyRunningError):
        return EX_TEMPFAIL
    if isinstance(exc, StorageFullError):
        return 1  # space may come back: let systemd try again
    if isinstance(exc, ConfigError | StoreError):
        return EX_CONFIG
    return 1


def _fail(message: str, status: int) -> None:
    click.echo(f"musiqued: {message}", err=True)
    sys.exit(status)


def command(extra_methods: Sequence[Method] = ()) -> click.Command:
    """The ``musiqued`` command; ``extra_methods`` join the RPC table (tests add theirs)."""

    @click.command(context_settings={"help_option_names": ["-h", "--help"]})
    @click.option(
        "--config",
        "config_path",
        # click checks nothing (no dir_okay=False, no readable check): it would exit 2 with
        # its usage text, and systemd restart it every 5 s. A path that is missing, a
        # directory or unreadable is a config error: one line, exit 78, as $MUSIQUED_CONFIG.
        type=click.Path(path_type=Path, readable=False),
        help="Configuration file (TOML or JSON). Default: $MUSIQUED_CONFIG, "
        "/etc/musique/musiqued.toml for root, else $XDG_CONFIG_HOME/musique/musiqued.toml.",
    )
    @click.option(
        "--check-config",
        is_flag=True,
        help="Validate the configuration, say which file was read, print the configuration "
        "with secrets masked, and exit.",
    )
    @click.option(
        "--log-target",
        type=click.Choice(["auto", "console", "logfmt", "json", "journal"]),
        default="auto",
        show_default=True,
        help="Where logs go; auto: the journal when stderr is connected to it, else a console "
        "format on a terminal and logfmt otherwise.",
    )
    @click.option(
        "--log-level",
        type=click.Choice(["debug", "info", "warning", "error"]),
        default="info",
        show_default=True,
    )
    @click.version_option(__version__, prog_name="musiqued")
    def main(config_path: Path | None, check_config: bool, log_target: str, log_level: str) -> None:
        """Keep a complete Last.fm listening history; controlled by musiquectl."""
        try:
            config = load_config(config_path)
        except ConfigError as exc:
            _fail(f"config error: {exc.message}", EX_CONFIG)
            return
        if check_config:
            click.echo(f"musiqued: {config_source(config_path)}", err=True)
            click.echo(json.dumps(config.masked(), indent=2))
            return

        from musiqued.app.logs import JobLogs, configure_logging, register_config_secrets

        job_logs = JobLogs()
        configure_logging(log_target, log_level, job_logs=job_logs)  # type: ignore[arg-type]
        register_config_secrets(config)
        from musiqued.app.daemon import Daemon
        from musiqued.app.systemd import Notifier, listen_sockets, unix_stream_socket

        inherited = unix_stream_socket(listen_sockets())
        daemon = Daemon(
            config,
            config_path=config_path,
            notifier=Notifier(),
            inherited_socket=inherited,
            extra_methods=extra_methods,
            job_logs=job_logs,
        )
        try:
            status = _run(daemon.run())
        except MusiqueError as exc:
            _fail(exc.message, exit_status(exc))
            return
        sys.exit(status)

    return main


main = command()


def _run(coro: object) -> int:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)  # type: ignore[arg-type]
    return uvloop.run(coro)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
