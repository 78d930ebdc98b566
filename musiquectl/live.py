"""A connection that outlives the daemon, for the commands that follow it (``watch``,
``status --watch``, following a job).

Like ``journalctl -f`` across a restart: when the connection is lost, a notice goes to stderr,
the socket is tried again (quickly at first, then every 2 s) until the daemon answers, the
same topics are subscribed again, and the command carries on. Only the first connection may
fail for good (exit 3): a daemon that was never there is not waited for.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

from musiquectl import interrupt
from musiquectl.client import Client, Unreachable

RETRY_FIRST_S = 0.1
RETRY_MAX_S = 2.0


class _Reconnected:
    """What ``next_event`` returns after a reconnection: events may have been missed."""

    def __repr__(self) -> str:
        return "RECONNECTED"


RECONNECTED: Final = _Reconnected()
Event = dict[str, Any]


class LiveConnection:
    """A client subscribed to ``topics`` that reconnects (and resubscribes) by itself."""

    def __init__(
        self,
        path: Path,
        topics: Sequence[str],
        *,
        notice: Callable[[str], None],
        timeout: float = 30.0,
    ) -> None:
        self._path = path
        self._topics = list(topics)
        self._notice = notice
        self._timeout = timeout
        self._client: Client | None = None

    def __enter__(self) -> LiveConnection:
        self._client = self._open()
        return self

    def __exit__(self, *_: object) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def call(self, method: str, params: dict[str, Any] | None = None, *, again: bool = True) -> Any:
        """A call on the live connection; a lost daemon is waited for, then asked again.

        ``again=False`` for a call that must not be made twice (starting a job): a lost
        daemon is then an error (exit 3), since the first call may have been carried out.
        """
        while True:
            assert self._client is not None
            try:
                return self._client.call(method, params)
            except Unreachable as exc:
                if not again:
                    raise
                self._recover(exc)

    def next_event(self, idle: float | None) -> Event | _Reconnected | None:
        """The next event; None after ``idle`` s of silence; RECONNECTED after the daemon
        came back (re-read whatever the events would have said)."""
        assert self._client is not None
        try:
            return self._client.next_event(idle)
        except Unreachable as exc:
            self._recover(exc)
            return RECONNECTED

    def _open(self) -> Client:
        client = Client(self._path, timeout=self._timeout)
        client.connect()
        try:
            if self._topics:
                client.call("events.subscribe", {"topics": self._topics})
        except BaseException:
            client.close()
            raise
        return client

    def _recover(self, lost: Unreachable) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        self._notice(f"lost musiqued at {self._path} ({lost.reason}); waiting for it to come back")
        delay = RETRY_FIRST_S
        while True:
            try:
                self._client = self._open()
            except Unreachable:
                # Nothing to wait on but the socket itself: try again, slower and slower.
                interrupt.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            self._notice("musiqued is back; carrying on")
            return
