"""OpenAI-compatible chat completions over aiohttp (Infomaniak's EurIA, or any such server).

``[ai] api_url`` is the full endpoint URL (EurIA:
``https://api.infomaniak.com/1/ai/{product_id}/openai/chat/completions``); the key goes in
``Authorization: Bearer``. One call, no retries here: the enricher owns retries and pacing
(``[ai] requests_per_second``), so a 429's ``Retry-After`` never holds a coroutine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from musiqued.config import AiConfig
from musiqued.errors import TransientUpstreamError
from musiqued.upstream.http_errors import HttpStatusErrors, retry_after_seconds

_HTTP_ERRORS = HttpStatusErrors(
    service="ai",
    name="the AI endpoint",
    rate_limited="asked us to slow down",
    credentials="the key",
    hint=": check ai.api_key",
)


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    model: str


def _message(body: bytes) -> str:
    """The ``error.message`` of an OpenAI-style error body, if there is one."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ""
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or "")[:200]
    return str(error or "")[:200]


def parse_completion(body: bytes, fallback_model: str) -> Completion:
    try:
        data: Any = orjson.loads(body)
        content = data["choices"][0]["message"]["content"]
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError) as exc:
        raise TransientUpstreamError(
            f"the AI endpoint sent a malformed completion ({exc.__class__.__name__})",
            kind="malformed",
            service="ai",
        ) from None
    text = str(content or "").strip()
    if not text:
        raise TransientUpstreamError(
            "the AI endpoint sent an empty completion", kind="malformed", service="ai"
        )
    return Completion(text=text, model=str(data.get("model") or fallback_model))


class AiClient:
    def __init__(self, config: AiConfig, *, timeout: float = 60.0) -> None:
        self.config = config
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        self.requests = 0

    async def open(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._timeout),
                headers={"User-Agent": "musiqued"},
            )

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def complete(
        self, messages: list[dict[str, str]], *, max_tokens: int = 400, temperature: float = 0.4
    ) -> Completion:
        if self._session is None:
            raise RuntimeError("AiClient.open() was not called")
        headers = {"Content-Type": "application/json"}
        key = self.config.api_key.get_secret_value()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        payload = orjson.dumps(
            {
                "model": self.config.model,
                "messages": messages,
                "max_tokens": max_tokens,
                "temperature": temperature,
            }
        )
        self.requests += 1
        try:
            async with self._session.post(
                self.config.api_url, data=payload, headers=headers
            ) as response:
                status = response.status
                body = await response.read()
                retry_after = response.headers.get("Retry-After")
        except TimeoutError:
            raise TransientUpstreamError(
                f"the AI endpoint did not answer within {self._timeout:g} s",
                kind="timeout",
                service="ai",
            ) from None
        except aiohttp.ClientError as exc:
            raise TransientUpstreamError(
                f"cannot reach the AI endpoint: {exc.__class__.__name__}",
                kind="connection",
                service="ai",
            ) from None
        if status >= 400:
            raise _HTTP_ERRORS.error(
                status, retry_after=retry_after_seconds(retry_after), detail=_message(body)
            )
        return parse_completion(body, self.config.model)
