"""Turns one decoded line into its answer: single calls and batches, errors mapped to codes.

One log line per call (method, duration, outcome) at debug, with the request id bound in
structlog's context so everything the call logs can be followed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import structlog
from pydantic import ValidationError

from musiqued.errors import MusiqueError
from musiqued.rpc import protocol
from musiqued.rpc.protocol import RpcError
from musiqued.rpc.table import CallContext, Connection, Method, Peer
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


def _as_rpc_error(exc: MusiqueError) -> RpcError:
    error = RpcError(exc.message, kind=exc.kind)
    error.code = exc.code
    return error


class Dispatcher:
    def __init__(self, methods: Mapping[str, Method], services: Services) -> None:
        self._methods = methods
        self._services = services
        self._counter = 0

    @property
    def methods(self) -> Mapping[str, Method]:
        return self._methods

    async def handle_line(self, line: bytes, connection: Connection, peer: Peer) -> bytes | None:
        """The bytes to send back for one line, or None (notifications only)."""
        try:
            message = protocol.decode(line)
        except RpcError as exc:
            return protocol.encode(protocol.failure(None, exc))
        if isinstance(message, list):
            if not message:
                return protocol.encode(
                    protocol.failure(None, protocol.InvalidRequest("empty batch"))
                )
            answers = [await self._handle_one(item, connection, peer) for item in message]
            kept = [a for a in answers if a is not None]
            return self._encode(kept) if kept else None
        answer = await self._handle_one(message, connection, peer)
        return None if answer is None else self._encode(answer)

    @staticmethod
    def _encode(answer: Any) -> bytes:
        try:
            return protocol.encode(answer)
        except TypeError:
            # A handler returned something JSON cannot carry: a bug, never the client's fault.
            log.exception("rpc result cannot be encoded")
            error = protocol.InternalError("internal error; see the daemon's log")
            if isinstance(answer, list):
                return protocol.encode(
                    [protocol.failure(a.get("id"), error) for a in answer if isinstance(a, dict)]
                )
            return protocol.encode(protocol.failure(answer.get("id"), error))

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
                request, CallContext(self._services, connection, peer, request_id, self._methods)
            )
        except RpcError as exc:
            outcome = f"error {exc.code}"
            return None if request.is_notification else protocol.failure(request.id, exc)
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
        method = self._methods.get(request.method)
        if method is None:
            raise protocol.MethodNotFound(f"method not found: {request.method}")
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
            params = method.params.model_validate(raw or {})
        except ValidationError as exc:
            raise _params_error(exc) from None
        try:
            return await method.handler(ctx, params)
        except RpcError:
            raise
        except MusiqueError as exc:
            raise _as_rpc_error(exc) from None
        except Exception:
            log.exception("rpc handler failed", method=request.method)
            raise protocol.InternalError("internal error; see the daemon's log") from None
