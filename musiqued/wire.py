"""Protocol constants shared by the daemon and ``musiquectl``.

Standard library only: the client imports this on its start-up path.
"""

from __future__ import annotations

import os
from pathlib import Path

API_VERSION = 1
MAX_LINE_BYTES = 1024 * 1024
"""The longest request line the daemon reads."""
MAX_BATCH = 100
"""The most requests one batch may hold."""
MAX_ANSWER_BYTES = 8 * 1024 * 1024
"""The longest answer line the daemon builds (a batch's answers together)."""
MAX_LISTENS = 5000
"""The most listens one ``history.recent`` or ``history.list`` call returns."""
MAX_ALBUMS = 1000
"""The most albums one ``albums.list`` call returns."""
MAX_TOP = 100
"""The longest top-artists/albums/tracks lists ``stats.summary`` gives."""
MAX_QUERY_CHARS = 500
"""The longest search text (``albums.list`` ``query`` and ``artist``)."""

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
NOT_CONFIGURED = -32001
NOT_FOUND = -32002
CONFLICT = -32003
UPSTREAM_ERROR = -32004
FORBIDDEN = -32005

SYSTEM_SOCKET = Path("/run/musiqued/musiqued.sock")
EVENT_METHOD = "event"
STREAM_METHOD = "stream"
"""Notifications carrying part of a streamed answer: ``{"id": <the request's id>, "data": str}``;
the answer itself (the result or an error) follows the last of them."""
FILES_METHOD = "files.send"
"""The daemon's go-ahead for a file handover: ``{"id": <the request's id>, "count": n}``. The
client answers with one byte carrying its ``n`` descriptors (``SCM_RIGHTS``), nothing else."""
MAX_HANDED_FILES = 253
"""Linux's ``SCM_MAX_FD``: the most descriptors one message carries, so one call's files."""
FILES_WAIT_S = 10.0
"""How long the daemon waits for the descriptors after its go-ahead."""


def user_socket() -> Path | None:
    """The user daemon's socket under ``$XDG_RUNTIME_DIR``, if that variable is set."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    return Path(runtime) / "musiqued" / "musiqued.sock" if runtime else None


def discover_socket(explicit: str | None = None) -> Path:
    """Socket path: explicit, ``$MUSIQUED_SOCKET``, the user daemon's if present, the system's."""
    if explicit:
        return Path(explicit)
    from_env = os.environ.get("MUSIQUED_SOCKET")
    if from_env:
        return Path(from_env)
    user = user_socket()
    if user is not None and user.exists():
        return user
    return SYSTEM_SOCKET
