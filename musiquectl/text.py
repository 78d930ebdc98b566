"""Untrusted text made safe to show: the one function every human printer goes through.

Names, titles, descriptions and error messages come from Last.fm, Spotify, the AI endpoint
and whoever tagged the music: strangers. On a terminal, an ESC, a C1 control or a bidi
override in such a string is an instruction (colour, window title, hyperlink, cleared screen,
reversed text), and a tab or newline breaks a table's rows. ``visible`` turns each of them
into a visible stand-in, so a string is shown as the text it is:

- C0 controls and DEL become their Unicode control pictures: ESC is ``␛``, tab ``␉``,
  newline ``␊``, carriage return ``␍``, BEL ``␇``, DEL ``␡``; an escape sequence thus shows
  as ``␛[31m`` and does nothing;
- C1 controls (U+0080 to U+009F, e.g. the one-character CSI U+009B), the bidi controls
  (U+061C, U+200E, U+200F, U+202A to U+202E, U+2066 to U+2069), the line and paragraph separators
  (U+2028, U+2029) and lone surrogates become ``<U+XXXX>``.

Everything else, accents and emoji included, is left as it is. ``--json`` output is exact
data instead: ``json_text`` writes the same characters as JSON escapes (``\\u009b``), which
decode to the same string and do nothing on a terminal.
"""

from __future__ import annotations

import functools
import json
from typing import Any

_BIDI = (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))
_SEPARATORS = (0x2028, 0x2029)
_C1 = range(0x80, 0xA0)
_SURROGATES = range(0xD800, 0xE000)


@functools.cache
def _visible_table() -> dict[int, str]:
    """Built on first use: ``musiquectl --help`` never pays for it."""
    table = {code: chr(0x2400 + code) for code in range(0x20)}
    table[0x7F] = "\u2421"
    table.update({code: f"<U+{code:04X}>" for code in (*_C1, *_BIDI, *_SEPARATORS, *_SURROGATES)})
    return table


@functools.cache
def _json_escapes() -> dict[int, str]:
    """JSON already escapes C0; these are the characters it leaves raw that a terminal acts on."""
    return {code: f"\\u{code:04x}" for code in (0x7F, *_C1, *_BIDI, *_SEPARATORS, *_SURROGATES)}


def visible(text: str) -> str:
    """``text`` with every control character and bidi control replaced by a visible form."""
    return text.translate(_visible_table())


def json_text(value: Any, *, indent: int | None = None) -> str:
    """``value`` as JSON: the exact data, with nothing a terminal would act on left raw."""
    return json.dumps(value, indent=indent, ensure_ascii=False).translate(_json_escapes())
