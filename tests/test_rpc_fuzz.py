"""Property test of the control socket: random bytes and random JSON values, sent to the real
dispatcher and server on a real Unix socket (in-process, over a real Database).

Every complete line gets exactly one answer with the right error code (none for a valid
notification or a blank line), nothing is logged as an unhandled exception, and another
client keeps being served throughout.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from musiqued import wire
from musiqued.app.daemon import build_services
from musiqued.config import Config
from musiqued.rpc.dispatch import Dispatcher
from musiqued.rpc.listener import SocketListener
from musiqued.rpc.methods import daemon as daemon_methods
from musiqued.rpc.peers import AccessPolicy
from musiqued.rpc.server import RpcServer
from musiqued.services.events import EventBus
from musiqued.storage import Database
from musiqued.storage.listens import count_listens
from tests.rawrpc import RawConnection, request
from tests.support import short_tmp

NO_PARAMS = {"daemon.status", "daemon.reload", "rpc.describe"}
KNOWN = {*NO_PARAMS, "events.subscribe"}
# Hypothesis' own default is 100; a longer exploration: MUSIQUE_FUZZ_EXAMPLES=5000.
EXAMPLES = int(os.environ.get("MUSIQUE_FUZZ_EXAMPLES", "500"))


class _Control:
    """The daemon's own surface (``DaemonControl``) the ``daemon.*`` handlers use."""

    def __init__(self, db: Database, events: EventBus) -> None:
        self.db = db
        self.events = events

    async def status(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "listens": await count_listens(self.db)}

    async def reload(self) -> dict[str, Any]:
        self.events.publish("daemon", event="reloaded", changed=[])
        return {"status": "reloaded", "changed": []}


@dataclass
class _Served:
    path: Path
    loop: asyncio.AbstractEventLoop


class _ErrorRecords(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def served() -> Iterator[_Served]:
    """The dispatcher and server on their own event loop thread, for the whole module."""
    handler = _ErrorRecords()
    logging.getLogger().addHandler(handler)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="rpc-under-test")
    thread.start()
    with short_tmp() as workdir, structlog.testing.capture_logs() as logs:
        db = Database(workdir / "fuzz.db")
        events = EventBus()
        services = build_services(Config(), db, events, control=_Control(db, events))
        dispatcher = Dispatcher(lambda: {m.name: m for m in daemon_methods.METHODS}, services)
        listener = SocketListener(workdir / "fuzz.sock", mode=0o600)
        server = RpcServer(dispatcher, listener=listener, policy=AccessPolicy(), idle_timeout=60.0)

        async def start() -> None:
            await listener.open()
            await db.open()
            await server.open()

        async def stop() -> None:
            await server.close()
            await db.close()
            await listener.close()

        asyncio.run_coroutine_threadsafe(start(), loop).result(30)
        try:
            yield _Served(server.path, loop)
        finally:
            asyncio.run_coroutine_threadsafe(stop(), loop).result(30)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(30)
            loop.close()
            logging.getLogger().removeHandler(handler)
    unhandled = [e for e in logs if e.get("log_level") in ("error", "critical", "exception")]
    assert not unhandled, unhandled[:5]
    assert not handler.records, [r.getMessage() for r in handler.records[:5]]


# -- the oracle: what the answer to one line must be -------------------------------------

Expected = tuple[str, Any]  # ("error", (codes allowed, id)) or ("result-or-invalid-params", id)


def _valid_id(value: Any) -> bool:
    return value is None or (isinstance(value, str | int | float) and not isinstance(value, bool))


def _expect_one(obj: Any) -> Expected | None:
    if not isinstance(obj, dict):
        return ("error", ({wire.INVALID_REQUEST}, None))
    readable_id = obj.get("id") if _valid_id(obj.get("id")) else None
    params_ok = "params" not in obj or isinstance(obj["params"], dict | list)
    if (
        obj.get("jsonrpc") != "2.0"
        or not isinstance(obj.get("method"), str)
        or not params_ok
        or ("id" in obj and not _valid_id(obj["id"]))
    ):
        return ("error", ({wire.INVALID_REQUEST}, readable_id))
    if "id" not in obj:
        return None
    method, params = obj["method"], obj.get("params")
    if method not in KNOWN:
        return ("error", ({wire.METHOD_NOT_FOUND}, obj["id"]))
    if not params:
        return ("result", obj["id"])
    if method in NO_PARAMS:
        return ("error", ({wire.INVALID_PARAMS}, obj["id"]))
    return ("result-or-invalid-params", obj["id"])


def _expect_line(line: bytes) -> Expected | list[Expected] | None:
    if not line.strip(b" \t\r\n"):
        return None
    try:
        message = orjson.loads(line)
    except orjson.JSONDecodeError:
        return ("error", ({wire.PARSE_ERROR}, None))
    if isinstance(message, list):
        if not message:
            return ("error", ({wire.INVALID_REQUEST}, None))
        answers = [e for e in map(_expect_one, message) if e is not None]
        return answers or None
    return _expect_one(message)


def _check(expected: Expected, answer: Any) -> None:
    assert isinstance(answer, dict), answer
    assert answer.get("jsonrpc") == "2.0"
    kind, detail = expected
    if kind == "error":
        codes, request_id = detail
        assert "error" in answer, answer
        assert answer["error"]["code"] in codes, (answer, codes)
        assert isinstance(answer["error"]["message"], str)
        assert "Traceback" not in answer["error"]["message"]
    else:
        request_id = detail
        if kind == "result":
            assert "result" in answer, answer
        else:
            assert "result" in answer or answer["error"]["code"] == wire.INVALID_PARAMS, answer
    assert answer["id"] == request_id, (answer, request_id)
    assert isinstance(answer["id"], type(request_id)), (answer, request_id)


# -- the exchange ------------------------------------------------------------------------

_sentinels = itertools.count()


class _Clients:
    """A fuzzed connection and a bystander that must keep being served."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fuzzed = RawConnection(path)
        self.bystander = RawConnection(path)

    def run(self, payload: bytes) -> None:
        try:
            self._run(payload)
        except BaseException:
            # A failed example leaves answers unread: start the next one on clean connections.
            self.fuzzed.close()
            self.bystander.close()
            self.fuzzed = RawConnection(self.path)
            self.bystander = RawConnection(self.path)
            raise

    def _run(self, payload: bytes) -> None:
        lines = payload.split(b"\n")
        expected = [_expect_line(line) for line in lines]
        sentinel = f"sentinel-{next(_sentinels)}"
        self.fuzzed.send(payload + b"\n" + request("daemon.status", id=sentinel))
        for want in expected:
            if want is None:
                continue
            answer = self._answer()
            if isinstance(want, list):
                assert isinstance(answer, list), answer
                assert len(answer) == len(want), (answer, want)
                for one_want, one_answer in zip(want, answer, strict=True):
                    _check(one_want, one_answer)
            else:
                _check(want, answer)
        last = self._answer()
        assert last.get("id") == sentinel, ("an extra answer came back", last)
        self.bystander.send(request("daemon.status", id="bystander"))
        assert self.bystander.read()["id"] == "bystander"

    def _answer(self) -> Any:
        """The next answer, skipping ``event`` notifications (a fuzzed subscribe gets them)."""
        while True:
            message = self.fuzzed.read()
            if not (isinstance(message, dict) and message.get("method") == wire.EVENT_METHOD):
                return message


@pytest.fixture(scope="module")
def clients(served: _Served) -> Iterator[_Clients]:
    pair = _Clients(served.path)
    yield pair
    pair.fuzzed.close()
    pair.bystander.close()


_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_methods = st.sampled_from(sorted(KNOWN)) | st.text(max_size=20) | _values
_params = (
    st.dictionaries(
        st.sampled_from(["topics", "x", "limit"]) | st.text(max_size=6), _values, max_size=3
    )
    | st.lists(_values, max_size=3)
    | st.just({})
    | st.just([])
    | _values
)
_ids = st.integers(-(10**6), 10**6) | st.text(max_size=10) | st.none() | _values
_requests = st.fixed_dictionaries(
    {},
    optional={
        "jsonrpc": st.just("2.0") | st.just("2.0") | _values,
        "method": _methods,
        "params": _params,
        "id": _ids,
    },
)
# Requests that pass the envelope checks reach the method table: drawn as often as the
# random objects around them, so every answer kind (result, unknown method, bad params) comes
# up in every run rather than now and then.
_well_formed = st.fixed_dictionaries(
    {"jsonrpc": st.just("2.0"), "method": st.sampled_from(sorted(KNOWN)) | st.text(max_size=20)},
    optional={"params": _params, "id": _ids},
)
_messages = (
    _well_formed | _requests | st.lists(_well_formed | _requests | _values, max_size=6) | _values
)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@pytest.mark.slow
@given(messages=st.lists(_messages, min_size=1, max_size=4))
def test_random_json_values(clients: _Clients, messages: list[Any]) -> None:
    """Random JSON texts, one per line: each gets the answer the spec prescribes."""
    payload = b"\n".join(orjson.dumps(m) for m in messages)
    clients.run(payload)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    payload=st.binary(max_size=200)
    | st.lists(
        st.sampled_from(
            [
                b"{",
                b"}",
                b"[",
                b"]",
                b'"',
                b":",
                b",",
                b"\\",
                b"\n",
                b"\r",
                b" ",
                b"\x00",
                b"\xff",
                b'"jsonrpc"',
                b'"2.0"',
                b'"method"',
                b'"id"',
                b'"params"',
                b"1",
                b"null",
                b"\xc3\xa4",
                b'"daemon.status"',
                b"\xed\xa0\x80",
            ]
        ),
        max_size=40,
    ).map(b"".join)
)
def test_random_bytes(clients: _Clients, payload: bytes) -> None:
    """Random bytes, including broken UTF-8 and stray newlines: every complete line is
    answered exactly once (a parse error unless it happens to be valid), blank lines never."""
    clients.run(payload)
