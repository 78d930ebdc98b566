"""journald: the native protocol, the field mapping, and what a real journald stores.

The first tests read the handler's datagrams on a socket of our own (a tiny journald that
decodes the native protocol, memfds included); the rest run the daemon against a real
systemd-journald and ask ``journalctl`` what it stored.
"""

from __future__ import annotations

import array
import logging
import os
import secrets
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from click.testing import CliRunner

from musiqued.app import logs
from musiqued.app.cli import command
from musiqued.app.journal import JournalHandler, event_slug, field_name, priority
from tests.fixtures.daemon import daemon_for_a_module
from tests.fixtures.journald import Journal
from tests.support import DaemonProcess, base_sections, write_config

# -- a journald of our own: decodes what the handler sends ---------------------------------


def decode_native(payload: bytes) -> dict[str, list[bytes]]:
    """journald's native protocol: ``KEY=value\\n``, or ``KEY\\n`` + u64 LE size + data + ``\\n``."""
    fields: dict[str, list[bytes]] = {}
    at = 0
    while at < len(payload):
        end = payload.index(b"\n", at)
        line = payload[at:end]
        if b"=" in line:
            key, value = line.split(b"=", 1)
            at = end + 1
        else:
            key = line
            (size,) = struct.unpack("<Q", payload[end + 1 : end + 9])
            value = payload[end + 9 : end + 9 + size]
            assert payload[end + 9 + size : end + 10 + size] == b"\n"
            at = end + 10 + size
        fields.setdefault(key.decode(), []).append(value)
    return fields


class FakeJournald:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(5)
        self.memfds = 0

    def receive(self) -> dict[str, str]:
        data, ancillary, _, _ = self.sock.recvmsg(1 << 20, socket.CMSG_SPACE(4))
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fd = array.array("i", payload[:4])[0]
                self.memfds += 1
                with os.fdopen(fd, "rb") as memfd:
                    memfd.seek(0)
                    data = memfd.read()
        decoded = decode_native(data)
        return {key: b"\n".join(values).decode() for key, values in decoded.items()}

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def fake_journald(workdir: Path) -> Iterator[FakeJournald]:
    journal = FakeJournald(workdir / "journal.sock")
    yield journal
    journal.close()


@pytest.fixture
def journal_logger(fake_journald: FakeJournald) -> Iterator[Any]:
    """A structlog logger wired the way ``configure_logging("journal")`` wires the daemon's."""
    stdlib = logging.getLogger(f"musique-test-journal-{secrets.token_hex(4)}")
    stdlib.propagate = False
    stdlib.setLevel(logging.DEBUG)
    handler = JournalHandler(
        socket_path=fake_journald.path, pre_chain=logs.SHARED_PROCESSORS, scrub=logs.scrub
    )
    stdlib.addHandler(handler)
    logger = structlog.wrap_logger(
        stdlib,
        processors=[
            *logs.SHARED_PROCESSORS,
            logs._callsite_adder("journal"),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        wrapper_class=structlog.stdlib.BoundLogger,
    )
    yield logger
    stdlib.removeHandler(handler)
    handler.close()
    logs.register_secrets(())


def test_fields_are_mapped_for_journalctl(fake_journald: FakeJournald, journal_logger: Any) -> None:
    """An event becomes MESSAGE/PRIORITY/SYSLOG_IDENTIFIER/CODE_*, MUSIQUE_EVENT and one
    MUSIQUE_<KEY> per field; the timestamp and level are journald's own business."""
    journal_logger.warning("job failed", job_id=7, method="import.start", ok=False, pages=[1, 2])
    entry = fake_journald.receive()
    assert entry["MESSAGE"].startswith("job failed job_id=7 method=import.start")
    assert entry["PRIORITY"] == "4"
    assert entry["SYSLOG_IDENTIFIER"] == "musiqued"
    assert entry["CODE_FILE"] == __file__
    assert entry["CODE_FUNC"] == "test_fields_are_mapped_for_journalctl"
    assert int(entry["CODE_LINE"]) > 0
    assert entry["MUSIQUE_EVENT"] == "job_failed"
    assert entry["MUSIQUE_JOB_ID"] == "7"
    assert entry["MUSIQUE_METHOD"] == "import.start"
    assert entry["MUSIQUE_OK"] == "false"
    assert entry["MUSIQUE_PAGES"] == "[1, 2]"
    assert "MUSIQUE_TIMESTAMP" not in entry
    assert "MUSIQUE_LEVEL" not in entry


def test_multiline_value_is_length_prefixed(
    fake_journald: FakeJournald, journal_logger: Any
) -> None:
    """A value with newlines (and '=' signs) arrives byte for byte, not cut at the newline."""
    text = "first line\nsecond = line\n\nfourth"
    journal_logger.info("detail", detail=text)
    entry = fake_journald.receive()
    assert entry["MUSIQUE_DETAIL"] == text
    assert fake_journald.memfds == 0


def test_entry_larger_than_a_datagram_goes_through_a_memfd(
    fake_journald: FakeJournald, journal_logger: Any
) -> None:
    """An entry over the socket's datagram limit is passed as a sealed memfd, not lost."""
    big = "x" * 400_000
    journal_logger.info("big entry", blob=big)
    entry = fake_journald.receive()
    assert fake_journald.memfds == 1
    assert entry["MUSIQUE_BLOB"] == big


def test_exception_goes_into_message_and_exception_field(
    fake_journald: FakeJournald, journal_logger: Any
) -> None:
    """log.exception: MESSAGE carries the traceback, MUSIQUE_EXCEPTION its last line."""
    try:
        raise ValueError("bad page")
    except ValueError:
        journal_logger.exception("page failed")
    entry = fake_journald.receive()
    assert entry["PRIORITY"] == "3"
    assert "Traceback (most recent call last)" in entry["MESSAGE"]
    assert entry["MUSIQUE_EXCEPTION"] == "ValueError: bad page"


def test_secrets_are_scrubbed_before_sending(
    fake_journald: FakeJournald, journal_logger: Any
) -> None:
    """A configured secret never leaves the process, whatever field or message quotes it."""
    secret = "s3cr3t-" + secrets.token_hex(8)
    logs.register_secrets([secret])
    journal_logger.error(
        f"request to https://x/?api_key={secret} failed",
        url=f"https://ws.example/?api_key={secret}&method=x",
        api_key=secret,
        nested={"client_secret": secret, "note": f"key {secret}"},
    )
    entry = fake_journald.receive()
    flat = "\n".join(f"{k}={v}" for k, v in entry.items())
    assert secret not in flat
    assert entry["MUSIQUE_API_KEY"] == "********"


def test_stdlib_records_get_the_same_treatment(fake_journald: FakeJournald) -> None:
    """Records from plain ``logging`` (aiohttp, asyncio) get MESSAGE, PRIORITY and CODE_*."""
    stdlib = logging.getLogger(f"musique-test-plain-{secrets.token_hex(4)}")
    stdlib.propagate = False
    handler = JournalHandler(socket_path=fake_journald.path, pre_chain=logs.SHARED_PROCESSORS)
    stdlib.addHandler(handler)
    try:
        stdlib.error("connection lost to %s", "host")
    finally:
        stdlib.removeHandler(handler)
        handler.close()
    entry = fake_journald.receive()
    assert entry["MESSAGE"] == "connection lost to host"
    assert entry["PRIORITY"] == "3"
    assert entry["CODE_FUNC"] == "test_stdlib_records_get_the_same_treatment"
    assert entry["MUSIQUE_LOGGER"] == stdlib.name


def test_unreachable_journald_falls_back_to_stderr(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No journald: the handler says so once and writes the messages to stderr."""
    stdlib = logging.getLogger(f"musique-test-nojournal-{secrets.token_hex(4)}")
    stdlib.propagate = False
    handler = JournalHandler(socket_path=workdir / "absent.sock")
    stdlib.addHandler(handler)
    try:
        stdlib.warning("first")
        stdlib.warning("second")
    finally:
        stdlib.removeHandler(handler)
        handler.close()
    err = capsys.readouterr().err
    assert err.count("journald unreachable") == 1
    assert "first" in err
    assert "second" in err


def test_names_priorities_and_slugs() -> None:
    """Field names are what journald accepts; levels map to syslog priorities."""
    assert field_name("job_id") == "MUSIQUE_JOB_ID"
    assert field_name("peer-pid") == "MUSIQUE_PEER_PID"
    assert field_name("x" * 100) == ("MUSIQUE_" + "X" * 100)[:64]
    assert event_slug("tracker poll failing; backing off") == "tracker_poll_failing_backing_off"
    assert [priority(level) for level in (50, 40, 30, 20, 10, 25)] == [2, 3, 4, 6, 7, 6]


# -- a real journald -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def journal_daemon(journald: Journal) -> Iterator[DaemonProcess]:
    """One daemon logging to the journal (``--log-target journal``), with the test-only RPC
    methods, for the tests that only ask it to log things."""
    with daemon_for_a_module() as daemon:
        yield daemon.start(extra_args=("--log-target", "journal"), hooks=True)


def test_journalctl_finds_entries_by_event_and_job(
    journald: Journal, journal_daemon: DaemonProcess
) -> None:
    """``journalctl SYSLOG_IDENTIFIER=musiqued MUSIQUE_EVENT=…`` and ``MUSIQUE_JOB_ID=…``
    find the daemon's entries, with the right PRIORITY, fields and a multi-line value."""
    token = secrets.token_hex(4)
    job_id = int.from_bytes(os.urandom(3), "big") + 1_000_000
    journal_daemon.call(
        "test.log",
        {
            "event": f"probe {token}",
            "level": "warning",
            "fields": {"job_id": job_id, "method": "import.start", "detail": "one\ntwo\nthree"},
        },
    )
    (entry,) = journald.wait_for("SYSLOG_IDENTIFIER=musiqued", f"MUSIQUE_EVENT=probe_{token}")
    assert entry["PRIORITY"] == "4"
    assert entry["MUSIQUE_JOB_ID"] == str(job_id)
    assert entry["MUSIQUE_METHOD"] == "import.start"
    assert entry["MUSIQUE_DETAIL"] == "one\ntwo\nthree"
    assert entry["CODE_FILE"].endswith("tests/testhooks.py")
    assert entry["CODE_FUNC"] == "log_event"
    assert entry["_PID"] == str(journal_daemon.proc.pid if journal_daemon.proc else 0)
    (by_job,) = journald.wait_for(f"MUSIQUE_JOB_ID={job_id}")
    assert by_job["MUSIQUE_EVENT"] == f"probe_{token}"
    # The daemon's own lifecycle lines are there too, at info.
    started = journald.wait_for(
        "SYSLOG_IDENTIFIER=musiqued", "MUSIQUE_EVENT=musiqued_ready", f"_PID={entry['_PID']}"
    )
    assert started[0]["PRIORITY"] == "6"


def test_oversized_entry_and_errors_reach_journald(
    journald: Journal, journal_daemon: DaemonProcess
) -> None:
    """A 300 kB entry (too big for one datagram) is stored whole; an error keeps its
    traceback in MESSAGE and priority 3."""
    token = secrets.token_hex(4)
    blob = "y" * 300_000
    journal_daemon.call("test.log", {"event": f"big {token}", "fields": {"blob": blob}})
    journal_daemon.call(
        "test.log", {"event": f"fail {token}", "level": "error", "raise_error": "boom"}
    )
    (big,) = journald.wait_for(f"MUSIQUE_EVENT=big_{token}")
    assert big["MUSIQUE_BLOB"] == blob
    assert big["PRIORITY"] == "6"
    (failed,) = journald.wait_for(f"MUSIQUE_EVENT=fail_{token}")
    assert failed["PRIORITY"] == "3"
    assert failed["MUSIQUE_EXCEPTION"] == "RuntimeError: boom"
    assert "Traceback" in failed["MESSAGE"]


def test_started_as_systemd_starts_it(journald: Journal, workdir: Path, tmp_path: Path) -> None:
    """Started as the unit starts it, stderr connected to the journal (``$JOURNAL_STREAM``
    names it) and the secrets in ``$CREDENTIALS_DIRECTORY``: with ``--log-target auto`` it
    logs natively (entries carry MUSIQUE_ fields) and writes nothing to stderr; the
    credentials configure it (daemon.status says so) and appear neither in the journal,
    from its start to its stop, nor in ``musiqued --check-config``."""
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    values = {
        "lastfm_api_key": "lfm-" + secrets.token_hex(12),
        "lastfm_api_secret": "lfs-" + secrets.token_hex(12),
        "spotify_client_id": "spi-" + secrets.token_hex(12),
        "spotify_client_secret": "sps-" + secrets.token_hex(12),
        "ai_api_key": "aik-" + secrets.token_hex(12),
    }
    for name, value in values.items():
        (credentials / name).write_text(value + "\n", encoding="utf-8")
    sections = base_sections(
        workdir,
        lastfm={"username": "someone"},
        ai={"api_url": "http://127.0.0.1:9/v1/chat/completions", "model": "m"},
    )
    config = write_config(workdir / "musiqued.toml", sections)
    daemon = DaemonProcess(workdir, config, workdir / "d.sock")
    stderr_path = workdir / "stderr.log"
    with stderr_path.open("wb") as stderr:
        info = os.fstat(stderr.fileno())
        process = daemon.launch(
            [sys.executable, "-m", "tests.hooked_musiqued", "--config", str(config)],
            env={
                "JOURNAL_STREAM": f"{info.st_dev}:{info.st_ino}",
                "CREDENTIALS_DIRECTORY": str(credentials),
            },
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        daemon.wait_ready()
        status = daemon.call("daemon.status")
        assert status["configured"] == {"lastfm": True, "spotify": True, "ai": True}
        token = secrets.token_hex(4)
        key = values["lastfm_api_key"]
        daemon.call(
            "test.log",
            {
                "event": f"leak {token} https://ws.audioscrobbler.com/2.0/?api_key={key}",
                "level": "error",
                "fields": {"api_key": key, "url": f"http://x/?api_key={key}", "raw": key},
            },
        )
        (leak,) = journald.wait_for(
            f"MUSIQUE_EVENT=leak_{token}_https_ws_audioscrobbler_com_2_0_api_key"
        )
        assert leak["_PID"] == str(process.pid)
    finally:
        daemon.stop()
    journald.wait_for(f"_PID={process.pid}", "MUSIQUE_EVENT=musiqued_stopped")
    everything = journald.raw(f"_PID={process.pid}")
    assert "MUSIQUE_EVENT=musiqued_ready" in everything
    for value in values.values():
        assert value not in everything
    assert stderr_path.read_text(encoding="utf-8") == ""

    checked = CliRunner().invoke(
        command(),
        ["--config", str(config), "--check-config"],
        env={"CREDENTIALS_DIRECTORY": str(credentials)},
    )
    assert checked.exit_code == 0, checked.output
    assert '"api_key": "********"' in checked.stdout
    for value in values.values():
        assert value not in checked.stdout + checked.stderr


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
