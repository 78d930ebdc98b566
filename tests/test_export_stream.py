"""``history.export``: the streamed answer on the socket, as a client sees it.

The daemon formats listens as it reads them and sends the text in ``stream`` notifications
(each line under 1 MiB, whatever the text), then the result; a client that stops reading
holds its export without holding anyone else up, and one that leaves ends it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import random
import socket
import struct
import time
from pathlib import Path
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from musiqued import wire
from musiqued.models import Scrobble, iso_utc
from musiqued.services.export import json_objects
from musiqued.storage.db import Database
from musiqued.storage.history import EXPORT_FIELDS
from tests.export_support import database_connections, expected_of, rendered
from tests.fixtures.rpc_socket import ServeRpc
from tests.fixtures.services import InProcess, eventually
from tests.fixtures.whole_daemon import StartWholeDaemon, ThreadedWholeDaemon
from tests.history_support import generated, seed, store
from tests.rawrpc import RawConnection, request
from tests.support import DaemonProcess, run_ctl

_TEMPLATE = ("{" + ", ".join(f'"{field}": %b' for field in EXPORT_FIELDS) + "}\n").encode()
_ROW = st.tuples(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    *[st.none() | st.text() for _ in EXPORT_FIELDS[1:-1]],
    st.booleans(),
)


@settings(max_examples=500)
# A few rows give a first, middle and last row around the layout cut; more rows only cost
# drawing, and the values (where the escapes are) vary as much in each example.
@given(st.lists(_ROW, min_size=1, max_size=5))
def test_json_objects_are_json_dumps_byte_for_byte(rows: list[tuple[Any, ...]]) -> None:
    """Any values (control characters, NUL, quotes, backslashes, newlines, any Unicode)
    come out as ``json.dumps(listen, ensure_ascii=False)`` writes them, one per line."""
    expected = "".join(
        json.dumps(dict(zip(EXPORT_FIELDS, row, strict=True)), ensure_ascii=False) + "\n"
        for row in rows
    )
    assert json_objects(rows, _TEMPLATE).decode() == expected


def _large_history() -> list[Scrobble]:
    """~2 MB of CSV, far more than the socket buffers hold, in 2000 listens with long
    titles: few rows to store and format."""
    return [dataclasses.replace(s, title=f"{s.title} {'é' * 500}") for s in generated(2000)]


def _stream(conn: RawConnection, request_id: Any) -> tuple[str, dict[str, Any], list[int]]:
    """Read a streamed answer: the text, the final answer, each line's length."""
    parts: list[str] = []
    sizes: list[int] = []
    while True:
        line = conn.read_line()
        assert line is not None, "the daemon closed the connection midway"
        sizes.append(len(line) + 1)
        message = orjson.loads(line)
        if message.get("method") != wire.STREAM_METHOD:
            assert message["id"] == request_id
            return "".join(parts), message, sizes
        assert message["params"]["id"] == request_id
        parts.append(message["params"]["data"])


def _open_scans(daemon: DaemonProcess, database: Path) -> int:
    """Connections the daemon holds on its database beyond its writer and its two readers (a
    daemon served in a thread holds them in this process)."""
    if isinstance(daemon, ThreadedWholeDaemon):
        pid = os.getpid()
    else:
        assert daemon.proc is not None
        pid = daemon.proc.pid
    return database_connections(pid, database) - 3


def _no_failure_logged(daemon: DaemonProcess) -> None:
    assert "Traceback" not in daemon.logs()
    levels = {r.get("level") for r in daemon.log_records()}
    assert not levels & {"error", "critical"}, daemon.logs()[-3000:]


def test_names_with_control_characters_are_exported_unchanged(
    workdir: Path, start_in_thread: StartWholeDaemon
) -> None:
    """NUL, CR/LF, quotes, commas, backslashes, escape sequences and bidi controls in names
    are exported exactly as stored in every format (the standard library's bytes), through
    musiquectl and on the socket; a name of 300,000 control characters (six bytes each once
    escaped) still arrives in lines under 1 MiB."""
    names = [
        "NUL\x00inside",
        'quote " and ""',
        "comma, and\r\nCRLF",
        "lone\rCR and lone\nLF",
        "back\\slash\t tab",
        "\x1b[31mred\x1b[0m \x07 \x7f \x9b",
        "\u202eevil\u202c \u2028 \u2029 \ufeff",
        "emoji 🎵 and ünïcödé",
    ]
    base = 1_700_000_000
    scrobbles = [
        Scrobble(base + i, name, f"{name} (title)", f"{name} (album)", track_mbid=name)
        for i, name in enumerate(names)
    ]
    scrobbles.append(Scrobble(base + 100, "\x01" * 300_000, "long", ""))
    seed(workdir / "musique.db", scrobbles)
    daemon = start_in_thread()
    expected = expected_of(scrobbles)
    for fmt in ("csv", "json", "jsonl"):
        target = workdir / f"names.{fmt}"
        done = run_ctl("export", "--format", fmt, "-o", str(target), socket_path=daemon.socket_path)
        assert done.returncode == 0, done.stderr
        assert target.read_bytes() == rendered(fmt, expected), fmt
        with RawConnection(daemon.socket_path) as conn:
            conn.send(request("history.export", {"format": fmt}, id=fmt))
            text, answer, sizes = _stream(conn, fmt)
        assert text.encode() == rendered(fmt, expected)
        assert answer["result"] == {"exported": len(names) + 1, "format": fmt}
        assert max(sizes) <= wire.MAX_LINE_BYTES
        assert len(sizes) > 3  # the long name took several lines
    _no_failure_logged(daemon)


async def test_dates_are_iso_utc_at_the_edges(database: Database, in_process: InProcess) -> None:
    """``date`` is ``models.iso_utc`` of the timestamp (as in ``history.list``) at the edges
    of days, months, leap days, 2038 and the last second of 9999, and at random moments."""
    edges = [1, 59, 86399, 86400, 951_782_400, 951_868_799, 2**31 - 1, 2**31, 4_102_444_800]
    rng = random.Random(15)
    moments = sorted({*edges, 253_402_300_799, *(rng.randrange(1, 2**35) for _ in range(300))})
    scrobbles = [Scrobble(t, "Artist", f"Title {t}", "") for t in moments]
    await store(database, scrobbles)
    async with in_process() as daemon:
        result, text = await daemon.call_streamed("history.export", {"format": "jsonl"})
        listed = (await daemon.call("history.list", {"limit": 5000}))["listens"]
    assert result["exported"] == len(moments)
    dates = [(x["timestamp"], x["date"]) for x in map(json.loads, text.splitlines())]
    assert dates == [(t, iso_utc(t)) for t in moments]
    assert [x["date"] for x in listed] == [d for _, d in dates]


def test_a_client_that_leaves_midway_ends_its_export(
    workdir: Path, start_in_thread: StartWholeDaemon
) -> None:
    """A client that resets its connection after the first part of a large export ends it:
    the export's connection to the database is closed, nothing is logged as a failure, and
    the daemon goes on serving (the next export is whole)."""
    database = workdir / "musique.db"
    scrobbles = _large_history()
    seed(database, scrobbles)
    daemon = start_in_thread()
    assert _open_scans(daemon, database) == 0
    conn = RawConnection(daemon.socket_path)
    conn.send(request("history.export", {"format": "csv"}, id="leaving"))
    first = orjson.loads(conn.read_line() or b"null")
    assert first["method"] == wire.STREAM_METHOD
    assert first["params"]["data"].startswith("timestamp,date,artist")
    daemon.wait_until(lambda: _open_scans(daemon, database) == 1)
    # Reset rather than close: the daemon's next write fails at once.
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()
    daemon.wait_until(lambda: _open_scans(daemon, database) == 0)
    assert daemon.call("daemon.status")["listens"] == len(scrobbles)
    done = run_ctl("export", "--format", "jsonl", socket_path=daemon.socket_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.encode() == rendered("jsonl", expected_of(scrobbles))
    _no_failure_logged(daemon)


def test_a_paused_export_holds_nobody_else_up(
    workdir: Path, start_in_thread: StartWholeDaemon
) -> None:
    """A client that stops reading its export holds only that export (the daemon waits on
    the socket, the rest unread): meanwhile ``daemon.status`` answers and another client's
    export runs whole; then the first client reads on and gets its export whole and exact."""
    database = workdir / "musique.db"
    scrobbles = _large_history()
    seed(database, scrobbles)
    daemon = start_in_thread()
    expected = expected_of(scrobbles)
    with RawConnection(daemon.socket_path, timeout=60) as slow:
        slow.send(request("history.export", {"format": "json"}, id="slow"))
        first = slow.read_line()
        assert first is not None
        daemon.wait_until(lambda: _open_scans(daemon, database) == 1)
        # Not reading: the daemon can only have sent what the socket buffers hold.
        time.sleep(0.5)  # a pause to prove a negative: the export does not finish alone
        assert _open_scans(daemon, database) == 1
        for _ in range(20):
            assert daemon.call("daemon.status")["listens"] == len(scrobbles)
        other = run_ctl(
            "export",
            "--format",
            "jsonl",
            "--since",
            str(scrobbles[900].timestamp),
            socket_path=daemon.socket_path,
        )
        assert other.returncode == 0, other.stderr
        kept = [x for x in expected if x["timestamp"] >= scrobbles[900].timestamp]
        assert other.stdout.encode() == rendered("jsonl", kept)
        text, answer, _ = _stream(slow, "slow")
        message = orjson.loads(first)
        assert (message["params"]["data"] + text).encode() == rendered("json", expected)
        assert answer["result"] == {"exported": len(scrobbles), "format": "json"}
    daemon.wait_until(lambda: _open_scans(daemon, database) == 0)
    _no_failure_logged(daemon)


GRACE_S = 0.5
"""The socket server's grace period for a request in flight when it closes (the daemon's is
``RpcServer.close``'s default, 5 s)."""


async def test_a_stop_during_an_export_ends_it_cleanly(
    database: Database, serve_rpc: ServeRpc
) -> None:
    """The socket server closing (as the daemon's stop does, at SIGTERM) while an export is
    held by its client: the server waits its grace period for the call, cancels it and
    closes the export's connection; the client sees its connection end before the answer;
    the cancel is logged as a warning, nothing as a failure."""
    await store(database, _large_history())

    async def one_scan_open() -> bool:
        return database_connections(os.getpid(), database.path) - 3 == 1

    async with serve_rpc() as served:
        with RawConnection(served.path, timeout=60) as held:
            held.send(request("history.export", {"format": "csv"}, id="held"))
            assert await asyncio.to_thread(held.read_line) is not None
            await eventually(one_scan_open)
            await served.server.close(grace=GRACE_S)

            def rest() -> list[Any]:
                return [orjson.loads(line) for line in iter(held.read_line, None)]

            lines = await asyncio.to_thread(rest)
        logged = list(served.logs)
    assert all(x.get("method") == wire.STREAM_METHOD for x in lines)  # never an answer
    assert [e["event"] for e in logged if e["log_level"] == "warning"] == [
        "rpc request still running at shutdown; cancelling it"
    ]
    assert not [e for e in logged if e["log_level"] in ("error", "critical")]
    assert not [e for e in logged if e.get("exc_info") or e.get("exception")]


def _send_batch(path: Path, batch: list[dict[str, Any]]) -> tuple[list[str], Any]:
    """The parts streamed for a batch, and the batch's answer."""
    with RawConnection(path) as conn:
        conn.send(json.dumps(batch).encode() + b"\n")
        parts = []
        while isinstance(message := conn.read(), dict):
            assert message["method"] == wire.STREAM_METHOD
            assert message["params"]["id"] == "x"
            parts.append(message["params"]["data"])
    return parts, message


async def test_in_a_batch_and_in_the_description(database: Database, serve_rpc: ServeRpc) -> None:
    """In a batch, the export's parts come first, then the batch's one array (the export's
    result among the others); ``rpc.describe`` marks ``history.export`` as streamed."""
    scrobbles = generated(40)
    await store(database, scrobbles)
    batch = [
        {"jsonrpc": "2.0", "method": "history.export", "params": {"format": "csv"}, "id": "x"},
        {"jsonrpc": "2.0", "method": "daemon.status", "id": "s"},
    ]
    async with serve_rpc() as served:
        parts, message = await asyncio.to_thread(_send_batch, served.path, batch)
        described = await served.daemon.call("rpc.describe")
    assert "".join(parts).encode() == rendered("csv", expected_of(scrobbles))
    answers = {a["id"]: a for a in message}
    assert answers["x"]["result"] == {"exported": 40, "format": "csv"}
    assert answers["s"]["result"]["listens"] == 40
    methods = {m["name"]: m for m in described["methods"]}
    assert methods["history.export"]["streamed"] is True
    assert methods["history.list"]["streamed"] is False
    assert methods["history.export"]["params"]["properties"]["format"]["enum"] == [
        "csv",
        "json",
        "jsonl",
        "listenbrainz",
        "maloja",
    ]


def _notification_then_long_id(path: Path) -> tuple[Any, Any]:
    with RawConnection(path) as conn:
        conn.send(
            b'{"jsonrpc": "2.0", "method": "history.export", "params": {"format": "csv"}}\n'
            + request("daemon.status", id="after")
        )
        answer = conn.read()
        conn.send(request("history.export", {"format": "csv"}, id="i" * 1_045_000))
        return answer, conn.read()


async def test_export_requests_that_cannot_be_served(
    database: Database, serve_rpc: ServeRpc
) -> None:
    """An unknown format and a period that ends before it starts are invalid params; an
    export sent as a notification is neither run nor answered (a notification is never
    answered, and its answer is all it does); an id too long to go with every part of the
    answer is refused with ``id_too_long``."""
    await store(database, generated(30))
    async with serve_rpc() as served:
        bad = await served.daemon.call_error("history.export", {"format": "xml"})
        assert bad.code == wire.INVALID_PARAMS
        assert "format" in bad.message
        reversed_period = await served.daemon.call_error(
            "history.export", {"format": "csv", "since": 2_000_000_000, "until": 1_000_000_000}
        )
        assert reversed_period.code == wire.INVALID_PARAMS
        assert "until must not be before since" in reversed_period.message
        answer, refused = await asyncio.to_thread(_notification_then_long_id, served.path)
        logs = served.logs
    assert answer["id"] == "after"
    assert "result" in answer
    assert refused["error"]["data"]["kind"] == "id_too_long"
    assert refused["error"]["code"] == wire.INVALID_REQUEST
    assert not [entry for entry in logs if entry.get("exc_info") or entry.get("exception")]
    assert not [entry for entry in logs if entry["log_level"] in ("error", "critical")]
