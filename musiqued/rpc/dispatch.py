"""Turns one decoded line into its answer: single calls and batches, errors mapped to codes.

One log line per call (method, duration, outcome) at debug, with the request id bound in
structlog's context so everything the call logs can be followed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson
import structlog
from pydantic import ValidationError

from musiqued import wire
from musiqued.errors import MusiqueError
from musiqued.rpc import protocol
from musiqued.rpc.protocol import RpcError
from musiqued.rpc.table import CallContext, CallerGone, Connection, Method, Peer
from musiqued.services.answers import AnswerBudget
from musiqued.services.facade import Services

log = structlog.get_logger("musiqued.rpc")
# structlog runs its processors before the stdlib level check; asking the stdlib logger
# first keeps the per-call line free when debug is off (the hot path at 10k calls/s).
_stdlib_log = logging.getLogger("musiqued.rpc")


def _params_error(exc: ValidationError) -> protocol.InvalidParams:
    parts = []
    names = []
    for error in exc.errors()[:3]:
        where = ".".join(str(p) for p in error["loc"]) or "params"
        reason = "unknown parameter" if error["type"] == "extra_forbidden" else error["msg"]
        names.append(where)
        parts.append(f"{where}: {reason.removeprefix('Value error, ')}")
    return protocol.InvalidParams(
        "invalid params: " + "; ".join(parts), kind="invalid_params", params=names
    )


def _too_large(request_id: protocol.Id) -> dict[str, Any]:
    return protocol.failure(
        request_id,
        protocol.InternalError(
            f"the answer would exceed {wire.MAX_ANSWER_BYTES // (1024 * 1024)} MiB; ask for "
            "less (a smaller limit, fewer requests in the batch, or page with history.list)",
            kind="answer_too_large",
        ),
    )


def _as_rpc_error(exc: MusiqueError) -> RpcError:
    error = RpcError(exc.message, kind=exc.kind)
    error.code = exc.code
    return error


class Dispatcher:
    def __init__(self, methods: Callable[[], Mapping[str, Method]], services: Services) -> None:
        """``methods`` gives the method table when the first line arrives: the methods'
        modules and params models load then, not with the daemon."""
        self._load_methods = methods
        self._loaded: Mapping[str, Method] | None = None
        self._services = services
        self._counter = 0

    @property
    def methods(self) -> Mapping[str, Method]:
        if self._loaded is None:
            self._loaded = self._load_methods()
        return self._loaded

    async def handle_line(self, line: bytes, connection: Connection, peer: Peer) -> bytes | None:
        """The bytes to send back for one line, or None (notifications only).

        What one line may cost is bounded: a batch holds at most ``MAX_BATCH`` requests, and
        an answer line at most ``MAX_ANSWER_BYTES``; a request whose answer would not fit is
        answered with an ``answer_too_large`` error instead (and, in a batch, the requests
        after it are not run).
        """
        try:
            message = protocol.decode(line)
        except RpcError as exc:
            return protocol.encode(protocol.failure(None, exc))
        if self._is_bulk(message):
            # While it waits for its turn the line is held as the bytes it came in: decoded,
            # a batch is a hundred objects more for the garbage collector to walk, for every
            # connection waiting.
            del message
            async with self._services.answers.turn(peer.uid):
                if connection.gone():
                    return None  # its turn came after it left: nobody to answer
                return await self._answer(protocol.decode(line), connection, peer)
        return await self._answer(message, connection, peer)

    @property
    def answers(self) -> AnswerBudget:
        return self._services.answers

    def _is_bulk(self, message: Any) -> bool:
        """Does the line hold a request whose answer grows with its parameters?"""
        items = message if isinstance(message, list) else (message,)
        for item in items[: wire.MAX_BATCH]:
            name = item.get("method") if isinstance(item, dict) else None
            method = self.methods.get(name) if isinstance(name, str) else None
            if method is not None and method.bulk:
                return True
        return False

    async def _answer(self, message: Any, connection: Connection, peer: Peer) -> bytes | None:
        if not isinstance(message, list):
            answer = await self._handle_one(message, connection, peer)
            if answer is None:
                return None
            part = self._encode(answer, wire.MAX_ANSWER_BYTES)
            if part is None:
                part = orjson.dumps(_too_large(answer.get("id")))
            return part + b"\n"
        if not message:
            return protocol.encode(protocol.failure(None, protocol.InvalidRequest("empty batch")))
        if len(message) > wire.MAX_BATCH:
            return protocol.encode(
                protocol.failure(
                    None,
                    protocol.InvalidRequest(
                        f"a batch holds at most {wire.MAX_BATCH} requests; this one has "
                        f"{len(message)}",
                        kind="batch_too_long",
                    ),
                )
            )
        parts: list[bytes] = []
        room = wire.MAX_ANSWER_BYTES - 2  # the brackets
        for item in message:
            if room <= 0:
                if isinstance(item, dict) and "id" in item:
                    parts.append(orjson.dumps(_too_large(protocol.request_id_of(item))))
                continue
            answer = await self._handle_one(item, connection, peer)
            if answer is None:
                continue
            part = self._encode(answer, room)
            if part is None:
                # What follows could not fit either: answered too large without being run.
                parts.append(orjson.dumps(_too_large(answer.get("id"))))
                room = 0
                continue
            room -= len(part) + 1
            parts.append(part)
        return b"[" + b",".join(parts) + b"]\n" if parts else None

    @staticmethod
    def _encode(answer: dict[str, Any], room: int | None) -> bytes | None:
        """One answer as JSON (no newline); None if over ``room`` bytes."""
        try:
            data = orjson.dumps(answer, option=orjson.OPT_NON_STR_KEYS)
        except TypeError:
            # A handler returned something JSON cannot carry: a bug, never the client's fault.
            log.exception("rpc result cannot be encoded")
            error = protocol.InternalError("internal error; see the daemon's log")
            return orjson.dumps(protocol.failure(answer.get("id"), error))
        if room is not None and len(data) > room:
            log.warning("rpc answer too large; refused", size=len(data), room=room)
            return None
        return data

    async def _handle_one(
        self, obj: Any, connection: Connection, peer: Peer
    ) -> dict[str, Any] | None:
        try:
            request = protocol.parse_request(obj)
        except RpcError as exc:
            return protocol.failure(protocol.request_id_of(obj), exc)
        self._counter += 1
        # The client's own string id ("cli:daemon.status#123.1") lets one call be followed
        # from the ctl to the daemon's log, as lightning-cli does.
        if isinstance(request.id, str) and request.id:
            request_id = request.id[:200]
        else:
            request_id = f"{peer.pid}:{request.method[:100]}#{self._counter}"
        started = time.perf_counter()
        outcome = "ok"
        structlog.contextvars.bind_contextvars(rpc_id=request_id)
        try:
            result = await self._call(
                request,
                CallContext(self._services, connection, peer, self.methods, request.id),
            )
        except RpcError as exc:
            outcome = f"error {exc.code}"
            return None if request.is_notification else protocol.failure(request.id, exc)
        except CallerGone:
            outcome = "caller gone"
            raise  # the connection ends; the server knows what to do
        finally:
            if _stdlib_log.isEnabledFor(logging.DEBUG):
                log.debug(
                    "rpc call",
                    method=request.method[:100],
                    duration_ms=round((time.perf_counter() - started) * 1000, 3),
                    outcome=outcome,
                    peer_uid=peer.uid,
                    notification=request.is_notification,
                )
            structlog.contextvars.unbind_contextvars("rpc_id")
        return None if request.is_notification else protocol.success(request.id, result)

    async def _call(self, request: protocol.Request, ctx: CallContext) -> Any:
        method = self.methods.get(request.method)
        if method is None:
            raise protocol.MethodNotFound(f"method not found: {request.method}")
        if method.streamed and request.is_notification:
            # Its answer is all it does, and a notification is never answered.
            raise protocol.InvalidRequest(f"{request.method} streams its answer; give it an id")
        raw = request.params
        if isinstance(raw, list):
            names = list(method.params.model_fields)
            if len(raw) > len(names):
                raise protocol.InvalidParams(
                    f"invalid params: {request.method} takes at most {len(names)} positional "
                    f"parameters, got {len(raw)}"
                )
            raw = dict(zip(names, raw, strict=False))
        try:
            params = method.params.model_validate(
                raw or {}, context={"zone": ctx.services.library.zone}
            )
        except ValidationError as exc:
            raise _params_error(exc) from None
        try:
            return await method.handler(ctx, params)
        except (RpcError, CallerGone):
            raise
        except MusiqueError as exc:
            raise _as_rpc_error(exc) from None
        except Exception:
            log.exception("rpc handler failed", method=request.method)
            raise protocol.InternalError("internal error; see the daemon's log") from None
