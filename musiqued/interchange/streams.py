"""Reading a handed-over file as a stream: its JSON items or its text lines, in constant memory.

The daemon gets open file objects (descriptors passed by ``musiquectl``), never paths, so
``name`` is only for messages. A UTF-8 byte order mark at the start is dropped (editors on
Windows write one); CRLF and LF line ends are both read.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterator
from typing import IO, Any, BinaryIO, Protocol

import ijson

from musiqued.errors import BadFileError

BOM = b"\xef\xbb\xbf"
ZIP_MAGIC = b"PK\x03\x04"
MAX_LINE_BYTES = 1024 * 1024
"""The longest line an entry of a line format may take: a longer one is unreadable (and a
file that is one endless line costs no more memory than this)."""
TOO_LONG = f"longer than {MAX_LINE_BYTES // 1024 // 1024} MiB"


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class _WithoutBom:
    """``file`` without a leading byte order mark: what ijson reads (yajl refuses a BOM)."""

    def __init__(self, file: Readable) -> None:
        self._file = file
        self._at_start = True

    def read(self, size: int = -1, /) -> bytes:
        data = self._file.read(size)
        # ijson first reads 0 bytes to learn whether the file gives bytes or text.
        if self._at_start and data:
            self._at_start = False
            data = data.removeprefix(BOM)
        return data


def json_items(file: Readable, prefix: str, name: str) -> Iterator[tuple[int, Any]]:
    """The items under ``prefix`` (ijson's notation: ``"item"`` for a top-level array's
    elements), numbered from 1, as they are parsed; numbers that are not integers come as
    floats.

    Where the JSON breaks (a truncated download, a stray byte), the items before the break
    have been yielded and ``BadFileError`` says after which one it broke.
    """
    number = 0
    try:
        for number, item in enumerate(
            ijson.items(_WithoutBom(file), prefix, use_float=True), start=1
        ):
            yield number, item
    except ijson.JSONError as exc:
        place = f"after entry {number}" if number else "before its first entry"
        read = "; the entries before it were read" if number else ""
        raise BadFileError(
            f"{name}: the JSON breaks {place} ({_parser_says(exc)}){read}", kind="broken_json"
        ) from None


def _parser_says(exc: Exception) -> str:
    """The parser's reason, without the excerpt of the file it shows on the lines after it
    (yajl gives bytes)."""
    said = exc.args[0] if exc.args else ""
    text = said.decode("utf-8", "replace") if isinstance(said, bytes) else str(said)
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first.strip() or type(exc).__name__


def byte_lines(file: IO[bytes]) -> Iterator[tuple[int, bytes | None]]:
    """Each line of ``file`` without its line end (LF or CRLF), numbered from 1, a leading
    byte order mark dropped; None for a line longer than ``MAX_LINE_BYTES``, which is read
    past a piece at a time, never held whole."""
    number = 0
    while raw := file.readline(MAX_LINE_BYTES + 1):
        number += 1
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while raw and not raw.endswith(b"\n"):
                raw = file.readline(MAX_LINE_BYTES)
            yield number, None
            continue
        if number == 1:
            raw = raw.removeprefix(BOM)
        yield number, raw.removesuffix(b"\n").removesuffix(b"\r")


def text_lines(file: IO[bytes], name: str) -> Iterator[tuple[int, str | None]]:
    """Each line of ``file`` as UTF-8 text, as ``byte_lines`` cuts them (None for a line
    too long).

    A line that is not UTF-8 ends the reading with ``BadFileError`` naming the line: a file
    in another encoding would otherwise be stored garbled. The lines before it have been
    yielded.
    """
    for number, data in byte_lines(file):
        if data is None:
            yield number, None
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadFileError(
                f"{name}: line {number} is not UTF-8 text (byte 0x{data[exc.start]:02x} at "
                f"column {exc.start + 1}); save the file as UTF-8 and import it again",
                kind="not_utf8",
            ) from None
        yield number, text


def text_field(value: object) -> str | None:
    """``value`` if it is a string, else None (JSON's ``null``, a number, an object)."""
    return value if isinstance(value, str) else None


def whole_number(value: object) -> int | None:
    """``value`` as an int if JSON gave a whole number (``1.0`` included), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def zip_members(
    file: BinaryIO, name: str, wanted: Callable[[str], bool]
) -> Iterator[tuple[str, IO[bytes]]]:
    """The members of a zip archive whose names are ``wanted``, each open while its turn
    lasts, in the archive's order. ``file`` must be seekable (the directory is at the end).

    A broken archive or member ends the reading with ``BadFileError``; what the members
    before it held has been read.
    """
    try:
        archive = zipfile.ZipFile(file)
    except (zipfile.BadZipFile, OSError) as exc:
        raise BadFileError(
            f"{name}: not a readable zip archive ({exc})", kind="broken_zip"
        ) from None
    with archive:
        for member in archive.infolist():
            if member.is_dir() or not wanted(member.filename):
                continue
            try:
                # A member's own readline is written in Python; a BufferedReader finds the
                # line ends in C.
                with archive.open(member) as opened:
                    buffered = io.BufferedReader(opened)  # type: ignore[type-var]
                    yield member.filename, buffered
            except (zipfile.BadZipFile, EOFError, OSError) as exc:
                raise BadFileError(
                    f"{name}: {member.filename} breaks ({exc}); what came before it was read",
                    kind="broken_zip",
                ) from None
