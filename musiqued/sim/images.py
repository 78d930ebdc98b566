"""Real image bytes for the simulators: a small PNG in a colour derived from a name.

Covers differ from album to album (the colour comes from a hash of the name) and are the
same on every run, so the tests and the demo show covers without a network.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from functools import lru_cache

from aiohttp import web

SIDE = 96


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


@lru_cache(maxsize=1024)
def cover_png(name: str, side: int = SIDE) -> bytes:
    """A square PNG ``side`` pixels wide: a colour from ``name``, a lighter band across its middle."""
    digest = hashlib.sha256(name.encode()).digest()
    colour = bytes(64 + b % 160 for b in digest[:3])
    light = bytes(min(255, c + 60) for c in colour)
    rows = bytearray()
    for y in range(side):
        fill = light if side // 3 <= y < 2 * side // 3 else colour
        rows += b"\x00" + fill * side  # filter type 0 (none) for each scanline
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + _chunk(b"IEND", b"")
    )


def image_response(name: str) -> web.Response:
    return web.Response(
        body=cover_png(name),
        content_type="image/png",
        headers={"Cache-Control": "public, max-age=86400"},
    )
