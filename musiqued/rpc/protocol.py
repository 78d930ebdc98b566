"""JSON-RPC 2.0 envelopes and errors. Knows nothing of sockets or of what methods do."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from musiqued import wire

Id = str | int | float | None


class RpcError(Exception):
    """An error object to send back; ``data.kind`` is a stable, finer-grained name."""

    code = wire.INTERNAL_ERROR
    default_message = "internal error"

    def __init__(self, message: str | None = None, *, kind: str | None = None, **data: Any) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)
        self.data: dict[str, Any] = dict(data)
        if kind is not None:
            self.data["kind"] = kind

    def to_dict(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data:
            error["data"] = self.data
        return error


class ParseError(RpcError):
    code = wire.PARSE_ERROR
    default_message = "parse error"


class InvalidRequest(RpcError):
    code = wire.INVALID_REQUEST
    default_message = "invalid request"


class MethodNotFound(RpcError):
    code = wire.METHOD_NOT_FOUND
    default_message = "method not found"


class InvalidParams(RpcError):
    code = wire.INVALID_PARAMS
    default_message = "invalid params"


class InternalError(RpcError):
    code = wire.INTERNAL_ERROR


class Forbidden(RpcError):
    code = wire.FORBIDDEN
    default_message = "forbidden"


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    params: dict[str, Any] | list[Any] | None
    id: Id
    is_notification: bool


def _is_valid_id(value: Any) -> bool:
    return value is None or (isinstance(value, str | int | float) and not isinstance(value, bool))


def parse_request(obj: Any) -> Request:
    """Validate one request object; raises ``InvalidRequest`` (with the id, if usable)."""
    if not isinstance(obj, dict):
        raise InvalidRequest("request must be an object")
    if obj.get("jsonrpc") != "2.0":
        raise InvalidRequest('"jsonrpc" must be exactly "2.0"')
    method = obj.get("method")
    if not isinstance(method, str):
        raise InvalidRequest('"method" must be a string')
    if "params" in obj and not isinstance(obj["params"], dict | list):
        raise InvalidRequest('"params" must be an object or an array')
    if "id" in obj and not _is_valid_id(obj["id"]):
        raise InvalidRequest('"id" must be a string, a number or null')
    return Request(
        method=method,
        params=obj.get("params"),
        id=obj.get("id"),
        is_notification="id" not in obj,
    )


def request_id_of(obj: Any) -> Id:
    """The id to answer an invalid request with: its own if readable, else null."""
    if isinstance(obj, dict) and _is_valid_id(obj.get("id")):
        return obj.get("id")
    return None


def success(request_id: Id, result: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "result": result, "id": request_id}


def failure(request_id: Id, error: RpcError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "error": error.to_dict(), "id": request_id}


def notification(method: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": method, "params": params}


def decode(line: bytes) -> Any:
    """Parse one line; raises ``ParseError``."""
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ParseError(f"parse error: {exc}") from None


def encode(message: Any) -> bytes:
    return orjson.dumps(message, option=orjson.OPT_NON_STR_KEYS) + b"\n"
