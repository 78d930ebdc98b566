"""The configuration file: TOML, JSON, or the original application's ``config.json``.

Models are frozen; secrets are ``SecretStr`` so they never print. Secrets may also come from
``$CREDENTIALS_DIRECTORY/<section>_<key>`` (systemd's ``LoadCredential=``) or from
``MUSIQUED_<SECTION>_<KEY>``; a value in the file wins, then the credential, then the
environment.
"""

from __future__ import annotations

import ipaddress
import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from musiqued.errors import ConfigError

SYSTEM_CONFIG = Path("/etc/musique/musiqued.toml")
SECRET_KEYS: dict[str, tuple[str, ...]] = {
    "lastfm": ("api_key", "api_secret", "session_key"),
    "spotify": ("client_id", "client_secret"),
    "ai": ("api_key",),
    "http": ("token",),
}


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
    allowed_uids: tuple[int, ...] = ()
    allowed_gids: tuple[int, ...] = ()
    idle_timeout_seconds: float = Field(default=300.0, gt=0)

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
    requests_per_second: float = Field(default=5.0, gt=0)
    max_in_flight: int = Field(default=4, ge=1, le=64)
    page_size: int = Field(default=200, ge=1, le=1000)
    timeout_seconds: float = Field(default=30.0, gt=0)

    @property
    def configured(self) -> bool:
        return bool(self.api_key.get_secret_value() and self.username)


class TrackerConfig(_Section):
    autostart: bool = False
    interval_seconds: float = Field(default=120.0, ge=1)
    late_sweep_days: int = Field(default=14, ge=0, le=60)
    late_sweep_interval_seconds: float = Field(default=3600.0, ge=1)


class EnrichmentConfig(_Section):
    enabled: bool = True
    max_albums_per_import: int = Field(default=0, ge=0)
    max_attempts: int = Field(default=4, ge=1, le=100)  # transient failures before 'failed'
    retry_seconds: float = Field(default=30.0, gt=0)  # first backoff; doubles per attempt


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
    requests_per_second: float = Field(default=1.0, gt=0)

    @property
    def configured(self) -> bool:
        return bool(self.api_url and self.model)


def parse_listen(listen: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:8000`` for IPv6; an empty host means every interface)."""
    host, sep, port = listen.strip().rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
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

    @field_validator("listen")
    @classmethod
    def _address(cls, value: str) -> str:
        if value:
            parse_listen(value)
        return value

    @field_validator("token")
    @classmethod
    def _needed_off_loopback(cls, value: SecretStr, info: ValidationInfo) -> SecretStr:
        # Anyone who can reach a non-loopback address could start imports: insist on a token.
        listen = info.data.get("listen") or ""
        if listen and not value.get_secret_value() and not is_loopback(parse_listen(listen)[0]):
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


def default_config_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$MUSIQUED_CONFIG``, else the system file for root, else the user's XDG file."""
    env = os.environ if environ is None else environ
    from_env = env.get("MUSIQUED_CONFIG")
    if from_env:
        return Path(from_env)
    if os.geteuid() == 0:
        return SYSTEM_CONFIG
    xdg = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(xdg) / "musique" / "musiqued.toml"


def _parse_file(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    text = raw.decode("utf-8", errors="replace")
    if path.suffix == ".json" or text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
    else:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a table")
    return _from_legacy(data)


def _from_legacy(data: dict[str, Any]) -> dict[str, Any]:
    """Map the original application's ``secrets.lastfm`` / ``secrets.tracker`` layout."""
    secrets = data.get("secrets")
    if not isinstance(secrets, dict):
        return data
    rest = {k: v for k, v in data.items() if k != "secrets"}
    lastfm = secrets.get("lastfm") or {}
    tracker = secrets.get("tracker") or {}
    if isinstance(lastfm, dict) and isinstance(rest.get("lastfm", {}), dict):
        rest["lastfm"] = {
            **{k: lastfm[k] for k in ("api_key", "api_secret", "username") if k in lastfm},
            **rest.get("lastfm", {}),
        }
    if (
        isinstance(tracker, dict)
        and "interval_seconds" in tracker
        and isinstance(rest.get("tracker", {}), dict)
    ):
        rest["tracker"] = {
            "interval_seconds": tracker["interval_seconds"],
            **rest.get("tracker", {}),
        }
    return rest


def _fill_secrets(data: dict[str, Any], environ: dict[str, str]) -> dict[str, Any]:
    credentials = environ.get("CREDENTIALS_DIRECTORY")
    for section, keys in SECRET_KEYS.items():
        current = data.get(section)
        if current is not None and not isinstance(current, dict):
            continue  # validation reports the wrong type
        merged = dict(current or {})
        for key in keys:
            if merged.get(key):
                continue
            name = f"{section}_{key}"
            value = ""
            if credentials:
                cred = Path(credentials) / name
                if cred.is_file():
                    try:
                        value = cred.read_text(encoding="utf-8").strip()
                    except (OSError, UnicodeDecodeError) as exc:
                        raise ConfigError(f"{cred}: {section}.{key}: cannot read: {exc}") from None
            if not value:
                value = environ.get(f"MUSIQUED_{name.upper()}", "")
            if value:
                merged[key] = value
        if merged:
            data[section] = merged
    return data


def _describe(path: Path, exc: ValidationError) -> str:
    first = exc.errors()[0]
    key = ".".join(str(part) for part in first["loc"]) or "(top level)"
    reason = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        reason = "unknown key"
    more = len(exc.errors()) - 1
    suffix = f" (and {more} more)" if more else ""
    return f"{path}: {key}: {reason}{suffix}"


def load_config(path: Path | None = None, environ: dict[str, str] | None = None) -> Config:
    """Read, merge secrets into, and validate the configuration file.

    A missing file at the default path gives the defaults; a missing explicit path is an error.
    """
    env = dict(os.environ if environ is None else environ)
    explicit = path is not None or bool(env.get("MUSIQUED_CONFIG"))
    chosen = path or default_config_path(env)
    if not chosen.exists() and not explicit:
        data: dict[str, Any] = {}
    else:
        data = _parse_file(chosen)
    data = _fill_secrets(data, env)
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(chosen, exc)) from None


def config_with(config: Config, section: str, **changes: Any) -> Config:
    """A copy of ``config`` with ``section``'s fields changed (models are frozen)."""
    updated = getattr(config, section).model_copy(update=changes)
    return config.model_copy(update={section: updated})


LogTarget = Literal["auto", "console", "json", "logfmt", "journal"]
