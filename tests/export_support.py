"""Exports as docs/musiquectl.md defines them, to compare ``musiquectl export`` with, byte for byte."""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import threading
from pathlib import Path
from typing import Any

from musiqued.models import Scrobble, iso_utc

# The documented columns, written out here rather than imported: the test holds the contract.
HEADER = "timestamp,date,artist,title,album,artist_mbid,album_mbid,track_mbid,source,origin,spotify_id,loved"
FIELDS = HEADER.split(",")


def parse(fmt: str, text: str) -> list[dict[str, Any]]:
    """Read an export back into listens (CSV's empty cells mean null)."""
    if fmt == "json":
        return list(json.loads(text))
    if fmt == "jsonl":
        return [json.loads(line) for line in text.splitlines()]
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == FIELDS
    return [{f: _cell(f, v) for f, v in zip(FIELDS, row, strict=True)} for row in rows[1:]]


def _cell(field: str, value: str) -> Any:
    if field == "timestamp":
        return int(value)
    if field == "loved":
        return value == "true"
    return value or None


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def rendered(fmt: str, listens: list[dict[str, Any]]) -> bytes:
    """``listens`` exported in ``fmt`` by the standard library: CSV by ``csv.writer`` (CRLF,
    a header, null as an empty cell), each object by ``json.dumps(ensure_ascii=False)``."""
    if fmt == "csv":
        out = io.StringIO(newline="")
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(FIELDS)
        writer.writerows([_csv_cell(x[f]) for f in FIELDS] for x in listens)
        return out.getvalue().encode()
    objects = [json.dumps({f: x[f] for f in FIELDS}, ensure_ascii=False) for x in listens]
    if fmt == "jsonl":
        return "".join(o + "\n" for o in objects).encode()
    return ("[" + ",".join("\n" + o for o in objects) + ("\n]\n" if objects else "]\n")).encode()


def expected_of(scrobbles: list[Scrobble]) -> list[dict[str, Any]]:
    return [
        {
            "timestamp": s.timestamp,
            "date": iso_utc(s.timestamp),
            "artist": s.artist,
            "title": s.title,
            "album": s.album or None,
            "artist_mbid": s.artist_mbid or None,
            "album_mbid": s.album_mbid or None,
            "track_mbid": s.track_mbid or None,
            "source": "import",
            "origin": "lastfm",
            "spotify_id": None,
            "loved": s.loved,
        }
        for s in sorted(scrobbles, key=lambda s: s.timestamp)
    ]


def database_connections(pid: int, database: Path) -> int:
    """How many SQLite connections process ``pid`` has open on ``database`` (in WAL mode).

    Counted by their descriptors on the WAL file: SQLite may keep a closed connection's
    descriptor on the database file itself open for the next one (POSIX locks are per
    process), never one on the WAL.
    """
    wal = f"{database}-wal"
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == wal:
                count += 1
        except FileNotFoundError:
            continue  # closed meanwhile
    return count


class HoldingRelay:
    """A socket between a client and the daemon that passes the daemon's first ``limit``
    bytes, then holds the rest; when the daemon's side ends, it ends the client's.

    It lets a test stop an export midway, whatever the client and however fast the daemon.
    """

    def __init__(self, listen: Path, daemon: Path, limit: int) -> None:
        self.path = listen
        self._daemon = daemon
        self._limit = limit
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(listen))
        self._server.listen(1)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        client, _ = self._server.accept()
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        upstream.connect(str(self._daemon))
        threading.Thread(target=self._pass, args=(client, upstream), daemon=True).start()
        passed = 0
        with client, upstream:
            while chunk := _recv(upstream):
                if passed < self._limit:
                    client.sendall(chunk[: self._limit - passed])
                    passed += min(len(chunk), self._limit - passed)
            # shutdown, not just close: the other thread's recv on it must end too.
            client.shutdown(socket.SHUT_RDWR)

    @staticmethod
    def _pass(source: socket.socket, target: socket.socket) -> None:
        while chunk := _recv(source):
            target.sendall(chunk)

    def close(self) -> None:
        self._server.close()


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except OSError:
        return b""
