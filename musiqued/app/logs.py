"""structlog set-up: console lines on a terminal, logfmt or JSON otherwise, journald natively.

Everything goes through the standard library's logging, so one handler decides the target.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any, Literal

import structlog

Target = Literal["auto", "console", "logfmt", "json", "journal"]

SECRET_MARKERS = ("api_key", "api_secret", "session_key", "client_secret", "token", "password")


def _redact_secrets(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    for key in list(event_dict):
        lowered = key.lower()
        if any(marker in lowered for marker in SECRET_MARKERS) and event_dict[key]:
            event_dict[key] = "********"
    return event_dict


def stderr_is_journal() -> bool:
    """True when systemd connected stderr to the journal (``$JOURNAL_STREAM`` matches)."""
    expected = os.environ.get("JOURNAL_STREAM", "")
    if not expected:
        return False
    try:
        info = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError):
        return False
    return expected == f"{info.st_dev}:{info.st_ino}"


def resolve_target(target: Target) -> Target:
    if target != "auto":
        return target
    if stderr_is_journal():
        return "journal"
    return "console" if sys.stderr.isatty() else "logfmt"


SHARED_PROCESSORS: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    _redact_secrets,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def _handler_for(target: Target) -> logging.Handler:
    if target == "journal":
        from musiqued.app.journal import JournalHandler

        return JournalHandler()
    renderer: Any
    if target == "json":
        renderer = structlog.processors.JSONRenderer()
    elif target == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    else:
        renderer = structlog.processors.LogfmtRenderer(
            key_order=["timestamp", "level", "event", "logger"], drop_missing=True
        )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=SHARED_PROCESSORS,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    return handler


def _callsite_adder(chosen: Target) -> Any:
    """journald gets CODE_FILE/CODE_LINE/CODE_FUNC; other targets skip the cost."""
    if chosen != "journal":
        return _noop
    return structlog.processors.CallsiteParameterAdder(
        {
            structlog.processors.CallsiteParameter.PATHNAME,
            structlog.processors.CallsiteParameter.LINENO,
            structlog.processors.CallsiteParameter.FUNC_NAME,
        }
    )


def configure_logging(target: Target = "auto", level: str = "info") -> Target:
    """Configure structlog and the root logger; returns the target chosen."""
    chosen = resolve_target(target)
    structlog.configure(
        processors=[
            *SHARED_PROCESSORS,
            _callsite_adder(chosen),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(_handler_for(chosen))
    root.setLevel(level.upper())
    for noisy in ("aiosqlite", "asyncio", "spotipy", "pylast", "urllib3", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return chosen


def _noop(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    return event_dict
