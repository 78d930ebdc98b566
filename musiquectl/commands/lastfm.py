"""``lastfm login``: web auth so the daemon may read a private profile."""

from __future__ import annotations

import sys

import click

from musiquectl.cli import Context, pass_context
from musiquectl.output import echo, print_json


@click.group()
def lastfm() -> None:
    """Last.fm account commands."""


@lastfm.command()
@click.option(
    "--no-wait",
    is_flag=True,
    help="Print the URL and token and stop; finish later with --token.",
)
@click.option("--token", metavar="TOKEN", help="Finish a login started with --no-wait.")
@pass_context
def login(ctx: Context, no_wait: bool, token: str | None) -> None:
    """Let musiqued read a private profile: allow access in a browser, then press Enter.

    The daemon keeps the session key (never printed); recent tracks are then signed with it.

    \b
    Examples:
      musiquectl lastfm login
      musiquectl lastfm login --no-wait        # scripts: prints URL and token
      musiquectl lastfm login --token TOKEN    # ... then finishes
    """
    if token is None:
        started = ctx.call("lastfm.auth_url")
        token = str(started["token"])
        if no_wait:
            if ctx.json:
                print_json(started)
            else:
                echo("Open this URL and allow access:")
                echo(f"  {started['url']}")
                echo(f"Then run: musiquectl lastfm login --token {token}")
            return
        echo("Open this URL in a browser and allow access:", err=ctx.json)
        echo(f"  {started['url']}", err=ctx.json)
        echo("Press Enter once access is allowed (Ctrl-C to give up)...", err=ctx.json)
        if not sys.stdin.readline():
            raise click.ClickException("no answer on standard input; nothing was changed")
    result = ctx.call("lastfm.auth_complete", {"token": token})
    if ctx.json:
        print_json(result)
    else:
        echo(f"Logged in to Last.fm as {result['username']}; the daemon keeps the session.")


COMMANDS = (lastfm,)
