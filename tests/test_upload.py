"""The Settings page's file upload (``POST /api/v1/imports/files``) over real HTTP, the
daemon's services and HTTP listener served in the test's process: the files become the same
``file`` job as ``musiquectl import-file`` makes, within the HTTP limits, behind the same
credential and origin checks; every refusal stores nothing and leaves no file behind."""

from __future__ import annotations

import http.client
import json
import logging
import os
import socket
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from selenium.webdriver.common.by import By

from musiqued.app.config import load_config
from musiqued.errors import ConfigError
from tests import interchange_files as files
from tests.fixtures.threaded import ServeInThread, ThreadedDaemon
from tests.flood_support import wait_closed
from tests.page_support import (
    by_id,
    console_problems,
    job_row,
    open_page,
    phone_view,
    serves_page,
    text_of,
    wait_for,
    wider_than_the_screen,
)
from tests.support import HTTP_TOKEN, free_port

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

START = 1_700_000_000
BOUNDARY = "upload-boundary-7MA4YWxkTrZu0gW"
PATH = "/api/v1/imports/files"
STALL_S = 2
# How long the test waits for the daemon to close a stalled upload: the stall allowed,
# and room for a loaded machine.
CLOSE_WITHIN_S = STALL_S + 20


class Served:
    """The daemon under test and its HTTP port."""

    def __init__(self, daemon: ThreadedDaemon, port: int, workdir: Path) -> None:
        self.daemon = daemon
        self.port = port
        self.workdir = workdir

    def nothing_stored(self) -> None:
        """No listen, no job, no copy, and no file (named or not) left open or behind."""
        assert self.daemon.call("daemon.status")["listens"] == 0
        assert self.daemon.call("jobs.list", {"limit": 10}) == []
        imports = self.workdir / "imports"
        assert not imports.exists() or list(imports.iterdir()) == []
        assert held_in(self.workdir) == []


def held_in(folder: Path) -> list[str]:
    """The files in ``folder`` this process holds open that no name reaches any more (the
    daemon's temporary files; its database files have names)."""
    held = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(folder)) and target.endswith("(deleted)"):
            held.append(target)
    return held


@pytest.fixture
def served(serve_in_thread: ServeInThread, workdir: Path) -> Served:
    """HTTP with a 1 MiB upload limit and a 2 s request timeout."""
    port = free_port()
    daemon = serve_in_thread(
        http={
            "listen": f"127.0.0.1:{port}",
            "token": HTTP_TOKEN,
            "max_upload_mb": 1,
            "request_timeout_seconds": STALL_S,
        }
    )
    return Served(daemon, port, workdir)


def multipart(parts: list[tuple[str | None, bytes]]) -> bytes:
    """A ``multipart/form-data`` body, as a browser sends a file input's files: one part per
    ``(filename, content)`` (a part without a filename is a plain form field)."""
    body = b""
    for filename, content in parts:
        disposition = 'form-data; name="file"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        kind = "application/octet-stream" if filename is not None else "text/plain"
        body += (
            f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\nContent-Type: {kind}\r\n\r\n"
        ).encode()
        body += content + b"\r\n"
    return body + f"--{BOUNDARY}--\r\n".encode()


MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


def post(
    port: int,
    body: bytes,
    *,
    query: str = "",
    headers: Mapping[str, str] | None = None,
    token: str | None = HTTP_TOKEN,
) -> tuple[int, dict[str, Any]]:
    """(status, JSON answer) of an upload of ``body``."""
    sent = {"Content-Type": MULTIPART, **(headers or {})}
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("POST", f"{PATH}{'?' + query if query else ''}", body=body, headers=sent)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def spotify_dump() -> bytes:
    """Six plays of Artist's Song 0..5 (started ``START + i * 600``), a short play, an
    incognito one and a podcast episode."""
    entries = [files.spotify_play(START + i * 600 + 200, track=f"Song {i}") for i in range(6)]
    entries.append(files.spotify_play(START + 9_000, ms_played=12_000))
    entries.append(files.spotify_play(START + 9_500, incognito=True))
    entries.append(files.spotify_episode(START + 9_900))
    return files.json_file(entries, bom=True, crlf=True)


def listenbrainz_jsonl() -> bytes:
    """Two listens of plays the Spotify dump holds (30 s off), two it does not."""
    return files.json_lines(
        [
            files.listenbrainz_listen(START + 30, title="Song 0"),
            files.listenbrainz_listen(START + 600 - 30, title="song 1"),
            files.listenbrainz_listen(START + 20_000, title="Other 0"),
            files.listenbrainz_listen(START + 20_600, title="Other 1"),
        ]
    )


SUMMARY = {
    "entries": 13,
    "added": 8,
    "already_stored": 2,
    "skipped": {"short_play": 1, "incognito": 1, "podcast": 1},
    "unreadable": 0,
}


def test_a_spotify_dump_and_a_listenbrainz_export_import_with_exact_counts(
    served: Served,
) -> None:
    """A dry run of the two files answers the summary and stores nothing; the upload itself
    starts a ``file`` job (202) whose summary is the same, the ListenBrainz plays Spotify's
    dump already gave counted as stored, each listen added with its origin."""
    body = multipart(
        [
            ("Streaming_History_Audio_2023.json", spotify_dump()),
            ("listens.jsonl", listenbrainz_jsonl()),
        ]
    )
    status, dry = post(served.port, body, query="dry_run=true")
    assert status == 200, dry
    assert dry == {**SUMMARY, "dry_run": True}
    served.nothing_stored()

    status, answer = post(served.port, body)
    assert status == 202, answer
    job = served.daemon.wait_job(answer["job_id"])
    assert (job["kind"], job["state"]) == ("file", "done")
    assert job["result"] == SUMMARY
    assert [f["name"] for f in job["params"]["files"]] == [
        "Streaming_History_Audio_2023.json",
        "listens.jsonl",
    ]
    assert [f["format"] for f in job["params"]["files"]] == ["spotify", "listenbrainz"]
    assert served.daemon.call("daemon.status")["listens"] == 8
    listens = served.daemon.call("history.recent", {"limit": 20})
    origins = sorted((listen["title"], listen["origin"]) for listen in listens)
    assert origins == [
        ("Other 0", "listenbrainz"),
        ("Other 1", "listenbrainz"),
        *((f"Song {i}", "spotify") for i in range(6)),
    ]
    assert held_in(served.workdir) == []


def test_an_upload_over_the_limit_is_refused_413_and_nothing_kept(served: Served) -> None:
    """Over ``[http] max_upload_mb`` (1 MiB here): a body announced larger is refused
    before it is read, one sent in chunks once it grows past the limit; both 413 saying the
    limit, nothing stored, no temporary file left."""
    big = b"x" * (1024 * 1024 + 1)
    status, answer = post(served.port, multipart([("Streaming_History_Audio_0.json", big)]))
    assert status == 413
    assert answer["kind"] == "upload_too_large"
    assert answer["detail"].startswith("the upload is over the 1 MiB limit ([http] max_upload_mb)")
    served.nothing_stored()

    body = multipart([("Streaming_History_Audio_0.json", spotify_dump() + b" " * len(big))])
    with socket.create_connection(("127.0.0.1", served.port), timeout=30) as sock:
        sock.sendall(
            f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {MULTIPART}\r\n"
            f"Authorization: Bearer {HTTP_TOKEN}\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        )
        for at in range(0, len(body), 65536):
            piece = body[at : at + 65536]
            sock.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        sock.sendall(b"0\r\n\r\n")
        status, answer = read_answer(sock)
    assert status == 413
    assert answer["kind"] == "upload_too_large"
    served.nothing_stored()


def read_answer(sock: socket.socket) -> tuple[int, dict[str, Any]]:
    """The status and JSON body of the one answer ``sock`` gets (read up to its end)."""
    raw = b""
    while b"\r\n\r\n" not in raw:
        chunk = sock.recv(65536)
        assert chunk, raw
        raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    length = int(
        next(
            line.split(b":")[1]
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, raw
        body += chunk
    return int(head.split(b" ", 2)[1]), json.loads(body[:length])


def test_a_stalled_upload_is_answered_408_and_nothing_kept(served: Served) -> None:
    """An upload whose body stops coming halfway through a file gets a JSON 408 once
    ``request_timeout_seconds`` pass without a byte, its connection closed; what arrived
    is dropped."""
    body = multipart([("Streaming_History_Audio_0.json", spotify_dump())])
    with socket.create_connection(("127.0.0.1", served.port), timeout=30) as sock:
        sock.sendall(
            f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {MULTIPART}\r\n"
            f"Authorization: Bearer {HTTP_TOKEN}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body[: len(body) // 2]
        )
        ending = wait_closed([sock], CLOSE_WITHIN_S)[0]
    assert ending is not None, "the stalled upload's connection was not closed"
    head, _, answer = ending.answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 ")
    assert json.loads(answer) == {
        "detail": f"the upload stalled: nothing arrived for {STALL_S} s",
        "kind": "request_timeout",
    }
    served.nothing_stored()


def test_a_cross_site_upload_is_refused(served: Served) -> None:
    """A page elsewhere cannot upload through the browser: an upload whose ``Origin`` (or,
    without one, ``Sec-Fetch-Site``) is another site is refused 403, credential or not,
    before its body is read."""
    body = multipart([("Streaming_History_Audio_0.json", spotify_dump())])
    status, answer = post(served.port, body, headers={"Origin": "http://evil.example"})
    assert status == 403
    assert answer["kind"] == "cross_origin"
    status, answer = post(served.port, body, headers={"Sec-Fetch-Site": "cross-site"})
    assert status == 403
    assert answer["kind"] == "cross_origin"
    served.nothing_stored()


def test_an_upload_without_a_credential_is_refused_401(served: Served) -> None:
    """No token and no session: 401 saying how to get in; nothing imported."""
    body = multipart([("Streaming_History_Audio_0.json", spotify_dump())])
    status, answer = post(served.port, body, token=None)
    assert status == 401
    assert answer["kind"] == "unauthorized"
    status, answer = post(served.port, body, token="wrong-token-0123456789")
    assert status == 401
    served.nothing_stored()


def test_a_file_of_no_known_format_is_refused_in_one_line_naming_it(served: Served) -> None:
    """With ``format=auto``, a file that is no export musiqued reads is refused 422 in one
    line naming it, even beside a good file; nothing stored."""
    body = multipart(
        [("Streaming_History_Audio_0.json", spotify_dump()), ("notes.txt", b"hello\nworld\n")]
    )
    status, answer = post(served.port, body, query="format=auto")
    assert status == 422
    assert answer["kind"] == "unknown_format"
    assert answer["detail"].startswith("notes.txt: not a file musiqued can import")
    assert "\n" not in answer["detail"]
    served.nothing_stored()


BAD_UPLOADS = {
    "unknown format": ("format=xml", MULTIPART, multipart([("a.json", b"[]")]), 422, "format"),
    "unknown zone": ("zone=Mars/Olympus", MULTIPART, multipart([("a.json", b"[]")]), 422, "zone"),
    "not multipart": ("", "application/json", b"{}", 415, "multipart/form-data"),
    "no boundary": ("", "multipart/form-data", b"--x--\r\n", 400, "multipart"),
    "no file": ("", MULTIPART, f"--{BOUNDARY}--\r\n".encode(), 422, "holds no file"),
    "a field, not a file": ("", MULTIPART, multipart([(None, b"x")]), 422, "must be a file"),
}


@pytest.mark.parametrize("case", list(BAD_UPLOADS))
def test_a_malformed_upload_is_refused_in_one_line(served: Served, case: str) -> None:
    """Bad options, a body that is not multipart or holds no file: a clear one-line error
    with a fitting status, nothing stored."""
    query, content_type, body, status, words = BAD_UPLOADS[case]
    answered, answer = post(served.port, body, query=query, headers={"Content-Type": content_type})
    assert answered == status, answer
    assert words in answer["detail"]
    assert "\n" not in answer["detail"]
    served.nothing_stored()


def test_a_client_leaving_mid_upload_leaves_nothing(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    """A browser tab closed halfway through an upload: nothing stored, no file left, and
    the daemon logs no failure for it."""
    body = multipart([("Streaming_History_Audio_0.json", spotify_dump())])
    with socket.create_connection(("127.0.0.1", served.port), timeout=30) as sock:
        sock.sendall(
            f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {MULTIPART}\r\n"
            f"Authorization: Bearer {HTTP_TOKEN}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body[: len(body) // 2]
        )
        served.daemon.wait_until(lambda: held_in(served.workdir))
    served.daemon.wait_until(lambda: not held_in(served.workdir))
    served.nothing_stored()
    assert not [e for e in served.daemon.logs if e.get("log_level") in ("error", "critical")]
    assert served.daemon.logged("http upload abandoned: the client left")
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


@pytest.mark.parametrize("value", [0, 8193, "'big'"])
def test_an_upload_limit_out_of_bounds_is_refused_in_one_line(
    tmp_path: Path, value: object
) -> None:
    """``[http] max_upload_mb`` is from 1 to 8192 MiB: anything else stops the configuration
    from loading, in one line naming the key; both ends are taken."""
    path = tmp_path / "musiqued.toml"
    path.write_text(f"[http]\nmax_upload_mb = {value}\n")
    with pytest.raises(ConfigError) as refused:
        load_config(path, environ={})
    assert str(refused.value).startswith(f"{path}: http.max_upload_mb: ")
    assert "\n" not in str(refused.value)
    for edge in (1, 8192):
        path.write_text(f"[http]\nmax_upload_mb = {edge}\n")
        assert load_config(path, environ={}).http.max_upload_mb == edge


# -- the Settings page ---------------------------------------------------------------------


@pytest.mark.slow
def test_the_settings_page_uploads_files_and_shows_the_jobs_summary(
    browser: WebDriver,
    screenshot: Callable[[str], Path],
    serve_in_thread: ServeInThread,
    tmp_path: Path,
) -> None:
    """On the Settings page, files picked in the labelled file input are uploaded: a dry run
    shows the summary and stores nothing; the import shows its job's summary when it ends
    (the jobs table has the job); a file of no known format is refused in one line naming
    it, and files over ``[http] max_upload_mb`` in one line saying the limit. At 390 px the
    card fits, without sideways scrolling."""
    port = free_port()
    daemon = serve_in_thread(http={"listen": f"127.0.0.1:{port}", "max_upload_mb": 1})
    url = f"http://127.0.0.1:{port}"
    serves_page(daemon, url)
    dump = tmp_path / "Streaming_History_Audio_2023.json"
    dump.write_bytes(spotify_dump())
    listens = tmp_path / "listens.jsonl"
    listens.write_bytes(listenbrainz_jsonl())
    browser.get_log("browser")  # forget what earlier pages logged
    open_page(browser, url)
    assert by_id(browser, "upload-files").get_attribute("multiple") is not None
    label = browser.find_element(By.CSS_SELECTOR, 'label[for="upload-files"]')
    assert label.text == "Files to import"

    by_id(browser, "upload-files").send_keys(f"{dump}\n{listens}")
    by_id(browser, "upload-dry-run").click()
    by_id(browser, "upload-start").click()
    wait_for(browser, lambda d: "Dry run of 2 files: nothing stored" in text_of(d, "upload-state"))
    assert summary_shown(browser) == {
        "Entries read": "13",
        "Added": "8",
        "Already stored": "2",
        "Skipped (incognito)": "1",
        "Skipped (podcast)": "1",
        "Skipped (short play)": "1",
        "Unreadable": "0",
    }
    assert daemon.call("daemon.status")["listens"] == 0
    browser.execute_script(SCROLL_TO_CARD)
    screenshot("dry-run")

    by_id(browser, "upload-dry-run").click()
    by_id(browser, "upload-start").click()
    state = wait_for(
        browser, lambda d: (words := text_of(d, "upload-state")).endswith(": done") and words
    )
    job_id = int(state.removeprefix("File import #").split(":")[0])
    wait_for(browser, lambda d: summary_shown(d).get("Added") == "8")
    assert summary_shown(browser)["Already stored"] == "2"
    assert daemon.call("daemon.status")["listens"] == 8
    wait_for(browser, lambda d: text_of(d, "listens") == "8 listens")
    assert "13 entries read" in job_row(browser, job_id).text
    notice = f'.notice[data-job-id="{job_id}"]'
    wait_for(browser, lambda d: "File import" in d.find_element(By.CSS_SELECTOR, notice).text)
    browser.execute_script(SCROLL_TO_CARD)
    screenshot("imported")

    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"hello\nworld\n")
    by_id(browser, "upload-files").clear()
    by_id(browser, "upload-files").send_keys(str(notes))
    by_id(browser, "upload-start").click()
    wait_for(browser, lambda d: by_id(d, "upload-error").is_displayed())
    refusal = text_of(browser, "upload-error")
    assert refusal.startswith("notes.txt: not a file musiqued can import")
    assert "\n" not in refusal
    assert daemon.call("daemon.status")["listens"] == 8
    browser.execute_script(SCROLL_TO_CARD)
    screenshot("refused")

    big = tmp_path / "Streaming_History_Audio_2024.json"
    big.write_bytes(b"[" + b" " * (2 * 1024 * 1024) + b"]")
    by_id(browser, "upload-files").clear()
    by_id(browser, "upload-files").send_keys(str(big))
    by_id(browser, "upload-start").click()
    wait_for(browser, lambda d: "MiB" in text_of(d, "upload-error"))
    assert text_of(browser, "upload-error").startswith(
        "the upload is over the 1 MiB limit ([http] max_upload_mb); nothing imported"
    )
    assert daemon.call("jobs.list", {"limit": 10})[0]["job_id"] == job_id

    with phone_view(browser):
        browser.execute_script(SCROLL_TO_CARD)
        assert wider_than_the_screen(browser) == []
        screenshot("phone")
    # The two refused uploads are the only failed requests (the browser logs every one).
    problems = console_problems(browser)
    assert len(problems) == 2, problems
    assert all(f"{PATH}?" in problem for problem in problems)
    assert ["422" in problems[0], "413" in problems[1]] == [True, True]


SCROLL_TO_CARD = "document.getElementById('upload').scrollIntoView()"
SUMMARY_SHOWN = """
const terms = [...document.querySelectorAll('#upload-summary dt')];
return Object.fromEntries(terms.map((dt) => [dt.textContent, dt.nextElementSibling.textContent]));
"""


def summary_shown(driver: WebDriver) -> dict[str, str]:
    """The upload card's summary, label → value."""
    return dict(driver.execute_script(SUMMARY_SHOWN))
