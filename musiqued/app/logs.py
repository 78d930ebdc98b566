"""structlog set-up: console lines on a terminal, logfmt or JSON otherwise, journald natively.

Everything goes through the standard library's logging, so one handler decides the target.
"""

from __future__ import annotations

import collections
import logging
import os
import sys
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal

import structlog

from musiqued.config import SECRET_KEYS

if TYPE_CHECKING:
    from musiqued.config import Config

Target = Literal["auto", "console", "logfmt", "json", "journal"]

# Field names whose values are secret wherever they appear (``lastfm_api_key``, ``headers``...).
SECRET_MARKERS = (
    "api_key",
    "api_secret",
    "session_key",
    "client_secret",
    "client_id",
    "secret",
    "token",
    "password",
    "authorization",
    "api_sig",
)
MASK = "********"
# The secret values themselves: an error message or a URL that quotes one (Last.fm takes
# api_key in the query string) is scrubbed wherever it appears. Configured ones are replaced
# on reload; obtained ones (a session key from `musiquectl lastfm login`) stay for the
# process's life.
_configured_secrets: set[str] = set()
_obtained_secrets: set[str] = set()
_secret_values: list[str] = []


def _worth_masking(value: str) -> bool:
    return len(value) >= 4


def _rebuild_secrets() -> None:
    # Longest first, so a secret that contains another is masked whole.
    _secret_values[:] = sorted(_configured_secrets | _obtained_secrets, key=len, reverse=True)


def register_secrets(values: Iterable[str]) -> None:
    """Remember the configured secrets so no log line ever contains them (call on reload)."""
    _configured_secrets.clear()
    _configured_secrets.update(v for v in values if _worth_masking(v))
    _rebuild_secrets()


def register_obtained_secret(value: str) -> None:
    """Mask a secret the daemon obtained itself (a Last.fm session key), from now on."""
    if _worth_masking(value) and value not in _obtained_secrets:
        _obtained_secrets.add(value)
        _rebuild_secrets()


def register_config_secrets(config: Config) -> None:
    register_secrets(
        getattr(getattr(config, section), key).get_secret_value()
        for section, keys in SECRET_KEYS.items()
        for key in keys
    )


def scrub(text: str) -> str:
    for secret in _secret_values:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def _scrubbed(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: (MASK if _is_secret_key(k) and v else _scrubbed(v)) for k, v in value.items()}
    if type(value) in (list, tuple):  # not subclasses: a namedtuple cannot be rebuilt so
        return type(value)(_scrubbed(v) for v in value)
    return value


def _is_secret_key(key: object) -> bool:
    lowered = str(key).lower()
    return any(marker in lowered for marker in SECRET_MARKERS) and not lowered.endswith("_url")


def _redact_secrets(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    for key, value in list(event_dict.items()):
        if key in ("exc_info", "_record"):
            continue
        if _is_secret_key(key) and value:
            event_dict[key] = MASK
        else:
            event_dict[key] = _scrubbed(value)
    return event_dict


def _scrub_rendered(_: Any, __: str, rendered: Any) -> Any:
    """Last in the chain: a traceback rendered after redaction may still quote a secret."""
    return scrub(rendered) if isinstance(rendered, str) else rendered


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

        return JournalHandler(pre_chain=SHARED_PROCESSORS, scrub=scrub)
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
                _scrub_rendered,
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


class JobLogs(logging.Handler):
    """The daemon's recent log records of each job, kept in memory for the Settings page.

    A ``logging`` handler beside the one that writes the logs: it keeps exactly the records
    that pass the level and carry a ``job_id`` (as ``journalctl MUSIQUE_JOB_ID=N`` would show
    them), after secrets were redacted. Bounded: the newest ``per_job`` records of the
    ``max_jobs`` jobs that logged last; a restart forgets them (the journal keeps them).
    """

    def __init__(self, per_job: int = 500, max_jobs: int = 50) -> None:
        super().__init__()
        self._per_job = per_job
        self._max_jobs = max_jobs
        self._rings: collections.OrderedDict[int, collections.deque[dict[str, Any]]] = (
            collections.OrderedDict()
        )
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        event = record.msg
        if not isinstance(event, dict):
            return
        job_id = event.get("job_id")
        if not isinstance(job_id, int) or isinstance(job_id, bool):
            return
        entry = _job_record(event, record)
        with self._guard:
            ring = self._rings.get(job_id)
            if ring is None:
                ring = self._rings[job_id] = collections.deque(maxlen=self._per_job)
                while len(self._rings) > self._max_jobs:
                    self._rings.popitem(last=False)
            else:
                self._rings.move_to_end(job_id)
            ring.append(entry)

    def records(self, job_id: int) -> list[dict[str, Any]]:
        """The job's records, oldest first: ``{at, level, event, fields}``."""
        with self._guard:
            return list(self._rings.get(job_id, ()))


# Fields every record has, or that say which job it is: not repeated in ``fields``.
_RECORD_KEYS = frozenset(
    {"event", "level", "timestamp", "logger", "job_id", "exc_info", "stack_info"}
    | {"_record", "_from_structlog", "pathname", "lineno", "func_name"}
)


def _job_record(event: dict[str, Any], record: logging.LogRecord) -> dict[str, Any]:
    fields = {str(key): _plain(value) for key, value in event.items() if key not in _RECORD_KEYS}
    error = _exception_of(event.get("exc_info"), record)
    if error is not None:
        fields["exception"] = scrub(f"{type(error).__name__}: {error}")
    return {
        "at": event.get("timestamp"),
        "level": event.get("level", record.levelname.lower()),
        "event": scrub(str(event.get("event", ""))),
        "fields": fields,
    }


def _exception_of(exc_info: Any, record: logging.LogRecord) -> BaseException | None:
    """structlog's ``exc_info=True`` means the exception being handled right now."""
    if isinstance(exc_info, BaseException):
        return exc_info
    if isinstance(exc_info, tuple) and len(exc_info) == 3:
        return exc_info[1]  # type: ignore[no-any-return]
    if exc_info:
        return record.exc_info[1] if record.exc_info else sys.exc_info()[1]
    return None


def _plain(value: Any) -> Any:
    """A JSON value: what is not one becomes its text."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return scrub(str(value))


def configure_logging(
    target: Target = "auto", level: str = "info", *, job_logs: JobLogs | None = None
) -> Target:
    """Configure structlog and the root logger; returns the target chosen.

    ``job_logs``, when given, is added beside the target's handler: it keeps each job's
    recent records in memory."""
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
    if job_logs is not None:
        root.addHandler(job_logs)
    root.setLevel(level.upper())
    # pylast logs whole answers at debug level, session keys included; httpx2 is its client.
    for noisy in (
        "aiosqlite",
        "asyncio",
        "spotipy",
        "urllib3",
        "httpx",
        "httpx2",
        "httpcore2",
        "pylast",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return chosen


def _noop(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    return event_dict
