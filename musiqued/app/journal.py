"""Logging to journald through its native protocol, with structured fields.

The wire format (``KEY=value`` lines, a length-prefixed form for values with newlines, a
sealed memfd passed with ``SCM_RIGHTS`` for an entry larger than a datagram) is
``logging_journald.JournaldTransport``'s; the field mapping is ours:

=====================  =========================================================================
journal field          from
=====================  =========================================================================
``MESSAGE``            the event text, then ``key=value`` for each field, then any traceback
``PRIORITY``           the level: critical 2, error 3, warning 4, info 6, debug 7
``SYSLOG_IDENTIFIER``  ``musiqued``
``SYSLOG_FACILITY``    3 (daemon)
``CODE_FILE/LINE/FUNC`` where the log call was made
``MUSIQUE_EVENT``      the event text as a slug: ``"job created"`` → ``job_created``
``MUSIQUE_LOGGER``     the logger's name (``musiqued.tracker``)
``MUSIQUE_<KEY>``      every other field, its name upper-cased (``job_id`` → ``MUSIQUE_JOB_ID``)
``MUSIQUE_EXCEPTION``  ``Type: message`` of a logged exception
=====================  =========================================================================

So ``journalctl MUSIQUE_JOB_ID=7`` or ``journalctl MUSIQUE_EVENT=job_failed`` select entries.
Values are strings; lists and dicts are JSON. Secrets are scrubbed (``logs.scrub``) before
anything is sent. When journald cannot be reached the entry goes to stderr instead.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from logging_journald import JournaldTransport

IDENTIFIER = "musiqued"
FIELD_PREFIX = "MUSIQUE_"
SOCKET_PATH = Path("/run/systemd/journal/socket")
LOG_DAEMON = 3

# journald drops field names that are not [A-Z0-9_], start with "_" or exceed 64 bytes.
_NOT_FIELD_CHAR = re.compile(r"[^A-Z0-9_]+")
_NOT_SLUG_CHAR = re.compile(r"[^a-z0-9]+")
_MAX_FIELD_NAME = 64
# Keys that become journal fields of their own, or are journald's job (the timestamp).
_CONSUMED = frozenset(
    {"event", "level", "timestamp", "logger", "exc_info", "exception", "stack_info"}
    | {"pathname", "lineno", "func_name", "_record", "_from_structlog"}
)
_MESSAGE_VALUE_MAX = 200

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
Processor = Callable[[Any, str, dict[str, Any]], dict[str, Any]]


def priority(levelno: int) -> int:
    """syslog priority of a ``logging`` level (custom levels fall to the next one down)."""
    if levelno >= logging.CRITICAL:
        return 2
    if levelno >= logging.ERROR:
        return 3
    if levelno >= logging.WARNING:
        return 4
    if levelno >= logging.INFO:
        return 6
    return 7


def field_name(key: str) -> str:
    """``job_id`` → ``MUSIQUE_JOB_ID``; anything journald would refuse becomes ``_``."""
    name = FIELD_PREFIX + _NOT_FIELD_CHAR.sub("_", key.upper()).strip("_")
    return name[:_MAX_FIELD_NAME]


def event_slug(text: str) -> str:
    """``"tracker poll failing; backing off"`` → ``tracker_poll_failing_backing_off``."""
    return _NOT_SLUG_CHAR.sub("_", text.lower()).strip("_")[:_MAX_FIELD_NAME] or "log"


def field_value(value: Any) -> str | bytes:
    if isinstance(value, str | bytes):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Path):
        return str(value)
    if isinstance(value, dict | list | tuple | set | frozenset):
        items = sorted(value) if isinstance(value, set | frozenset) else value
        return json.dumps(items, default=str, ensure_ascii=False, sort_keys=True)
    return str(value)


def _logfmt_value(value: str) -> str:
    if len(value) > _MESSAGE_VALUE_MAX:
        value = value[:_MESSAGE_VALUE_MAX] + "…"
    if value and not any(c in value for c in ' ="\n\t\\'):
        return value
    return json.dumps(value, ensure_ascii=False)


class JournalHandler(logging.Handler):
    """A ``logging`` handler that sends structlog event dicts to journald as fields.

    ``pre_chain`` runs on records that did not come from structlog (aiohttp, asyncio), the
    way ``structlog.stdlib.ProcessorFormatter``'s ``foreign_pre_chain`` does; ``scrub``
    is applied to every value sent.
    """

    def __init__(
        self,
        *,
        socket_path: Path = SOCKET_PATH,
        pre_chain: Sequence[Processor] = (),
        scrub: Callable[[str], str] = lambda text: text,
    ) -> None:
        super().__init__()
        # Unconnected: each send addresses the path, so a journald restarted (or started
        # after us) is reached without reconnecting, and a missing journald is not fatal here.
        self.transport = JournaldTransport(socket_path=socket_path, connected=False)
        self._pre_chain = tuple(pre_chain)
        self._scrub = scrub
        self._unreachable = False

    def emit(self, record: logging.LogRecord) -> None:
        try:
            fields = list(self.fields(record))
        except Exception:
            self.handleError(record)
            return
        try:
            self.transport.send(fields)
        except OSError as exc:
            self._fall_back(fields, exc)
            return
        self._unreachable = False

    def close(self) -> None:
        self.transport.socket.close()
        super().close()

    def fields(self, record: logging.LogRecord) -> Iterator[tuple[str, str | bytes]]:
        """The journal fields of one record, secrets scrubbed."""
        event_dict = self._event_dict(record)
        text = str(event_dict.get("event", ""))
        extra = {
            key: field_value(value)
            for key, value in event_dict.items()
            if key not in _CONSUMED and value is not None
        }
        exc_info = _exc_info(event_dict.get("exc_info"), record)
        message = " ".join(
            [text]
            + [
                f"{key}={_logfmt_value(value if isinstance(value, str) else repr(value))}"
                for key, value in extra.items()
            ]
        )
        if exc_info is not None:
            message += "\n" + "".join(traceback.format_exception(*exc_info)).rstrip()
        scrub = self._scrub
        yield "MESSAGE", scrub(message)
        yield "PRIORITY", str(priority(record.levelno))
        yield "SYSLOG_IDENTIFIER", IDENTIFIER
        yield "SYSLOG_FACILITY", str(LOG_DAEMON)
        yield "CODE_FILE", str(event_dict.get("pathname", record.pathname))
        yield "CODE_LINE", str(event_dict.get("lineno", record.lineno))
        yield "CODE_FUNC", str(event_dict.get("func_name", record.funcName))
        yield "MUSIQUE_EVENT", event_slug(scrub(text))
        yield "MUSIQUE_LOGGER", str(event_dict.get("logger", record.name))
        if exc_info is not None:
            summary = traceback.format_exception_only(exc_info[0], exc_info[1])[-1].strip()
            yield "MUSIQUE_EXCEPTION", scrub(summary)
        for key, value in extra.items():
            name = field_name(key)
            if name in ("MUSIQUE_EVENT", "MUSIQUE_LOGGER", "MUSIQUE_EXCEPTION"):
                name += "_FIELD"
            yield name, scrub(value) if isinstance(value, str) else value

    def _event_dict(self, record: logging.LogRecord) -> dict[str, Any]:
        """structlog's event dict (``wrap_for_formatter`` put it in ``msg``), or one built
        from a plain stdlib record and run through the pre-chain."""
        if isinstance(record.msg, dict) and hasattr(record, "_logger"):
            return dict(record.msg)
        event_dict: dict[str, Any] = {
            "event": record.getMessage(),
            "_record": record,
            "_from_structlog": False,
        }
        if record.exc_info:
            event_dict["exc_info"] = record.exc_info
        for processor in self._pre_chain:
            event_dict = processor(None, record.levelname.lower(), event_dict)
        return event_dict

    def _fall_back(self, fields: list[tuple[str, str | bytes]], exc: OSError) -> None:
        """journald is not there: say so once, then write the entries to stderr."""
        if not self._unreachable:
            self._unreachable = True
            sys.stderr.write(
                f"musiqued: journald unreachable at {self.transport.socket_path} "
                f"({exc.strerror or exc}); logging to stderr\n"
            )
        message = next((value for key, value in fields if key == "MESSAGE"), "")
        if isinstance(message, bytes):
            message = message.decode("utf-8", "replace")
        sys.stderr.write(message + "\n")
        sys.stderr.flush()


def _exc_info(value: Any, record: logging.LogRecord) -> ExcInfo | None:
    """structlog's ``exc_info=True`` means the exception being handled right now."""
    if isinstance(value, BaseException):
        return type(value), value, value.__traceback__
    if isinstance(value, tuple) and len(value) == 3 and value[0] is not None:
        return value
    if value is True:
        current = sys.exc_info()
        if current[0] is not None:
            return current
    if record.exc_info and record.exc_info[0] is not None:
        return record.exc_info
    return None
