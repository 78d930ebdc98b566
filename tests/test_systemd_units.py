"""The unit files, checked with systemd's own tools, and what ``make install`` puts where.

``systemd-analyze verify`` insists that ExecStart= names an existing executable, so each
unit is verified as a copy pointing at this venv's ``musiqued`` (the one substitution
``make install`` also makes, towards ``$(BINDIR)``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from musiqued.config import HttpConfig
from tests.support import ROOT, VENV_BIN

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
UNITS = ROOT / "systemd"
SOURCE_EXEC = "/usr/local/bin/musiqued"
MAX_EXPOSURE = 1.5
STATIC = ("index.html", "app.js", "style.css", "login.html", "login.js", "favicon.svg")
MAN_PAGES = ("man1/musiquectl.1", "man5/musiqued.toml.5", "man8/musiqued.8")

pytestmark = pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")


def _copies(source: Path, target: Path) -> list[Path]:
    """The unit files of ``source`` in ``target``, ExecStart= pointing at our musiqued."""
    target.mkdir(parents=True, exist_ok=True)
    copies = []
    for unit in sorted(source.glob("musiqued.*")):
        text = unit.read_text(encoding="utf-8").replace(SOURCE_EXEC, str(VENV_BIN / "musiqued"))
        (target / unit.name).write_text(text, encoding="utf-8")
        copies.append(target / unit.name)
    return copies


def _analyze(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    assert SYSTEMD_ANALYZE is not None
    return subprocess.run(
        [SYSTEMD_ANALYZE, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "SYSTEMD_LOG_COLOR": "0", **(env or {})},
        check=False,
    )


def test_system_units_verify(tmp_path: Path) -> None:
    """``systemd-analyze verify`` accepts musiqued.service and musiqued.socket silently."""
    units = _copies(UNITS, tmp_path / "system")
    assert [u.name for u in units] == ["musiqued.service", "musiqued.socket"]
    result = _analyze("verify", *map(str, units))
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""


def test_user_units_verify(tmp_path: Path) -> None:
    """``systemd-analyze --user verify`` accepts the user variants silently."""
    units = _copies(UNITS / "user", tmp_path / "user")
    assert [u.name for u in units] == ["musiqued.service", "musiqued.socket"]
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    result = _analyze("--user", "verify", *map(str, units), env={"XDG_RUNTIME_DIR": str(runtime)})
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""


def test_notify_user_unit_verifies(tmp_path: Path) -> None:
    """``systemd-analyze --user verify`` accepts musique-notify.service silently."""
    source = (UNITS / "user" / "musique-notify.service").read_text(encoding="utf-8")
    assert "ExecStart=/usr/local/bin/musiquectl notify" in source
    unit = tmp_path / "user" / "musique-notify.service"
    unit.parent.mkdir()
    unit.write_text(
        source.replace("/usr/local/bin/musiquectl", str(VENV_BIN / "musiquectl")), encoding="utf-8"
    )
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    result = _analyze("--user", "verify", str(unit), env={"XDG_RUNTIME_DIR": str(runtime)})
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""


def test_service_exposure(tmp_path: Path) -> None:
    """``systemd-analyze security --offline=true`` rates the service at most 1.5."""
    service = _copies(UNITS, tmp_path / "system")[0]
    result = _analyze("security", "--offline=true", "--no-pager", str(service))
    match = re.search(r"Overall exposure level for musiqued\.service: (\d+\.\d+)", result.stdout)
    assert match, result.stdout + result.stderr
    exposure = float(match.group(1))
    print(f"systemd-analyze security --offline=true musiqued.service: exposure {exposure}")
    assert exposure <= MAX_EXPOSURE


def test_units_say_what_the_contract_asks() -> None:
    """Type=notify with ExecReload= (systemd 252 has no notify-reload), the watchdog, the
    directories, credentials for every secret, EX_CONFIG not restarted, socket 0660 for
    the musique group."""
    service = (UNITS / "musiqued.service").read_text(encoding="utf-8")
    for line in (
        "Type=notify",
        "ExecStart=/usr/local/bin/musiqued --config /etc/musique/musiqued.toml",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        "RestartPreventExitStatus=75 78",
        "StateDirectory=musiqued",
        "RuntimeDirectory=musiqued",
        "ConfigurationDirectory=musique",
        "UMask=0077",
        "CapabilityBoundingSet=",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "SystemCallFilter=@system-service",
    ):
        assert re.search(rf"^{re.escape(line)}", service, re.MULTILINE), line
    assert re.search(r"^WatchdogSec=\d+", service, re.MULTILINE)
    for name in (
        "lastfm_api_key",
        "lastfm_api_secret",
        "lastfm_session_key",
        "spotify_client_id",
        "spotify_client_secret",
        "ai_api_key",
    ):
        assert f"LoadCredential={name}\n" in service
    socket_unit = (UNITS / "musiqued.socket").read_text(encoding="utf-8")
    for line in (
        "ListenStream=/run/musiqued/musiqued.sock",
        "SocketMode=0660",
        "SocketGroup=musique",
    ):
        assert line in socket_unit
    assert (
        "ListenStream=%t/musiqued/musiqued.sock" in (UNITS / "user" / "musiqued.socket").read_text()
    )
    assert "g musique" in (UNITS / "musique.sysusers").read_text()


def test_units_bound_descriptors() -> None:
    """Both service units set LimitNOFILE=4096 (systemd's default soft limit is 1024), and
    the HTTP connection cap's default fits in half of it, as the daemon requires."""
    for unit in (UNITS / "musiqued.service", UNITS / "user" / "musiqued.service"):
        text = unit.read_text(encoding="utf-8")
        assert re.findall(r"^LimitNOFILE=.*$", text, re.MULTILINE) == ["LimitNOFILE=4096"], unit
    assert HttpConfig().max_connections <= 4096 // 2


@pytest.mark.slow
def test_make_install_builds_the_tree(tmp_path: Path) -> None:
    """``make install DESTDIR=… PREFIX=/usr``: the project's wheel installed into a clean
    venv in /usr/lib/musique from the lock file (hashes checked, its exact versions), whose
    three scripts name their final paths and run, carrying the Settings page's files and the
    man pages in the venv's share/man; commands in /usr/bin, units pointing there,
    sysusers/tmpfiles snippets, the man pages, the example config; a second run keeps an
    edited config."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    dest = tmp_path / "root"
    build = tmp_path / "build"
    make = ["make", "-C", str(ROOT), f"DESTDIR={dest}", "PREFIX=/usr", f"BUILDDIR={build}"]
    result = subprocess.run(
        [*make, "install"], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr

    assert os.readlink(dest / "usr/bin/musiqued") == "/usr/lib/musique/bin/musiqued"
    assert os.readlink(dest / "usr/bin/musiquectl") == "/usr/lib/musique/bin/musiquectl"
    app = dest / "usr/lib/musique"
    script = (app / "bin/musiqued").read_text(encoding="utf-8")
    assert script.startswith("#!/usr/lib/musique/bin/python")
    for text_file in [app / "pyvenv.cfg", *(p for p in (app / "bin").iterdir() if p.is_file())]:
        if not text_file.is_symlink():
            assert str(dest) not in text_file.read_text(encoding="utf-8", errors="replace")
    version = subprocess.run(
        [str(app / "bin/python"), "-m", "musiqued.app.cli", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert version.returncode == 0, version.stderr
    assert "musiqued, version" in version.stdout
    for command in ("musiquectl", "musique-sim"):
        # The scripts' shebang names their final path: run each with the tree's Python.
        usage = subprocess.run(
            [str(app / "bin/python"), str(app / "bin" / command), "--help"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert usage.stdout.startswith(f"Usage: {command} "), usage.stderr
    (package,) = (app / "lib").glob("python3.*/site-packages/musiqued")
    for name in STATIC:
        assert (package / "http" / "static" / name).is_file(), name
    for page in MAN_PAGES:
        beside_bin = app / "share/man" / page
        assert beside_bin.read_bytes() == (ROOT / "man" / Path(page).name).read_bytes(), page

    service = (dest / "usr/lib/systemd/system/musiqued.service").read_text(encoding="utf-8")
    assert "ExecStart=/usr/bin/musiqued --config /etc/musique/musiqued.toml" in service
    assert (dest / "usr/lib/systemd/system/musiqued.socket").is_file()
    user_service = (dest / "usr/lib/systemd/user/musiqued.service").read_text(encoding="utf-8")
    assert "ExecStart=/usr/bin/musiqued\n" in user_service
    notify_unit = dest / "usr/lib/systemd/user/musique-notify.service"
    assert "ExecStart=/usr/bin/musiquectl notify\n" in notify_unit.read_text(encoding="utf-8")
    assert (dest / "usr/lib/systemd/user/musiqued.socket").is_file()
    assert "musique" in (dest / "usr/lib/sysusers.d/musique.conf").read_text(encoding="utf-8")
    assert (dest / "usr/lib/tmpfiles.d/musique.conf").is_file()
    for page in MAN_PAGES:
        installed = dest / "usr/share/man" / page
        assert installed.read_bytes() == (ROOT / "man" / page.split("/")[1]).read_bytes()
    pins = {
        line.split("==")[0]: line.split("==")[1].split()[0]
        for line in (ROOT / "requirements.lock").read_text(encoding="utf-8").splitlines()
        if "==" in line and not line.startswith((" ", "#"))
    }
    frozen = subprocess.run(
        [str(app / "bin/python"), "-m", "pip", "freeze"]
        if (app / "bin/pip").exists()
        else ["python3", "-m", "pip", "--python", str(app / "bin/python"), "freeze"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    installed_pins = dict(line.split("==", 1) for line in frozen.splitlines() if "==" in line)
    for name in ("aiohttp", "pydantic", "click", "uvloop", "jeepney"):
        assert installed_pins.get(name) == pins[name], name  # the lock's exact versions
    config = dest / "etc/musique/musiqued.toml"
    assert config.read_bytes() == (ROOT / "etc/musiqued.toml").read_bytes()
    assert config.stat().st_mode & 0o777 == 0o640

    config.write_text("# mine\n", encoding="utf-8")
    again = subprocess.run(
        [*make, "install-config"], capture_output=True, text=True, timeout=60, check=False
    )
    assert again.returncode == 0, again.stderr
    assert config.read_text(encoding="utf-8") == "# mine\n"
    assert "keeping the existing /etc/musique/musiqued.toml" in again.stdout


def test_config_defaults_follow_systemd_directories(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under systemd, $STATE_DIRECTORY holds the database and $RUNTIME_DIRECTORY the socket,
    whoever the daemon runs as."""
    from musiqued.app.config import load_config

    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/musiqued")
    monkeypatch.setenv("RUNTIME_DIRECTORY", "/run/musiqued")
    config = load_config(environ={"MUSIQUED_CONFIG": "", "XDG_CONFIG_HOME": "/nonexistent"})
    assert config.daemon.database == Path("/var/lib/musiqued/musique.db")
    assert config.daemon.socket == Path("/run/musiqued/musiqued.sock")


def test_user_defaults_follow_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Not root and not under systemd: the database in $XDG_DATA_HOME/musique, the socket
    in $XDG_RUNTIME_DIR/musiqued, with no config file at all."""
    from musiqued.app.config import load_config

    for name in ("STATE_DIRECTORY", "RUNTIME_DIRECTORY", "MUSIQUED_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    config = load_config()
    assert config.daemon.database == tmp_path / "data/musique/musique.db"
    assert config.daemon.socket == tmp_path / "run/musiqued/musiqued.sock"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert load_config().daemon.database == tmp_path / "home/.local/share/musique/musique.db"
