"""The configuration models: one frozen pydantic model per section, below every layer.

Every layer that reads its settings (upstream clients, services, front ends) imports its
section from here; reading the file, secrets from credentials or the environment, and the
legacy layout stay in ``musiqued.app.config``. Secrets are ``SecretStr`` so they never print.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
)

SECRET_KEYS: dict[str, tuple[str, ...]] = {
    "lastfm": ("api_key", "api_secret", "session_key"),
    "spotify": ("client_id", "client_secret"),
    "ai": ("api_key",),
    "http": ("token",),
}


DAY_S = 86400.0
"""The longest interval any setting takes."""
MAX_ID = 2**32 - 2
"""The largest uid or gid (``(uid_t) -1`` means none)."""
MIN_TOKEN_CHARS = 16
"""A configured ``[http] token`` shorter than this is refused."""


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def default_socket() -> Path:
    """systemd's ``$RUNTIME_DIRECTORY``, else /run/musiqued for root, else the user's runtime dir."""
    runtime = os.environ.get("RUNTIME_DIRECTORY", "").split(":")[0]
    if runtime:
        return Path(runtime) / "musiqued.sock"
    if os.geteuid() == 0:
        return Path("/run/musiqued/musiqued.sock")
    user_runtime = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.geteuid()}"
    return Path(user_runtime) / "musiqued" / "musiqued.sock"


def default_database() -> Path:
    """systemd's ``$STATE_DIRECTORY``, else /var/lib/musiqued for root, else the XDG data dir."""
    state = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    if state:
        return Path(state) / "musique.db"
    if os.geteuid() == 0:
        return Path("/var/lib/musiqued/musique.db")
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "musique" / "musique.db"


class DaemonConfig(_Section):
    # Factories, not constants: the defaults depend on who runs the daemon and how.
    socket: Path = Field(default_factory=default_socket)
    socket_mode: str = "0660"
    database: Path = Field(default_factory=default_database)
    allowed_uids: tuple[Annotated[int, Field(ge=0, le=MAX_ID)], ...] = ()
    allowed_gids: tuple[Annotated[int, Field(ge=0, le=MAX_ID)], ...] = ()
    idle_timeout_seconds: float = Field(default=300.0, gt=0, le=DAY_S)

    @field_validator("socket_mode", mode="before")
    @classmethod
    def _octal_literal(cls, value: Any) -> Any:
        """TOML's ``0o660`` arrives as an int: take it as the mode it spells."""
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{value:04o}"
        return value

    @field_validator("socket_mode")
    @classmethod
    def _octal_mode(cls, value: str) -> str:
        try:
            mode = int(value, 8)
        except ValueError:
            raise ValueError(f"{value!r} is not an octal mode such as '0660'") from None
        if not 0 <= mode <= 0o777:
            raise ValueError(f"{value!r} is outside 0000..0777")
        return value

    @property
    def socket_mode_bits(self) -> int:
        return int(self.socket_mode, 8)


class LastfmConfig(_Section):
    api_key: SecretStr = SecretStr("")
    api_secret: SecretStr = SecretStr("")
    session_key: SecretStr = SecretStr("")
    username: str = ""
    api_url: str = "https://ws.audioscrobbler.com/2.0/"
    requests_per_second: float = Field(default=5.0, gt=0, le=1000)
    max_in_flight: int = Field(default=4, ge=1, le=64)
    page_size: int = Field(default=200, ge=1, le=1000)
    timeout_seconds: float = Field(default=30.0, gt=0, le=3600)

    @property
    def configured(self) -> bool:
        return bool(self.api_key.get_secret_value() and self.username)


class TrackerConfig(_Section):
    autostart: bool = False
    interval_seconds: float = Field(default=120.0, ge=1, le=DAY_S)
    late_sweep_days: int = Field(default=14, ge=0, le=60)
    late_sweep_interval_seconds: float = Field(default=3600.0, ge=1, le=DAY_S)


class EnrichmentConfig(_Section):
    enabled: bool = True
    max_albums_per_import: int = Field(default=0, ge=0, le=1_000_000)
    max_attempts: int = Field(default=4, ge=1, le=100)  # transient failures before 'failed'
    retry_seconds: float = Field(default=30.0, gt=0, le=DAY_S)  # first backoff; doubles per attempt


class SpotifyConfig(_Section):
    client_id: SecretStr = SecretStr("")
    client_secret: SecretStr = SecretStr("")
    api_url: str = "https://api.spotify.com/v1/"
    token_url: str = "https://accounts.spotify.com/api/token"

    @property
    def configured(self) -> bool:
        return bool(self.client_id.get_secret_value() and self.client_secret.get_secret_value())


class AiConfig(_Section):
    api_url: str = ""
    api_key: SecretStr = SecretStr("")
    model: str = ""
    language: str = "en"
    requests_per_second: float = Field(default=1.0, gt=0, le=1000)
    max_description_chars: int = Field(default=4000, ge=200, le=100_000)

    @property
    def configured(self) -> bool:
        return bool(self.api_url and self.model)


def parse_listen(listen: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:8000`` for IPv6; an empty host means every interface)."""
    host, sep, port = listen.strip().rpartition(":")
    if not sep or not port.isdecimal() or not 0 < int(port) < 65536:
        raise ValueError(f"{listen!r} is not host:port, e.g. '127.0.0.1:8000'")
    return host.removeprefix("[").removesuffix("]"), int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class HttpConfig(_Section):
    listen: str = ""
    token: SecretStr = Field(default=SecretStr(""), validate_default=True)
    # What clients can hold (musiqued/http/limits.py): the control socket keeps descriptors.
    max_connections: int = Field(default=128, ge=1, le=4096)
    max_websockets: int = Field(default=16, ge=1, le=4096)
    request_timeout_seconds: float = Field(default=10.0, gt=0, le=600)
    idle_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    # A browser session's life (musiquectl web); the token itself never expires.
    session_days: int = Field(default=30, ge=1, le=365)

    @field_validator("listen")
    @classmethod
    def _address(cls, value: str) -> str:
        if value:
            parse_listen(value)
        return value

    @field_validator("token")
    @classmethod
    def _token_usable(cls, value: SecretStr, info: ValidationInfo) -> SecretStr:
        token = value.get_secret_value()
        if token != token.strip():
            # No header could carry it (HTTP drops whitespace around a header's value), and
            # stripping it silently would make the login form and the header disagree.
            raise ValueError("starts or ends with whitespace; remove it")
        if token and len(token) < MIN_TOKEN_CHARS:
            # Short enough to guess; an empty one makes the daemon generate a strong one.
            raise ValueError(
                f"is {len(token)} characters; use at least {MIN_TOKEN_CHARS} (or none: the "
                "daemon then makes one)"
            )
        # Anyone who can reach a non-loopback address could start imports: insist on a token.
        listen = info.data.get("listen") or ""
        if listen and not token and not is_loopback(parse_listen(listen)[0]):
            raise ValueError(
                f"required when listen = {listen!r} is not a loopback address "
                "(set a token, or listen on 127.0.0.1)"
            )
        return value


class Config(_Section):
    daemon: DaemonConfig = Field(default_factory=DaemonConfig)
    lastfm: LastfmConfig = LastfmConfig()
    tracker: TrackerConfig = TrackerConfig()
    enrichment: EnrichmentConfig = EnrichmentConfig()
    spotify: SpotifyConfig = SpotifyConfig()
    ai: AiConfig = AiConfig()
    http: HttpConfig = HttpConfig()

    def masked(self) -> dict[str, Any]:
        """The effective configuration as plain data, every secret replaced by a mask."""
        data: dict[str, Any] = self.model_dump(mode="json")
        for section, keys in SECRET_KEYS.items():
            for key in keys:
                value = getattr(getattr(self, section), key).get_secret_value()
                data[section][key] = "********" if value else ""
        return data
