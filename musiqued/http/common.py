"""What every part of the HTTP front end shares: JSON errors and parameter parsing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError

from musiqued.errors import (
    BadFileError,
    ConflictError,
    MusiqueError,
    NotConfiguredError,
    NotFoundError,
    StorageFullError,
    UpstreamError,
)
from musiqued.services.answers import AnswerBudget

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ANSWER_TAKEN_S = 30.0
"""A client must take a list answer within this; one that does not read loses its
connection (and what it held)."""
M = TypeVar("M", bound=BaseModel)

STATUS_OF: tuple[tuple[type[MusiqueError], int], ...] = (
    (NotFoundError, 404),
    (ConflictError, 409),
    (NotConfiguredError, 503),
    (UpstreamError, 502),
    (BadFileError, 422),
    (StorageFullError, 507),
)


class HttpProblem(Exception):
    """A request refused with ``status`` and ``detail`` (any text: it goes in the JSON body)."""

    def __init__(
        self, status: int, detail: str, *, headers: Mapping[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = dict(headers or {})
        self.extra = extra


def error(status: int, detail: str, **extra: Any) -> web.Response:
    """Every error is ``{"detail": ...}`` (the original API's shape), plus what helps."""
    return web.json_response({"detail": detail, **extra}, status=status)


def status_of(exc: MusiqueError) -> int:
    return next((code for cls, code in STATUS_OF if isinstance(exc, cls)), 500)


def query_bool(value: str, name: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise HttpProblem(422, f"{name} must be true or false, not {value!r}")


def query_int(value: str, name: str, minimum: int, maximum: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise HttpProblem(422, f"{name} must be an integer") from None
    if not minimum <= number <= maximum:
        raise HttpProblem(422, f"{name} must be from {minimum} to {maximum}")
    return number


def validated(model: type[M], raw: Mapping[str, Any], context: Any = None) -> M:
    """``raw`` checked by the same params model as the RPC method: 422 with the reasons
    (``context``: the model validators' context, as the RPC dispatcher gives it)."""
    try:
        return model.model_validate(dict(raw), context=context)
    except ValidationError as exc:
        parts = []
        for item in exc.errors()[:3]:
            where = ".".join(str(p) for p in item["loc"]) or "body"
            reason = "unknown parameter" if item["type"] == "extra_forbidden" else item["msg"]
            parts.append(f"{where}: {reason.removeprefix('Value error, ')}")
        raise HttpProblem(422, "; ".join(parts)) from None


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object; an empty body is ``{}``.

    Not ``can_read_body``: the limits middleware has read the body already (aiohttp keeps it)."""
    if not request.body_exists:
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise HttpProblem(400, "the body is not JSON") from None
    if not isinstance(body, dict):
        raise HttpProblem(422, "the body must be a JSON object")
    return body


async def bulk_json(
    request: web.Request, answers: AnswerBudget, produce: Callable[[], Awaitable[Any]]
) -> web.StreamResponse:
    """A list answer (``services.answers``): built in turn, counted until the client took
    it, written out here so that a client that does not read is cut off."""
    async with answers.turn(request.remote or "?"):
        if request.transport is None or request.transport.is_closing():
            return web.Response(status=204)  # its turn came after it left: nobody to answer
        body = orjson.dumps(await produce())
    response = web.Response(body=body, content_type="application/json")
    answers.hold(len(body))
    try:
        async with asyncio.timeout(ANSWER_TAKEN_S):
            await response.prepare(request)
            await response.write_eof()
    except TimeoutError:
        if request.transport is not None:
            request.transport.abort()
    except ConnectionError:
        pass  # the client left: nobody to answer
    finally:
        answers.release(len(body))
    return response
