"""Browser sessions: random ids held by the daemon, and the token it uses when none is set.

A session id is 256 random bits, known only to the daemon and the browser's cookie; it is
not derived from the token, so nothing about the token can be learnt from it. Sessions end
at their expiry (``[http] session_days``), on logout, and all at once when the token
changes. They are kept in ``http-sessions`` beside the database (mode 0600), so a restart
does not log browsers out; the file holds each id only hashed together with the token in
force, so a copy of it opens nothing, and a token changed while the daemon was stopped ends
them too.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import stat
import time
from collections.abc import Callable
from pathlib import Path

import structlog

from musiqued.config import MIN_TOKEN_CHARS
from musiqued.errors import ConfigError

log = structlog.get_logger("musiqued.http")

MAX_SESSIONS = 256
"""Sessions held at once; a new one beyond this ends the oldest."""
TOKEN_FILE_NAME = "http-token"  # noqa: S105 (a file name)
"""The generated token's file, beside the database."""
SESSIONS_FILE_NAME = "http-sessions"


class SessionStore:
    """Live sessions: ``key(id)`` → expiry (Unix seconds), kept in ``path`` if given."""

    def __init__(self, path: Path | None = None, clock: Callable[[], float] = time.time) -> None:
        self._path = path
        self._clock = clock
        self._token = ""
        self._expiry: dict[str, float] = self._load()

    def use_token(self, token: str) -> None:
        """The token in force; a different one than before ends every session."""
        if self._token and token != self._token:
            self.revoke_all()
        self._token = token

    def create(self, lifetime_s: float) -> str:
        now = self._clock()
        self._drop_expired(now)
        while len(self._expiry) >= MAX_SESSIONS:
            del self._expiry[next(iter(self._expiry))]  # the oldest
        session = secrets.token_urlsafe(32)
        self._expiry[self._key(session)] = now + lifetime_s
        self._save()
        return session

    def valid(self, session: str) -> bool:
        if not session:
            return False
        expires = self._expiry.get(self._key(session))
        return expires is not None and expires > self._clock()

    def revoke(self, session: str) -> None:
        if session and self._expiry.pop(self._key(session), None) is not None:
            self._save()

    def revoke_all(self) -> None:
        self._expiry.clear()
        self._save()

    def _key(self, session: str) -> str:
        # Bound to the token: with another token no stored session matches.
        return hashlib.sha256(f"{self._token}\n{session}".encode()).hexdigest()

    def _drop_expired(self, now: float) -> None:
        for key, expires in list(self._expiry.items()):
            if expires <= now:
                del self._expiry[key]

    def _load(self) -> dict[str, float]:
        if self._path is None:
            return {}
        try:
            raw = json.loads(self._path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("http sessions file unreadable; browsers log in again", error=str(exc))
            return {}
        now = self._clock()
        if not isinstance(raw, dict):
            return {}
        return {
            str(key): float(expires)
            for key, expires in raw.items()
            if isinstance(expires, int | float) and expires > now
        }

    def _save(self) -> None:
        if self._path is None:
            return
        temporary = self._path.with_name(f".{self._path.name}.tmp")
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(self._expiry, out)
            os.replace(temporary, self._path)
        except OSError as exc:
            # Sessions still work until the daemon stops; only keeping them is lost.
            log.warning("http sessions not saved", error=str(exc))


def load_or_create_token(path: Path) -> str:
    """The token kept in ``path`` (mode 0600), made there (256 random bits) if missing.

    Raises ConfigError, one line, when the file cannot be read or made, or holds a token too
    short to be safe."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        return _read_token(path)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot create the HTTP token file: {exc.strerror}") from None
    token = secrets.token_urlsafe(32)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(token + "\n")
            out.flush()
            os.fsync(out.fileno())
    except OSError as exc:
        with contextlib.suppress(OSError):
            path.unlink()
        raise ConfigError(f"{path}: cannot write the HTTP token file: {exc.strerror}") from None
    return token


def _read_token(path: Path) -> str:
    try:
        info = path.lstat()
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"{path}: the HTTP token file is not a regular file")
        if info.st_mode & 0o077:
            # Someone widened it: the token must stay the daemon's user's alone.
            os.chmod(path, 0o600)
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8"
        raise ConfigError(f"{path}: cannot read the HTTP token file: {reason}") from None
    if len(token) < MIN_TOKEN_CHARS:
        raise ConfigError(
            f"{path}: the HTTP token file holds {len(token)} characters, fewer than "
            f"{MIN_TOKEN_CHARS}; delete it and the daemon makes a new one"
        )
    return token
