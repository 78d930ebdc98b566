"""``web``: open the web page logged in, through a one-time link the daemon makes."""

from __future__ import annotations

import os
import shutil
import subprocess

import click

from musiquectl.cli import Context, pass_context
from musiquectl.output import echo, print_json


def _has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _open_in_browser(url: str) -> bool:
    """Hand ``url`` to ``xdg-open`` without waiting for the browser; False if there is none."""
    opener = shutil.which("xdg-open")
    if opener is None:
        return False
    try:
        subprocess.Popen(
            [opener, url],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError:
        return False
    return True


@click.command()
@click.option("--no-open", is_flag=True, help="Only print the link; do not start a browser.")
@pass_context
def web(ctx: Context, no_open: bool) -> None:
    """Print a one-time link that opens the web page logged in, and open it when there is
    a display ($DISPLAY or $WAYLAND_DISPLAY) and xdg-open.

    The link works once, within two minutes, and gives the browser a session cookie.
    Scripts use the token instead (Authorization: Bearer; see docs/http-api.md).

    \b
    Examples:
      musiquectl web
      musiquectl web --no-open     # e.g. over SSH: paste the link into a local browser
    """
    answer = ctx.call("http.login_url")
    if ctx.json:
        print_json(answer)
        return
    url = str(answer["url"])
    echo(url)
    if not no_open and _has_display() and _open_in_browser(url):
        echo("opened in your browser (the link works once)", err=True)


COMMANDS = (web,)
