"""The JSON-RPC 2.0 specification's examples (section 7) and our own protocol rules, sent as
raw bytes to the daemon's real socket server (served in the test's process, on a loop of its
own); after each case a new connection is still served."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from musiqued import wire
from tests.fixtures.threaded import ThreadedDaemon, services_in_thread
from tests.rawrpc import RawConnection, assert_serving, error_code, exchange, request
from tests.support import short_tmp

IDLE_TIMEOUT = 1.0


@pytest.fixture(scope="module")
def daemon() -> Iterator[ThreadedDaemon]:
    """One server for the whole module (a short idle timeout for the robustness cases)."""
    with short_tmp() as workdir, services_in_thread(workdir) as serve:
        served = serve(socket=True, daemon={"idle_timeout_seconds": IDLE_TIMEOUT})
        yield served
        failures = [
            entry
            for entry in served.logs
            if entry.get("log_level") in ("error", "critical")
            or "exception" in entry
            or entry.get("exc_info")
        ]
        assert not failures, failures


@pytest.fixture
def sock(daemon: ThreadedDaemon) -> Iterator[Path]:
    """The daemon's socket; after the test, a new connection must still be served."""
    assert daemon.rpc is not None
    yield daemon.rpc.path
    assert_serving(daemon.rpc.path)


# -- section 7 of the specification ------------------------------------------------------


def test_call_of_non_existent_method(sock: Path) -> None:
    """A method that does not exist: -32601 with the request's id."""
    answer = exchange(sock, b'{"jsonrpc": "2.0", "method": "foobar", "id": "1"}\n')
    assert error_code(answer) == wire.METHOD_NOT_FOUND
    assert answer["id"] == "1"
    assert "foobar" in answer["error"]["message"]


def test_call_with_invalid_json(sock: Path) -> None:
    """Unparseable JSON: -32700 with a null id."""
    answer = exchange(sock, b'{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]\n')
    assert error_code(answer) == wire.PARSE_ERROR
    assert answer["id"] is None


def test_call_with_invalid_request_object(sock: Path) -> None:
    """A request whose method is not a string: -32600 with a null id (it had none)."""
    answer = exchange(sock, b'{"jsonrpc": "2.0", "method": 1, "params": "bar"}\n')
    assert error_code(answer) == wire.INVALID_REQUEST
    assert answer["id"] is None


def test_batch_with_invalid_json(sock: Path) -> None:
    """A batch that is not valid JSON: one -32700 object (not an array), null id."""
    answer = exchange(
        sock,
        b'[{"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},'
        b'{"jsonrpc": "2.0", "method"]\n',
    )
    assert isinstance(answer, dict)
    assert error_code(answer) == wire.PARSE_ERROR
    assert answer["id"] is None


def test_empty_array(sock: Path) -> None:
    """An empty batch: one -32600 object with a null id."""
    answer = exchange(sock, b"[]\n")
    assert isinstance(answer, dict)
    assert error_code(answer) == wire.INVALID_REQUEST
    assert answer["id"] is None


def test_invalid_batch_of_one(sock: Path) -> None:
    """``[1]``: an array holding one -32600 error with a null id."""
    answer = exchange(sock, b"[1]\n")
    assert isinstance(answer, list)
    assert len(answer) == 1
    assert error_code(answer[0]) == wire.INVALID_REQUEST
    assert answer[0]["id"] is None


def test_invalid_batch_of_three(sock: Path) -> None:
    """``[1,2,3]``: three -32600 errors, each with a null id."""
    answer = exchange(sock, b"[1,2,3]\n")
    assert isinstance(answer, list)
    assert [error_code(a) for a in answer] == [wire.INVALID_REQUEST] * 3
    assert [a["id"] for a in answer] == [None] * 3


def test_mixed_batch_with_notifications(sock: Path) -> None:
    """A batch mixing calls, notifications, an invalid object and an unknown method: one
    answer per call (none for notifications), each with its id."""
    batch = [
        {"jsonrpc": "2.0", "method": "daemon.status", "params": {}, "id": "1"},
        {"jsonrpc": "2.0", "method": "daemon.status", "params": []},
        {"jsonrpc": "2.0", "method": "rpc.describe", "params": [], "id": "2"},
        {"foo": "boo"},
        {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
        {"jsonrpc": "2.0", "method": "daemon.status", "id": "9"},
    ]
    answer = exchange(sock, json.dumps(batch).encode() + b"\n")
    assert isinstance(answer, list)
    by_id = {a["id"]: a for a in answer}
    assert len(answer) == 5
    assert by_id["1"]["result"]["pid"] > 0
    assert {m["name"] for m in by_id["2"]["result"]["methods"]} >= {
        "daemon.status",
        "daemon.reload",
        "events.subscribe",
        "rpc.describe",
    }
    assert error_code(by_id[None]) == wire.INVALID_REQUEST
    assert error_code(by_id["5"]) == wire.METHOD_NOT_FOUND
    assert "pid" in by_id["9"]["result"]


def test_notification_gets_no_answer(sock: Path) -> None:
    """A notification, valid or not, is never answered: the next line's answer comes first."""
    with RawConnection(sock) as conn:
        conn.send(b'{"jsonrpc": "2.0", "method": "daemon.status"}\n')
        conn.send(b'{"jsonrpc": "2.0", "method": "no.such.method"}\n')
        conn.send(b'{"jsonrpc": "2.0", "method": "daemon.status", "params": {"x": 1}}\n')
        conn.send(request("daemon.status", id=42))
        assert conn.read()["id"] == 42


def test_all_notification_batch_gets_nothing(sock: Path) -> None:
    """A batch of notifications only: nothing at all is sent back."""
    batch = [
        {"jsonrpc": "2.0", "method": "daemon.status", "params": [1, 2, 4]},
        {"jsonrpc": "2.0", "method": "daemon.status"},
    ]
    with RawConnection(sock) as conn:
        conn.send(json.dumps(batch).encode() + b"\n")
        conn.send(request("daemon.status", id="after"))
        assert conn.read()["id"] == "after"


# -- params, envelope and ids ------------------------------------------------------------


def test_invalid_params_name_the_param(sock: Path) -> None:
    """Wrong params: -32602 with a message that says which parameter and why."""
    answer = exchange(sock, request("events.subscribe", {"topics": ["nope"]}, id=3))
    assert error_code(answer) == wire.INVALID_PARAMS
    assert answer["id"] == 3
    assert "topics" in answer["error"]["message"]
    assert "nope" in answer["error"]["message"]

    answer = exchange(sock, request("daemon.status", {"verbose": True}, id=4))
    assert error_code(answer) == wire.INVALID_PARAMS
    assert "verbose: unknown parameter" in answer["error"]["message"]
    assert answer["error"]["data"]["params"] == ["verbose"]

    answer = exchange(sock, request("events.subscribe", {"topics": "daemon"}, id=5))
    assert error_code(answer) == wire.INVALID_PARAMS
    assert "topics" in answer["error"]["message"]

    answer = exchange(sock, request("daemon.status", [1], id=6))
    assert error_code(answer) == wire.INVALID_PARAMS
    assert "positional" in answer["error"]["message"]


def test_positional_and_named_params(sock: Path) -> None:
    """Params may be an array (positional) or an object (named)."""
    for params in ([["daemon"]], {"topics": ["daemon"]}):
        answer = exchange(sock, request("events.subscribe", params, id=1))
        assert answer["result"] == {"subscribed": ["daemon"]}


@pytest.mark.parametrize(
    ("line", "expected_id"),
    [
        (b'{"jsonrpc": "1.0", "method": "daemon.status", "id": 7}', 7),
        (b'{"method": "daemon.status", "id": "x"}', "x"),
        (b'{"jsonrpc": 2.0, "method": "daemon.status", "id": 8}', 8),
        (b'{"jsonrpc": "2.0", "method": "daemon.status", "params": "bar", "id": 9}', 9),
        (b'{"jsonrpc": "2.0", "method": "daemon.status", "params": 42, "id": 10}', 10),
        (b'{"jsonrpc": "2.0", "method": "daemon.status", "params": null, "id": 11}', 11),
        (b'{"jsonrpc": "2.0", "method": "daemon.status", "id": {"a": 1}}', None),
        (b'{"jsonrpc": "2.0", "method": "daemon.status", "id": [1]}', None),
        (b'{"jsonrpc": "2.0", "method": "daemon.status", "id": true}', None),
        (b'{"jsonrpc": "2.0", "id": 12}', 12),
        (b'"just a string"', None),
        (b"null", None),
        (b"42", None),
    ],
)
def test_invalid_envelopes(sock: Path, line: bytes, expected_id: Any) -> None:
    """Wrong ``jsonrpc`` version, params that are not an object or array, unusable ids,
    non-objects: -32600, echoing the id when it can be read, else null."""
    answer = exchange(sock, line + b"\n")
    assert error_code(answer) == wire.INVALID_REQUEST
    assert answer["id"] == expected_id


@pytest.mark.parametrize("request_id", [0, -1, 3.5, "", "cli:x#1.1", None])
def test_ids_are_echoed(sock: Path, request_id: Any) -> None:
    """Numbers, strings and null ids are echoed exactly (null is a call, not a notification)."""
    answer = exchange(sock, request("daemon.status", id=request_id))
    assert answer["id"] == request_id
    assert "result" in answer


def test_oversize_line_is_refused_and_connection_closed(sock: Path) -> None:
    """A line over 1 MiB: an error answer, then that connection is closed."""
    line = b'{"jsonrpc": "2.0", "method": "daemon.status", "params": {"x": "'
    line += b"a" * wire.MAX_LINE_BYTES + b'"}, "id": 1}\n'
    with RawConnection(sock) as conn:
        sender = threading.Thread(target=_send_ignoring_reset, args=(conn.sock, line))
        sender.start()
        answer = conn.read()
        assert error_code(answer) == wire.INVALID_REQUEST
        assert answer["error"]["data"]["kind"] == "line_too_long"
        assert answer["id"] is None
        assert conn.at_eof()
        sender.join(10)


def test_line_of_exactly_the_limit_is_accepted(sock: Path) -> None:
    """A line of exactly 1 MiB (without its newline) is still read and answered."""
    head = b'{"jsonrpc": "2.0", "method": "daemon.status", "id": 1, "pad": "'
    tail = b'"}'
    line = head + b"a" * (wire.MAX_LINE_BYTES - len(head) - len(tail)) + tail
    assert len(line) == wire.MAX_LINE_BYTES
    answer = exchange(sock, line + b"\n")
    assert answer["id"] == 1  # answered (an unknown member is ignored per the spec)


def _send_ignoring_reset(sock: socket.socket, data: bytes) -> None:
    # The daemon closes the connection after its error: a failed send is expected.
    with contextlib.suppress(OSError):
        sock.sendall(data)


# -- a misbehaving client never stalls the others ----------------------------------------


def test_line_without_newline_then_eof(sock: Path) -> None:
    """A last line with no newline, then EOF: it is still answered, and the connection ends."""
    with RawConnection(sock) as conn:
        conn.send(b'{"jsonrpc": "2.0", "method": "daemon.status", "id": "tail"}')
        conn.sock.shutdown(socket.SHUT_WR)
        assert conn.read()["id"] == "tail"
        assert conn.at_eof()
    with RawConnection(sock) as conn:
        conn.send(b'{"jsonrpc": "2.0", "method": ')
        conn.sock.shutdown(socket.SHUT_WR)
        assert error_code(conn.read()) == wire.PARSE_ERROR
        assert conn.at_eof()


def test_half_line_waits_without_blocking_others(sock: Path) -> None:
    """A client stuck in the middle of a line holds no one up."""
    with RawConnection(sock) as stuck:
        stuck.send(b'{"jsonrpc": "2.0", "meth')
        for _ in range(20):
            assert_serving(sock)


def test_client_reset_mid_request(sock: Path) -> None:
    """Clients that vanish mid-line or right after sending are forgotten quietly."""
    for _ in range(20):
        conn = RawConnection(sock)
        conn.send(b'{"jsonrpc": "2.0", "method": "daemon.st')
        conn.sock.setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
        )
        conn.close()
        conn = RawConnection(sock)
        conn.send(request("daemon.status") * 50)
        conn.close()
    assert_serving(sock)


def test_client_that_stops_reading(daemon: ThreadedDaemon, sock: Path) -> None:
    """A client that sends many requests and reads nothing stalls only itself, and is cut
    off once its answers have waited longer than the timeout."""
    greedy = RawConnection(sock, timeout=0.5)
    # Padded requests: the daemon buffers up to 2 MiB of input before it stops reading.
    one = b'{"jsonrpc": "2.0", "method": "rpc.describe", "id": 1, "pad": "' + b"p" * 8000
    payload = (one + b'"}\n') * 100
    sent = 0
    try:
        while sent < 64 << 20:
            greedy.send(payload)
            sent += len(payload)
    except TimeoutError:
        pass  # the daemon stopped reading from us: our answers are queued
    assert sent < 64 << 20, "the daemon kept reading from a client that reads nothing"
    started = time.monotonic()
    for _ in range(20):
        assert_serving(sock)
    assert time.monotonic() - started < 2.0
    daemon.wait_until(
        lambda: daemon.logged("rpc peer stopped reading; closing its connection"),
        timeout=IDLE_TIMEOUT * 6,
    )
    greedy.sock.settimeout(10)
    assert greedy.at_eof()
    greedy.close()


def test_idle_connection_is_closed(sock: Path) -> None:
    """A connection that says nothing for the idle timeout is closed by the daemon."""
    with RawConnection(sock) as idle:
        started = time.monotonic()
        assert_serving(sock)
        assert idle.at_eof()
        assert IDLE_TIMEOUT * 0.8 <= time.monotonic() - started < IDLE_TIMEOUT * 4


def test_subscriber_is_not_idle(daemon: ThreadedDaemon, sock: Path) -> None:
    """A connection subscribed to events stays open past the idle timeout and gets them."""
    with RawConnection(sock) as subscriber:
        subscriber.send(request("events.subscribe", {"topics": ["daemon"]}, id="sub"))
        assert subscriber.read()["result"] == {"subscribed": ["daemon"]}
        time.sleep(IDLE_TIMEOUT * 1.5)  # a negative: past the idle timeout, still open
        assert exchange(sock, request("daemon.reload"))["result"]["status"] == "reloaded"
        event = subscriber.read()
        assert event["method"] == wire.EVENT_METHOD
        assert "id" not in event
        assert event["params"]["topic"] == "daemon"
        assert event["params"]["data"]["event"] == "reloaded"
