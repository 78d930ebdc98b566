"""The configuration file: TOML, JSON, or the original application's ``config.json``.

The models live in ``musiqued.config``; this module finds the file, parses it, fills secrets
from ``$CREDENTIALS_DIRECTORY/<section>_<key>`` (systemd's ``LoadCredential=``) or from
``MUSIQUED_<SECTION>_<KEY>`` (a value in the file wins, then the credential, then the
environment) and validates the result.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from musiqued.config import SECRET_KEYS, Config
from musiqued.errors import ConfigError

SYSTEM_CONFIG = Path("/etc/musique/musiqued.toml")


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
    """Every problem, on one line: ``FILE: key: reason; key: reason``."""
    problems = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"]) or "(top level)"
        reason = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            reason = "unknown key"
        problems.append(f"{key}: {reason}")
    return f"{path}: {'; '.join(problems)}"


def config_source(path: Path | None = None, environ: Mapping[str, str] | None = None) -> str:
    """Which file ``load_config`` reads, in words, for ``musiqued --check-config``."""
    env = os.environ if environ is None else environ
    chosen = path or default_config_path(env)
    if chosen.exists() or path is not None or env.get("MUSIQUED_CONFIG"):
        return f"read {chosen}"
    said = f"no configuration file at {chosen} (the default path); the defaults are used"
    if chosen == SYSTEM_CONFIG:
        xdg = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
        user_file = Path(xdg) / "musique" / "musiqued.toml"
        if user_file.exists():
            said += (
                f". {user_file} is there but not read: as root the default is {SYSTEM_CONFIG};"
                f" pass --config {user_file} to use it"
            )
    return said


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
