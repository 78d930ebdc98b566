"""A simulated OpenAI-compatible chat-completions endpoint (EurIA speaks the same API).

``POST …/chat/completions`` (any path ending so, e.g. EurIA's
``/1/ai/{product_id}/openai/chat/completions``) with ``{model, messages, …}`` and
``Authorization: Bearer KEY`` answers ``{id, object: "chat.completion", created, model,
choices: [{index, message: {role, content}, finish_reason}], usage}``. Errors have
OpenAI's shape ``{"error": {message, type, param, code}}``: 401 bad key, 404 unknown model,
400 bad request. The reply is written from the facts in the prompt's ``Key: value`` lines,
so tests can see that what the daemon stores came from what it sent.

Admin API (JSON): ``GET /admin/stats``, ``GET /admin/prompts`` (the messages received),
``POST /admin/faults`` (see ``webfaults.admin_faults``), ``POST /admin/content``
``{"content": X}`` (every answer's content is X, any JSON value; ``{}`` goes back to normal).
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from typing import Any

import orjson
from aiohttp import web

from musiqued.sim.webfaults import ServiceFaults, admin_faults, fault_response

EURIA_PATH = "/1/ai/{product_id}/openai/chat/completions"
_FACT = re.compile(r"^\s*([A-Za-z][A-Za-z ]*):\s*(.+?)\s*$", re.MULTILINE)


class AiSim:
    def __init__(self, api_key: str = "simaikey", models: tuple[str, ...] = ("sim-llm",)) -> None:
        self.api_key = api_key
        self.models = models
        self.faults = ServiceFaults()
        self._lock = threading.Lock()
        self.prompts: list[list[dict[str, str]]] = []
        self.requests: list[float] = []
        self.content: Any = None
        self.overridden = False
        """When set, every answer's ``message.content`` is ``content`` (any JSON value:
        hostile answers such as a huge text, an object, markup and escape bytes)."""

    def set_content(self, content: Any, *, overridden: bool = True) -> None:
        with self._lock:
            self.content, self.overridden = content, overridden

    def record(self, messages: list[dict[str, str]]) -> None:
        with self._lock:
            self.prompts.append(messages)

    def prompt_log(self) -> list[list[dict[str, str]]]:
        with self._lock:
            return list(self.prompts)

    def answer(self, model: str, messages: list[dict[str, str]]) -> dict[str, Any]:
        prompt = "\n".join(m.get("content", "") for m in messages if m.get("role") == "user")
        facts = {key.strip().lower(): value for key, value in _FACT.findall(prompt)}
        artist = facts.get("artist", "an unknown artist")
        album = facts.get("album", "This record")
        parts = [f"{album} is an album by {artist}."]
        if "year" in facts:
            parts.append(f"It came out in {facts['year']}.")
        if "tracks listened" in facts:
            first = facts["tracks listened"].split(";")[0].split(" (")[0]
            parts.append(f"Your most played track on it is {first}.")
        if "last.fm summary" in facts or "last fm summary" in facts:
            parts.append("Last.fm's listeners describe it warmly.")
        content: Any = " ".join(parts)
        with self._lock:
            if self.overridden:
                content = self.content
        words = len(prompt.split())
        return {
            "id": f"chatcmpl-{secrets.token_hex(12)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": words,
                "completion_tokens": len(str(content).split()),
                "total_tokens": words + len(str(content).split()),
            },
        }


def _error(status: int, message: str, kind: str, code: str | None) -> web.Response:
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


def make_app(sim: AiSim) -> web.Application:
    async def completions(request: web.Request) -> web.StreamResponse:
        if not request.path.endswith("/chat/completions"):
            return _error(404, "Not found", "invalid_request_error", None)
        fault = sim.faults.draw()
        if fault is not None:
            body = orjson.dumps(
                {
                    "error": {
                        "message": "Server error",
                        "type": "server_error",
                        "param": None,
                        "code": None,
                    }
                }
            )
            return fault_response(request, fault, body)
        auth = request.headers.get("Authorization", "")
        if sim.api_key and auth != f"Bearer {sim.api_key}":
            return _error(
                401, "Incorrect API key provided", "invalid_request_error", "invalid_api_key"
            )
        try:
            data = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return _error(400, "We could not parse the JSON body", "invalid_request_error", None)
        messages = data.get("messages") if isinstance(data, dict) else None
        model = data.get("model") if isinstance(data, dict) else None
        if not isinstance(messages, list) or not messages or not isinstance(model, str):
            return _error(400, "model and messages are required", "invalid_request_error", None)
        if sim.models and model not in sim.models:
            return _error(
                404,
                f"The model `{model}` does not exist",
                "invalid_request_error",
                "model_not_found",
            )
        sim.record(messages)
        return web.Response(
            body=orjson.dumps(sim.answer(model, messages)), content_type="application/json"
        )

    async def stats(_: web.Request) -> web.Response:
        return web.json_response(
            {"completions": len(sim.prompt_log()), "faults": dict(sim.faults.stats)}
        )

    async def prompts(_: web.Request) -> web.Response:
        return web.json_response(sim.prompt_log())

    async def faults(request: web.Request) -> web.Response:
        return await admin_faults(request, sim.faults)

    async def content(request: web.Request) -> web.Response:
        data = await request.json()
        if not isinstance(data, dict):
            return web.json_response({"error": "a JSON object is expected"}, status=400)
        sim.set_content(data.get("content"), overridden="content" in data)
        return web.json_response({"overridden": sim.overridden})

    app = web.Application()
    app.router.add_get("/admin/stats", stats)
    app.router.add_post("/admin/content", content)
    app.router.add_get("/admin/prompts", prompts)
    app.router.add_post("/admin/faults", faults)
    app.router.add_post("/{tail:.*}", completions)
    return app
