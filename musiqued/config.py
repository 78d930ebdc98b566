"""The configuration models: one frozen pydantic model per section, below every layer.

Every layer that reads its settings (upstream clients, services, front ends) imports its
section from here; reading the file, secrets from credentials or the environment, and the
legacy layout stay in ``musiqued.app.config``. Secrets are ``SecretStr`` so they never print.
"""

from __future__ import annotations

import ipaddress
import os
import zoneinfo
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

from musiqued import zones

SECRET_KEYS: dict[str, tuple[str, ...]] = {
    "lastfm": ("api_key", "api_secret", "session_key"),
    "spotify": ("client_id", "client_secret"),
    "ai": ("api_key",),
    "http": ("token",),
    "listenbrainz": ("token",),
}


DAY_S = 86400.0
"""The longest interval any setting takes."""
MAX_ID = 2**32 - 2
"""The largest uid or gid (``(uid_t) -1`` means none)."""
MIN_TOKEN_CHARS = 16
"""A configured ``[http] token`` shorter than this is refused."""


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


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
    timezone: str = ""
    """IANA name of the zone days, weeks, months and years are counted in; empty: the
    machine's zone."""

    @field_validator("timezone")
    @classmethod
    def _iana_zone(cls, value: str) -> str:
        if value:
            zones.zone_named(value)  # ZoneError is a ValueError: a config error naming the key
        return value

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zones.zone_named(self.timezone) if self.timezone else zones.system_zone()

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
    # Covers and artist images are downloaded only from under these (upstream answers are
    # untrusted: an image URL could point anywhere, the daemon's own network included).
    image_url_prefixes: tuple[str, ...] = (
        "https://lastfm.freetls.fastly.net/",
        "https://i.scdn.co/",
    )
    image_cache_mb: float = Field(default=500, ge=0, le=1_000_000)

    @field_validator("image_url_prefixes")
    @classmethod
    def _prefixes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for prefix in value:
            scheme, sep, rest = prefix.partition("://")
            if scheme not in ("http", "https") or not sep or not rest.split("/")[0]:
                raise ValueError(
                    f"{prefix!r} is not an http(s) URL prefix such as 'https://i.scdn.co/'"
                )
        return value

    @property
    def image_cache_bytes(self) -> int:
        return int(self.image_cache_mb * 1024 * 1024)


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


class ImportConfig(_Section):
    """File imports (``[import]``).

    ``match_window_s``: a play read from a file is a listen already stored when the artist
    and title match and the two starts are at most this many seconds apart. The sources'
    clocks disagree by the following, and the default, 180 s, covers them together:

    - Last.fm's, ListenBrainz's and Maloja's times, and a ``.scrobbler.log``'s, are the
      start of the play by the player's clock, which network time keeps within seconds.
      A client that queues scrobbles (offline, or until the track has played long enough)
      sends each with its start, so the queue delays the sending, not the time.
    - A Last.fm CSV and Spotify's account-data history give the minute only: a play is
      up to 59 s before the time they show.
    - Spotify writes the end of a play and how long it played; its start, the end minus
      the time played, is later than the true start by every pause in between: a minute
      or two for a paused track, more only for a long pause.

    So 60 s of a clock shown to the minute, plus two minutes of pauses and clock drift.
    A wider window gains little and costs precision where one track is played over and
    over (its plays follow each other about its length apart, three to four minutes for
    most songs): each stored listen answers for one play at most, the nearest, so counts
    stay right, but a wide window can pair a play with its neighbour's listen. 0 matches
    exact starts only (imports of this daemon's own exports).
    """

    match_window_s: int = Field(default=180, ge=0, le=86_400)


class ListenbrainzConfig(_Section):
    """The mirror to ListenBrainz, or to any server speaking its API (Maloja, Koito)."""

    enabled: bool = False
    api_url: str = "https://api.listenbrainz.org/"
    """The API root: ``1/submit-listens`` and ``1/validate-token`` are under it."""
    token: SecretStr = SecretStr("")

    @field_validator("api_url")
    @classmethod
    def _web_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError(f"{value!r} is not an http(s):// URL")
        return value if value.endswith("/") else value + "/"

    @field_validator("token")
    @classmethod
    def _token_usable(cls, value: SecretStr) -> SecretStr:
        # It goes into a header ("Authorization: Token …"), which ends at a line break and
        # ListenBrainz splits at the first space.
        if any(c.isspace() or not c.isprintable() for c in value.get_secret_value()):
            raise ValueError("contains whitespace or control characters; remove them")
        return value

    @property
    def configured(self) -> bool:
        return self.enabled and bool(self.token.get_secret_value())


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
    # The Settings page's file upload (musiqued/http/upload.py): one request's body at most.
    max_upload_mb: int = Field(default=512, ge=1, le=8192)

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024

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
    # ``import`` is a Python keyword: the section is read and shown under its TOML name.
    imports: ImportConfig = Field(default_factory=ImportConfig, alias="import")

    listenbrainz: ListenbrainzConfig = ListenbrainzConfig()

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    def masked(self) -> dict[str, Any]:
        """The effective configuration as plain data, every secret replaced by a mask."""
        data: dict[str, Any] = self.model_dump(mode="json", by_alias=True)
        for section, keys in SECRET_KEYS.items():
            for key in keys:
                value = getattr(getattr(self, section), key).get_secret_value()
                data[section][key] = "********" if value else ""
        return data
