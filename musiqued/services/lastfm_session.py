"""The Last.fm connection of the daemon: the client, its session key, and web auth.

A session key from ``lastfm.session_key`` in the configuration wins; otherwise the one that
``musiquectl lastfm login`` obtained (web auth through pylast, ``upstream/lastfm_auth.py``)
is kept in ``daemon_state`` (key ``lastfm_session``, with the user it belongs to) and used
while the configured user is that user. The key is never returned by RPC, and never logged:
``on_secret`` hands every stored or newly obtained key to the log scrubber.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog

from musiqued.clock import SYSTEM_CLOCK, Clock
from musiqued.config import LastfmConfig
from musiqued.errors import NotConfiguredError
from musiqued.storage.state import get_state, set_state
from musiqued.upstream.lastfm import LastfmClient, RetryPolicy
from musiqued.upstream.ratelimit import Governor

if TYPE_CHECKING:
    from musiqued.storage.db import Database
    from musiqued.upstream.lastfm_auth import LastfmWebAuth

log = structlog.get_logger("musiqued.lastfm")

STATE_KEY = "lastfm_session"


async def _stored_login(db: Database) -> tuple[str, str]:
    """(username, session key) of the last login, or empty strings."""
    stored = await get_state(db, STATE_KEY)
    if not isinstance(stored, dict):
        return "", ""
    return str(stored.get("username") or ""), str(stored.get("session_key") or "")


async def stored_session_key(db: Database, config: LastfmConfig) -> str:
    """The session key to sign with: the configured one, else the stored one for this user."""
    configured = config.session_key.get_secret_value()
    if configured:
        return configured
    username, key = await _stored_login(db)
    return key if username.casefold() == config.username.casefold() else ""


class LastfmConnection:
    """Owns the governor and the client; survives reloads (both are reconfigured in place).

    ``on_change`` is called after the credentials may have changed (a reload with new
    ``[lastfm]`` settings, a login): whoever waits for valid credentials looks again.
    ``on_secret`` is given each session key this connection holds that the configuration
    does not name (the stored one at open, a new one at login), so logs can mask it.
    """

    def __init__(
        self,
        config: LastfmConfig,
        db: Database,
        *,
        on_change: Callable[[], None] = lambda: None,
        on_secret: Callable[[str], None] = lambda _: None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        """``clock``: what the pauses between a call's attempts wait on."""
        self._db = db
        self.config = config
        self._on_change = on_change
        self._on_secret = on_secret
        self.governor = Governor(config.requests_per_second, config.max_in_flight)
        self.client = LastfmClient(config, self.governor, retry=RetryPolicy(clock=clock))
        self._web_auth: LastfmWebAuth | None = None

    @property
    def web_auth(self) -> LastfmWebAuth:
        """Built for the first login (``musiquectl lastfm login``)."""
        if self._web_auth is None:
            # Logging in is rare: its module loads then, not with the daemon.
            from musiqued.upstream.lastfm_auth import LastfmWebAuth

            self._web_auth = LastfmWebAuth(self.config, self.governor)
        return self._web_auth

    @property
    def configured(self) -> bool:
        return self.config.configured

    async def open(self) -> None:
        await self.client.open()
        _, stored_key = await _stored_login(self._db)
        if stored_key:
            self._on_secret(stored_key)
        self.client.reconfigure(self.config, await stored_session_key(self._db, self.config))

    async def close(self) -> None:
        await self.client.close()

    async def reconfigure(self, config: LastfmConfig) -> None:
        if config == self.config:
            return
        self.config = config
        self.governor.reconfigure(config.requests_per_second, config.max_in_flight)
        self.client.reconfigure(config, await stored_session_key(self._db, config))
        if self._web_auth is not None:
            self._web_auth.reconfigure(config)
        log.info(
            "Last.fm settings applied",
            requests_per_second=config.requests_per_second,
            max_in_flight=config.max_in_flight,
            page_size=config.page_size,
        )
        self._on_change()

    def require(self) -> LastfmClient:
        if not self.config.configured:
            raise NotConfiguredError(
                "Last.fm is not configured: set lastfm.api_key and lastfm.username "
                "in the configuration, then `musiquectl reload`"
            )
        return self.client

    def _require_auth(self) -> None:
        if not (
            self.config.api_key.get_secret_value() and self.config.api_secret.get_secret_value()
        ):
            raise NotConfiguredError(
                "logging in to Last.fm needs lastfm.api_key and lastfm.api_secret "
                "in the configuration"
            )

    async def auth_url(self) -> dict[str, Any]:
        """Web auth, step 1: the Last.fm page to open (``url``) and its ``token``."""
        self._require_auth()
        started = await self.web_auth.start()
        return {"url": started.url, "token": started.token}

    async def auth_complete(self, token: str) -> dict[str, Any]:
        """Web auth, step 2: the session key for an approved token, stored, never returned."""
        self._require_auth()
        session = await self.web_auth.complete(token)
        self._on_secret(session.key)
        username = session.username
        await set_state(self._db, STATE_KEY, {"username": username, "session_key": session.key})
        if username.casefold() != self.config.username.casefold():
            log.warning(
                "Last.fm login is for another user than lastfm.username",
                login_user=username,
                configured_user=self.config.username,
            )
        # The configured key still wins; a login for another user signs nothing.
        self.client.reconfigure(self.config, await stored_session_key(self._db, self.config))
        log.info("Last.fm session obtained", user=username)
        self._on_change()
        return {"username": username}
