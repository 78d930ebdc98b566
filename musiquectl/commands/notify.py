"""``musiquectl notify``: desktop notifications of new scrobbles and ended imports.

Meant to run in a person's graphical session (``systemd/user/musique-notify.service``): it
follows the daemon's events and sends each one to the session bus's
``org.freedesktop.Notifications`` (the freedesktop notification spec). Strings from Last.fm
go as plain text: the body is escaped, since servers may read it as markup (``<b>``,
``<a href>``, ``<img>``), and control characters are shown as symbols. The album's image,
when the enrichment found one, is fetched once into ``$XDG_CACHE_HOME/musique/covers`` and
passed as ``image-path`` (servers take local files only).

jeepney (pure Python D-Bus) is imported here only, so the other commands start as fast
as before.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from musiquectl.cli import Context, pass_context
from musiquectl.client import DaemonError
from musiquectl.output import number, warn
from musiquectl.text import visible
from musiqued import wire

if TYPE_CHECKING:
    from jeepney.io.blocking import DBusConnection

APP_NAME = "musiqued"
NOTIFICATIONS = "org.freedesktop.Notifications"
NOTIFICATIONS_PATH = "/org/freedesktop/Notifications"
ENDED = frozenset({"done", "failed", "cancelled"})
COVER_MAX_BYTES = 2 * 1024 * 1024
COVER_TIMEOUT_S = 5.0


def plain(text: Any) -> str:
    """Control characters and bidi overrides made visible (␛, <U+202E>), never obeyed."""
    return visible("" if text is None else str(text))


def markup_escaped(text: Any) -> str:
    """For a notification body: plain text that no server can read as markup."""
    return plain(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def scrobble_notification(listen: dict[str, Any]) -> tuple[str, str]:
    """(summary, body): the title, then the artist and album."""
    body = plain(listen.get("artist"))
    if listen.get("album"):
        body += f" — {plain(listen['album'])}"
    return plain(listen.get("title")) or "(untitled)", markup_escaped(body)


def job_notification(job: dict[str, Any]) -> tuple[str, str]:
    """(summary, body) for an import that ended: the original's figures, or the error."""
    outcome = {"done": "finished", "failed": "failed", "cancelled": "cancelled"}[job["state"]]
    summary = f"Import #{job['job_id']} {outcome}"
    figures = (
        f"{number(job.get('tracks_imported', 0))} imported, {number(job.get('tracks_skipped', 0))} skipped, "
        f"{number(job.get('tracks_errors', 0))} errors; "
        f"{number(job.get('total_scrobbles') or 0)} scrobbles on Last.fm"
    )
    lines = [figures, job["error"]] if job.get("error") else [figures]
    return summary, "\n".join(markup_escaped(line) for line in lines)


def cover_file(url: str, cache: Path) -> Path | None:
    """The image at ``url`` as a local file (fetched once), or None if it cannot be had."""
    if not url.startswith(("https://", "http://")):
        return None
    path = cache / hashlib.sha256(url.encode()).hexdigest()
    if path.exists():
        return path
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=COVER_TIMEOUT_S) as response:  # noqa: S310 (scheme checked)
            if not response.headers.get_content_type().startswith("image/"):
                return None
            data = response.read(COVER_MAX_BYTES + 1)
    except (OSError, ValueError):
        return None
    if len(data) > COVER_MAX_BYTES:
        return None
    cache.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part")
    partial.write_bytes(data)
    partial.replace(path)
    return path


def cover_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "musique" / "covers"


class Notifier:
    """A connection to the session bus's notification server."""

    def __init__(self, connection: DBusConnection, expire_ms: int) -> None:
        self._connection = connection
        self._expire_ms = expire_ms

    @classmethod
    def open(cls, expire_ms: int) -> Notifier:
        try:
            from jeepney.io.blocking import open_dbus_connection
        except ImportError:
            raise click.ClickException(
                "musiquectl notify needs jeepney, in the notify extra: "
                "pip install 'musique[notify]' (make install includes it)"
            ) from None

        if not os.environ.get("DBUS_SESSION_BUS_ADDRESS") and not os.environ.get("XDG_RUNTIME_DIR"):
            raise click.ClickException(
                "no session D-Bus: run this inside your desktop session "
                "(systemctl --user start musique-notify), where DBUS_SESSION_BUS_ADDRESS is set"
            )
        try:
            return cls(open_dbus_connection(bus="SESSION"), expire_ms)
        except (OSError, KeyError, ValueError) as exc:
            raise click.ClickException(f"cannot reach the session D-Bus: {exc}") from None

    def send(self, summary: str, body: str, image: Path | None = None, urgency: int = 0) -> str:
        """Show one notification; returns "" or what went wrong, in words."""
        from jeepney import DBusAddress, MessageType, new_method_call

        hints: dict[str, tuple[str, Any]] = {"urgency": ("y", urgency)}
        if image is not None:
            hints["image-path"] = ("s", image.as_uri())
        address = DBusAddress(NOTIFICATIONS_PATH, bus_name=NOTIFICATIONS, interface=NOTIFICATIONS)
        message = new_method_call(
            address,
            "Notify",
            "susssasa{sv}i",
            (APP_NAME, 0, "", summary, body, [], hints, self._expire_ms),
        )
        try:
            reply = self._connection.send_and_get_reply(message, timeout=10)
        except TimeoutError:
            return "the notification server did not answer"
        if reply.header.message_type == MessageType.error:
            return f"the notification server refused: {' '.join(map(str, reply.body))}"
        return ""

    def close(self) -> None:
        self._connection.close()


def _album_image(ctx: Context, listen: dict[str, Any], cache: Path) -> Path | None:
    """The album's cover, if the daemon has one; None whatever the names hold."""
    album, artist = listen.get("album"), listen.get("artist")
    if not album or not artist:
        return None
    # A search is by substring, and its text is bounded: a name's beginning finds it, and
    # the exact comparison below picks it out.
    search = {
        "query": str(album)[: wire.MAX_QUERY_CHARS],
        "artist": str(artist)[: wire.MAX_QUERY_CHARS],
        "limit": 20,
    }
    try:
        albums = ctx.call("albums.list", search)
    except DaemonError as exc:
        warn(f"no cover for this scrobble: {exc.message}")
        return None
    for found in albums:
        same = str(found.get("title", "")).casefold() == str(album).casefold()
        if same and str(found.get("artist", "")).casefold() == str(artist).casefold():
            url = found.get("image_spotify") or found.get("image_lastfm")
            return cover_file(url, cache) if url else None
    return None


@click.command()
@click.option("--no-scrobbles", is_flag=True, help="Do not announce new scrobbles.")
@click.option("--no-imports", is_flag=True, help="Do not announce imports that end.")
@click.option(
    "--no-covers", is_flag=True, help="Do not fetch album images (they come from Last.fm/Spotify)."
)
@click.option(
    "--expire",
    "expire_ms",
    type=click.IntRange(min=-1),
    default=-1,
    show_default=True,
    help="How long a notification stays, in ms (-1: the server's choice).",
)
@pass_context
def notify(
    ctx: Context, no_scrobbles: bool, no_imports: bool, no_covers: bool, expire_ms: int
) -> None:
    """Desktop notifications (session D-Bus) of new scrobbles and imports that end.

    Runs until Ctrl-C or until the daemon goes away (exit 3; the user unit restarts it).

    \b
    Examples:
      musiquectl notify
      systemctl --user enable --now musique-notify.service
    """
    notifier = Notifier.open(expire_ms)
    topics = [t for t, off in (("scrobble", no_scrobbles), ("job", no_imports)) if not off]
    cache = cover_cache()
    announced: set[int] = set()
    try:
        with ctx.client() as client:
            client.call("events.subscribe", {"topics": topics})
            warn(f"notifying {', '.join(topics)} events")
            for event in client.notifications():
                data = event.get("data") or {}
                topic = event.get("topic")
                if topic == "scrobble":
                    image = None if no_covers else _album_image(ctx, data, cache)
                    problem = notifier.send(*scrobble_notification(data), image=image)
                elif (
                    topic == "job"
                    and data.get("kind") == "import"
                    and data.get("state") in ENDED
                    and data.get("job_id") not in announced
                ):
                    announced.add(data["job_id"])
                    urgency = 1 if data["state"] == "done" else 2
                    problem = notifier.send(*job_notification(data), urgency=urgency)
                else:
                    continue
                if problem:
                    warn(problem)
    except KeyboardInterrupt:
        return
    finally:
        notifier.close()


COMMANDS = (notify,)
