"""OpenAI-compatible chat completions over aiohttp (Infomaniak's EurIA, or any such server).

``[ai] api_url`` is the full endpoint URL (EurIA:
``https://api.infomaniak.com/1/ai/{product_id}/openai/chat/completions``); the key goes in
``Authorization: Bearer``. One call, no retries here: the enricher owns retries and pacing
(``[ai] requests_per_second``), so a 429's ``Retry-After`` never holds a coroutine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from musiqued.config import AiConfig
from musiqued.errors import FatalUpstreamError, TransientUpstreamError
from musiqued.upstream.http_errors import (
    HttpStatusErrors,
    network_failures,
    read_at_most,
    retry_after_seconds,
)

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
    truncated: bool = False


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


MAX_BODY_BYTES = 1024 * 1024
"""A completion body longer than this is refused unread (a description is a few hundred
characters; a body of megabytes is a broken or hostile endpoint)."""
TRUNCATION_MARK = " …"
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
"""Control characters (C0 but the newline, DEL, C1) and bidi controls: never part of a
description, and some would act on a terminal."""


def clean_description(text: str, max_chars: int) -> tuple[str, bool]:
    """``text`` without control characters, cut on a word to at most ``max_chars`` (a mark
    shows the cut); and whether it was cut."""
    text = _CONTROL.sub("", text).strip()
    if len(text) <= max_chars:
        return text, False
    room = max_chars - len(TRUNCATION_MARK)
    cut = text[:room]
    space = cut.rfind(" ")
    if space > room // 2:
        cut = cut[:space]
    return cut.rstrip() + TRUNCATION_MARK, True


def parse_completion(body: bytes, fallback_model: str, max_chars: int) -> Completion:
    try:
        data: Any = orjson.loads(body)
        content = data["choices"][0]["message"]["content"]
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError) as exc:
        raise TransientUpstreamError(
            f"the AI endpoint sent a malformed completion ({exc.__class__.__name__})",
            kind="malformed",
            service="ai",
        ) from None
    if content is not None and not isinstance(content, str):
        raise FatalUpstreamError(
            f"the AI endpoint sent a completion whose content is not text "
            f"({type(content).__name__})",
            kind="malformed",
            service="ai",
        )
    text, cut = clean_description(content or "", max_chars)
    if not text:
        raise TransientUpstreamError(
            "the AI endpoint sent an empty completion", kind="malformed", service="ai"
        )
    model = data.get("model")
    return Completion(
        text=text, model=model if isinstance(model, str) else fallback_model, truncated=cut
    )


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
        with network_failures(
            "ai",
            timeout=f"the AI endpoint did not answer within {self._timeout:g} s",
            unreachable="cannot reach the AI endpoint",
        ):
            # Never follow a redirect: the key would go wherever it points.
            async with self._session.post(
                self.config.api_url, data=payload, headers=headers, allow_redirects=False
            ) as response:
                status = response.status
                body = await read_at_most(response, MAX_BODY_BYTES + 1)
                retry_after = response.headers.get("Retry-After")
        if 300 <= status < 400:
            raise TransientUpstreamError(
                f"the AI endpoint answered HTTP {status}, a redirect "
                "(not followed: check ai.api_url)",
                kind="redirect",
                service="ai",
                status=status,
            )
        if status >= 400:
            raise _HTTP_ERRORS.error(
                status, retry_after=retry_after_seconds(retry_after), detail=_message(body)
            )
        if len(body) > MAX_BODY_BYTES:
            raise FatalUpstreamError(
                f"the AI endpoint sent more than {MAX_BODY_BYTES // 1024} KiB for one completion",
                kind="malformed",
                service="ai",
            )
        return parse_completion(body, self.config.model, self.config.max_description_chars)
