"""One-time login links for the web page: handed out over the control socket, redeemed over HTTP.

``musiquectl web`` asks the daemon (``http.login_url``) for a link; the socket's peer
credentials already decided that its user may control the daemon. Visiting the link once
opens a browser session (``musiqued.http.guard``). A ticket is random, lives
``TICKET_LIFETIME_S``, and works once; at most ``MAX_TICKETS`` wait at a time.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable

from musiqued.errors import NotConfiguredError

TICKET_LIFETIME_S = 120.0
MAX_TICKETS = 16
LOGIN_PATH = "/login"


class WebLogins:
    """The tickets waiting to be redeemed, and where the page is served (set by the HTTP
    front end while it listens)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tickets: dict[str, float] = {}
        self.page_url: str | None = None

    def login_url(self) -> dict[str, object]:
        """A new one-time link to the page: ``{url, expires_in_s}``."""
        if self.page_url is None:
            raise NotConfiguredError(
                'the web page is off: set [http] listen (e.g. "127.0.0.1:8000") and reload',
                kind="http_off",
            )
        self._expire()
        while len(self._tickets) >= MAX_TICKETS:
            del self._tickets[next(iter(self._tickets))]  # the oldest
        ticket = secrets.token_urlsafe(32)
        self._tickets[ticket] = self._clock() + TICKET_LIFETIME_S
        url = f"{self.page_url.rstrip('/')}{LOGIN_PATH}?ticket={ticket}"
        return {"url": url, "expires_in_s": TICKET_LIFETIME_S}

    def redeem(self, ticket: str) -> bool:
        """True once for a ticket handed out less than ``TICKET_LIFETIME_S`` ago."""
        self._expire()
        for known in self._tickets:
            if hmac.compare_digest(known.encode(), ticket.encode()):
                del self._tickets[known]
                return True
        return False

    def forget_all(self) -> None:
        self._tickets.clear()

    def _expire(self) -> None:
        now = self._clock()
        for ticket, expires in list(self._tickets.items()):
            if expires <= now:
                del self._tickets[ticket]
