"""Hostile names, as strangers write music metadata, and what ``musiquectl`` must show for them.

Each entry: the raw string (stored and exported unchanged, exact in ``--json``) and the
text a person must see instead, on a terminal and piped. The list is the closing note's
"hostile inputs tested".
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import orjson
from aiohttp import web

from musiqued.sim.lastfm import API_PATH
from musiqued.sim.server import ThreadedServer


@dataclass(frozen=True)
class Hostile:
    name: str
    raw: str
    shown: str


HOSTILE = (
    Hostile("SGR colour", "\x1b[31mRED\x1b[0m", "␛[31mRED␛[0m"),
    Hostile("OSC window title", "\x1b]0;title\x07", "␛]0;title␇"),
    Hostile("CR and erase line", "shown\r\x1b[2Khidden", "shown␍␛[2Khidden"),
    Hostile("clear screen", "\x1b[2J\x1b[H", "␛[2J␛[H"),
    Hostile("DCS request", "\x1bP+q544e\x1b\\", "␛P+q544e␛\\"),
    Hostile("C1 CSI", "\u009b31mC1", "<U+009B>31mC1"),
    Hostile(
        "OSC 8 hyperlink",
        "\x1b]8;;http://evil.example/\x1b\\link\x1b]8;;\x1b\\",
        "␛]8;;http://evil.example/␛\\link␛]8;;␛\\",
    ),
    Hostile("bidi override", "\u202eevil\u202c", "<U+202E>evil<U+202C>"),
    Hostile("tab and newline", "a\tb\nc", "a␉b␊c"),
    Hostile("real artist [dunkelbunt]", "[dunkelbunt]", "[dunkelbunt]"),
    Hostile("markup close [/]", "[/]", "[/]"),
    Hostile("markup style", "[bold red]x[/bold red]", "[bold red]x[/bold red]"),
    Hostile(
        "markup link", "[link=http://evil.example]x[/link]", "[link=http://evil.example]x[/link]"
    ),
    Hostile("emoji code", ":thumbs_up:", ":thumbs_up:"),
    Hostile("pipe", "A|B", "A|B"),
)

_ACTIVE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]"
)
_CSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
RAW_SEQUENCES = ("\x1b[31m", "\x1b]", "\x1bP", "\x1b[2J", "\x1b[2K", "\x9b", "\u202e", "\x07")
"""The hostile names' own sequences: never in what musiquectl writes."""


def assert_inert(text: str, *, progress: bool = False) -> None:
    """Nothing in ``text`` a terminal would act on, but newlines and tabs (between cells).

    ``progress``: the live bar of a followed job (a terminal only) redraws its line with a
    carriage return and an erase-line sequence of its own: those are allowed, the hostile ones
    still are not.
    """
    for sequence in RAW_SEQUENCES:
        if not (progress and sequence == "\x1b[2K"):  # the bar erases its own line
            assert sequence not in text, (sequence, text)
    if progress:
        text = _CSI.sub("", text).replace("\r", "")
    found = _ACTIVE.findall(text)
    assert not found, (found, text)


@contextmanager
def failing_lastfm(message: str, code: int = 99) -> Iterator[str]:
    """A Last.fm endpoint whose every answer is the error ``code`` with ``message`` (the
    message is Last.fm's own text: untrusted). Yields its API URL."""

    async def answer(_: web.Request) -> web.Response:
        body = orjson.dumps({"error": code, "message": message})
        return web.Response(body=body, status=400, content_type="application/json")

    def make_app() -> web.Application:
        app = web.Application()
        app.router.add_route("*", API_PATH, answer)
        return app

    server = ThreadedServer(make_app).start()
    try:
        yield f"{server.base_url}{API_PATH}"
    finally:
        server.stop()
