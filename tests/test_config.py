"""Configuration: formats, secret sources, the documented example, and one-line errors with
exit status 78 from ``musiqued``'s command (in the test's process, and as a real process
where the exit itself is the point)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import SecretStr

from musiqued.app.cli import command
from musiqued.app.config import load_config
from musiqued.config import SECRET_KEYS, Config
from musiqued.errors import ConfigError
from tests.support import ROOT, VENV_BIN

EXAMPLE = ROOT / "etc" / "musiqued.toml"


def musiqued_process(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``musiqued ARGS`` in its own process."""
    return subprocess.run(
        [str(VENV_BIN / "musiqued"), *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **(env or {})},
        check=False,
    )


def musiqued(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``musiqued ARGS``, its command run in this process with ``env`` added to the
    environment: its exit status and what it printed on stdout and stderr, as the process
    gives them (``musiqued_process`` shows the process does). An exception that is not an
    exit, which the process would print as a traceback, is raised."""
    result = CliRunner().invoke(command(), list(args), env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


def test_example_file_documents_every_key_with_its_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """etc/musiqued.toml validates, names every key of every section, and shows the defaults
    (those of a system daemon run by root outside systemd)."""
    for name in ("RUNTIME_DIRECTORY", "STATE_DIRECTORY"):
        monkeypatch.delenv(name, raising=False)
    data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    for name, model in Config.model_fields.items():
        assert model.annotation is not None
        section = model.alias or name
        fields = set(model.annotation.model_fields)  # type: ignore[union-attr]
        assert set(data[section]) == fields, f"[{section}] differs from the model"
    assert set(data) == {model.alias or name for name, model in Config.model_fields.items()}
    assert load_config(EXAMPLE, environ={}) == Config()


def test_toml(tmp_path: Path) -> None:
    """A TOML file is read; unspecified keys keep their defaults; 0o660 is a mode."""
    path = tmp_path / "m.toml"
    path.write_text("[daemon]\nsocket_mode = 0o640\n[tracker]\ninterval_seconds = 30\n")
    config = load_config(path, environ={})
    assert config.tracker.interval_seconds == 30
    assert config.daemon.socket_mode == "0640"
    assert config.lastfm.page_size == 200


def test_json(tmp_path: Path) -> None:
    """JSON with the same structure works."""
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"lastfm": {"username": "rj", "api_key": "k"}}))
    config = load_config(path, environ={})
    assert config.lastfm.username == "rj"
    assert config.lastfm.configured


def test_legacy_config_json(tmp_path: Path) -> None:
    """The original application's config.json layout maps to [lastfm] and [tracker]."""
    path = tmp_path / "config.json"
    path.write_text(
        json.dumps(
            {
                "secrets": {
                    "lastfm": {"api_key": "K", "api_secret": "S", "username": "U"},
                    "tracker": {"interval_seconds": 90},
                }
            }
        )
    )
    config = load_config(path, environ={})
    assert config.lastfm.api_key.get_secret_value() == "K"
    assert config.lastfm.api_secret.get_secret_value() == "S"
    assert config.lastfm.username == "U"
    assert config.tracker.interval_seconds == 90


def test_secret_sources_and_precedence(tmp_path: Path) -> None:
    """A secret comes from the file, else $CREDENTIALS_DIRECTORY/<section>_<key>, else
    MUSIQUED_<SECTION>_<KEY>; they are held as secret types."""
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "lastfm_api_key").write_text("from-credential\n")
    (creds / "spotify_client_id").write_text("cred-client-id")
    path = tmp_path / "m.toml"
    path.write_text('[spotify]\nclient_id = "from-file"\n')
    env = {
        "CREDENTIALS_DIRECTORY": str(creds),
        "MUSIQUED_LASTFM_API_KEY": "from-env",
        "MUSIQUED_AI_API_KEY": "ai-from-env",
        "MUSIQUED_HTTP_TOKEN": "tok-0123456789abcdef",
    }
    config = load_config(path, environ=env)
    assert config.spotify.client_id.get_secret_value() == "from-file"
    assert config.lastfm.api_key.get_secret_value() == "from-credential"
    assert config.ai.api_key.get_secret_value() == "ai-from-env"
    assert config.http.token.get_secret_value() == "tok-0123456789abcdef"
    assert isinstance(config.lastfm.api_key, SecretStr)
    assert "from-credential" not in repr(config)


def test_http_token_with_whitespace_around_is_refused(tmp_path: Path) -> None:
    """An ``[http] token`` starting or ending with whitespace, in the file or in
    $MUSIQUED_HTTP_TOKEN, is refused (exit 78, one line, the token not shown): no header
    could carry it. A credential file's final newline is not part of it."""
    path = tmp_path / "m.toml"
    for text, env in (
        ('[http]\ntoken = " tk-42x-0123456789"\n', {}),
        ('[http]\ntoken = "tk-42x-0123456789\\t"\n', {}),
        ("[http]\n", {"MUSIQUED_HTTP_TOKEN": "tk-42x-0123456789 "}),
    ):
        path.write_text(text)
        done = musiqued("--config", str(path), "--check-config", env=env)
        assert done.returncode == 78
        assert done.stderr == (
            f"musiqued: config error: {path}: http.token: starts or ends with whitespace; "
            "remove it\n"
        )
        assert "tk-42x-0123456789" not in done.stdout + done.stderr
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "http_token").write_text("tk-42x-0123456789\n")
    path.write_text("[http]\n")
    config = load_config(path, environ={"CREDENTIALS_DIRECTORY": str(creds)})
    assert config.http.token.get_secret_value() == "tk-42x-0123456789"


def test_check_config_masks_secrets(tmp_path: Path) -> None:
    """``musiqued --check-config`` prints the effective config; every secret is masked."""
    path = tmp_path / "m.toml"
    path.write_text('[lastfm]\napi_key = "SECRET-A"\nusername = "rj"\n[ai]\napi_key = "SECRET-B"\n')
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "spotify_client_secret").write_text("SECRET-C")
    done = musiqued(
        "--config",
        str(path),
        "--check-config",
        env={"CREDENTIALS_DIRECTORY": str(creds), "MUSIQUED_HTTP_TOKEN": "SECRET-D-0123456789"},
    )
    assert done.returncode == 0, done.stderr
    for secret in ("SECRET-A", "SECRET-B", "SECRET-C", "SECRET-D"):
        assert secret not in done.stdout + done.stderr
    printed = json.loads(done.stdout)
    assert printed["lastfm"]["api_key"] == "********"
    assert printed["lastfm"]["username"] == "rj"
    assert printed["spotify"]["client_secret"] == "********"
    assert printed["http"]["token"] == "********"
    assert printed["lastfm"]["api_secret"] == ""
    assert set(printed) == {model.alias or name for name, model in Config.model_fields.items()}
    for section, keys in SECRET_KEYS.items():
        assert set(keys) <= set(printed[section])


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("unknown.toml", "[daemon]\nsokcet = '/x'\n", "daemon.sokcet: unknown key"),
        ("section.toml", "[nonsense]\na = 1\n", "nonsense: unknown key"),
        ("type.toml", "[tracker]\ninterval_seconds = 'often'\n", "tracker.interval_seconds: "),
        ("range.toml", "[lastfm]\npage_size = 5000\n", "lastfm.page_size: "),
        ("minimum.toml", "[tracker]\ninterval_seconds = 0.5\n", "tracker.interval_seconds: "),
        ("mode.toml", "[daemon]\nsocket_mode = '0999'\n", "daemon.socket_mode: '0999' is not"),
        (
            "mode2.toml",
            "[daemon]\nsocket_mode = '01777'\n",
            "daemon.socket_mode: '01777' is outside",
        ),
        ("uids.toml", "[daemon]\nallowed_uids = ['root']\n", "daemon.allowed_uids.0: "),
        (
            "short.toml",
            "[http]\ntoken = 'tok-abc'\n",
            "http.token: is 7 characters; use at least 16",
        ),
        ("day.toml", "[tracker]\ninterval_seconds = 86401\n", "tracker.interval_seconds: "),
        ("huge.toml", "[tracker]\ninterval_seconds = 1e300\n", "tracker.interval_seconds: "),
        ("inf.toml", "[enrichment]\nretry_seconds = inf\n", "enrichment.retry_seconds: "),
        ("nan.toml", "[daemon]\nidle_timeout_seconds = nan\n", "daemon.idle_timeout_seconds: "),
        ("sweep.toml", "[tracker]\nlate_sweep_interval_seconds = 1e9\n", "late_sweep_interval"),
        ("uid.toml", "[daemon]\nallowed_uids = [99999999999]\n", "daemon.allowed_uids.0: "),
        ("rate.toml", "[lastfm]\nrequests_per_second = 1e12\n", "lastfm.requests_per_second: "),
        ("days.toml", "[http]\nsession_days = 100000\n", "http.session_days: "),
        (
            "zone.toml",
            "[daemon]\ntimezone = 'Europe/Atlantis'\n",
            "daemon.timezone: 'Europe/Atlantis' is not an IANA time zone name",
        ),
        ("bad.toml", "[daemon\nsocket = 1\n", "invalid TOML"),
        ("bad.json", '{"daemon": {"socket": }', "invalid JSON at line 1"),
        ("top.json", "[1, 2]", "the top level must be a table"),
    ],
)
def test_config_errors_exit_78(tmp_path: Path, name: str, text: str, expected: str) -> None:
    """Each invalid file: exit 78 and one line naming the file, the key and the reason."""
    path = tmp_path / name
    path.write_text(text)
    done = musiqued("--config", str(path), "--check-config")
    assert done.returncode == 78
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"musiqued: config error: {path}: ")
    assert expected in lines[0]
    assert "Traceback" not in done.stderr


def test_missing_explicit_file_exits_78(tmp_path: Path) -> None:
    """--config naming a missing file (or $MUSIQUED_CONFIG) is an error, not the defaults."""
    missing = tmp_path / "nope.toml"
    for done in (
        musiqued_process("--config", str(missing), "--check-config"),
        musiqued_process("--check-config", env={"MUSIQUED_CONFIG": str(missing)}),
    ):
        assert done.returncode == 78
        assert done.stderr.strip() == f"musiqued: config error: {missing}: file not found"


def test_unreadable_file_exits_78(tmp_path: Path) -> None:
    """A path that cannot be read (here a directory) gives the reason and exit 78."""
    done = musiqued("--config", str(tmp_path), "--check-config")
    assert done.returncode == 78
    assert done.stderr.strip() == f"musiqued: config error: {tmp_path}: cannot read: Is a directory"


def _musiqued_as_nobody(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    """``musiqued ARGS`` (its click command) in a child process running as nobody: (exit
    status, stderr). A fork, not an exec: this Python lives where nobody may not look."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        status = 70
        try:
            os.dup2(write_end, 1)
            os.dup2(write_end, 2)
            # pytest replaced the sys streams with its capture: back to the descriptors.
            sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
            sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            os.environ.update(env)
            command()(args, prog_name="musiqued")
            status = 0
        except SystemExit as exc:
            status = exc.code if isinstance(exc.code, int) else 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as output:
        printed = output.read().decode()
    _, wait_status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(wait_status), printed


def test_unreadable_file_is_78_through_the_option_and_the_environment(workdir: Path) -> None:
    """A config file the daemon's user may not read gives the same one line and exit 78
    (which systemd does not restart) whether named by --config or by $MUSIQUED_CONFIG; not
    click's usage error and exit 2. As nobody when the tests run as root (root reads
    anything), else as ourselves with the file at mode 000."""
    path = workdir / "secret.toml"
    path.write_text("[daemon]\n")
    workdir.chmod(0o755)
    expected = f"musiqued: config error: {path}: cannot read: Permission denied\n"
    for args, env in (
        (["--config", str(path)], {}),
        ([], {"MUSIQUED_CONFIG": str(path)}),
    ):
        if os.geteuid() == 0:
            path.chmod(0o600)
            status, printed = _musiqued_as_nobody(args, env)
        else:
            path.chmod(0)
            done = musiqued(*args, env=env)
            status, printed = done.returncode, done.stdout + done.stderr
        assert (status, printed) == (78, expected)


def test_permission_denied_is_a_config_error(workdir: Path) -> None:
    """A file its reader may not open: ConfigError naming the file and the reason (checked
    in a child running as nobody, since root reads anything)."""
    path = workdir / "secret.toml"
    path.write_text("[daemon]\n")
    path.chmod(0o600)
    workdir.chmod(0o755)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.setgid(65534)
            os.setuid(65534)
            try:
                load_config(path, environ={})
                message = "loaded"
            except ConfigError as exc:
                message = exc.message
            except Exception as exc:
                message = f"unexpected {exc!r}"
            os.write(write_end, message.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    message = os.read(read_end, 4096).decode()
    os.close(read_end)
    os.waitpid(pid, 0)
    assert message == f"{path}: cannot read: Permission denied"


def test_daemon_refuses_bad_config_with_78(tmp_path: Path) -> None:
    """Starting the daemon (not only --check-config) with a bad file exits 78 at once."""
    path = tmp_path / "m.toml"
    path.write_text("[lastfm]\nrequests_per_second = 0\n")
    done = musiqued_process("--config", str(path))
    assert done.returncode == 78
    assert f"{path}: lastfm.requests_per_second: Input should be greater than 0" in done.stderr


def test_listenbrainz_section(tmp_path: Path) -> None:
    """``[listenbrainz]``: off by default; its token comes from the file, else the credential
    ``listenbrainz_token``, else MUSIQUED_LISTENBRAINZ_TOKEN, and is masked by
    ``--check-config``; the API root always ends with a slash; a token a header cannot carry
    and a URL that is not http(s) are one-line errors that do not show the token."""
    assert not Config().listenbrainz.configured
    assert Config().listenbrainz.api_url == "https://api.listenbrainz.org/"
    path = tmp_path / "m.toml"
    path.write_text('[listenbrainz]\nenabled = true\napi_url = "http://127.0.0.1:9/apis/lb"\n')
    creds = tmp_path / "creds"
    creds.mkdir()
    env = {"MUSIQUED_LISTENBRAINZ_TOKEN": "lb-from-env"}
    config = load_config(path, environ=env)
    assert config.listenbrainz.token.get_secret_value() == "lb-from-env"
    assert config.listenbrainz.api_url == "http://127.0.0.1:9/apis/lb/"
    assert config.listenbrainz.configured
    (creds / "listenbrainz_token").write_text("lb-from-cred\n")
    env["CREDENTIALS_DIRECTORY"] = str(creds)
    assert load_config(path, environ=env).listenbrainz.token.get_secret_value() == "lb-from-cred"
    done = musiqued("--config", str(path), "--check-config", env=env)
    assert done.returncode == 0, done.stderr
    assert "lb-from-cred" not in done.stdout + done.stderr
    assert json.loads(done.stdout)["listenbrainz"]["token"] == "********"
    for text, reason in (
        ('[listenbrainz]\ntoken = "lb-secret x"\n', "listenbrainz.token: contains whitespace"),
        ('[listenbrainz]\ntoken = "lb-secret\\n"\n', "listenbrainz.token: contains whitespace"),
        ('[listenbrainz]\napi_url = "ftp://lb"\n', "listenbrainz.api_url: 'ftp://lb' is not"),
    ):
        path.write_text(text)
        done = musiqued("--config", str(path), "--check-config")
        assert done.returncode == 78
        assert done.stderr.startswith(f"musiqued: config error: {path}: {reason}")
        assert done.stderr.count("\n") == 1
        assert "lb-secret" not in done.stderr
