"""musiquectl's side of the file handover: each PATH opened read only, the descriptors sent
over a Unix socket with the JSON-RPC request line they belong to."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from musiquectl.files import (
    MAX_FILES,
    FileRefused,
    hand_over,
    import_params,
    local_zone_name,
    open_files,
)


def open_descriptors() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_descriptors_travel_in_one_message_after_the_go_ahead(tmp_path: Path) -> None:
    """The request's params name each file (as given), its index and size; ``hand_over``
    sends one byte carrying one descriptor per file, in that order; each reads the file's
    bytes from its start; the sender keeps no descriptor open."""
    first = tmp_path / "Streaming_History_Audio_2022.json"
    first.write_bytes(b'\xef\xbb\xbf[{"ts": "2022-06-17T19:53:06Z"}]')
    second = tmp_path / "scrobbles.csv"
    second.write_bytes(b"A,B,C,31 Jan 2021 20:15\r\n")
    before = open_descriptors()
    sender, receiver = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with sender, receiver:
        opened = open_files([str(first), str(second)])
        params = import_params(opened, fmt="auto", dry_run=True)
        assert params.pop("zone", None) == local_zone_name()
        assert json.loads(json.dumps(params)) == {
            "files": [
                {"name": str(first), "fd": 0, "size": first.stat().st_size},
                {"name": str(second), "fd": 1, "size": second.stat().st_size},
            ],
            "format": "auto",
            "dry_run": True,
        }
        receiver.settimeout(10)
        hand_over(sender, opened)
        assert not opened.fds
        data, descriptors, _flags, _address = socket.recv_fds(receiver, 16, MAX_FILES)
        try:
            assert data == b"F"
            assert len(descriptors) == 2
            assert os.read(descriptors[0], 100) == first.read_bytes()
            assert os.read(descriptors[1], 100) == second.read_bytes()
        finally:
            for fd in descriptors:
                os.close(fd)
    assert open_descriptors() == before


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda base: base / "missing.json", "cannot open: No such file or directory"),
        (lambda base: base, "not a regular file"),
    ],
)
def test_a_path_that_cannot_be_handed_over_is_refused_naming_it(
    tmp_path: Path, make: object, reason: str
) -> None:
    """A missing file or a directory among the paths: one line naming it and why, and no
    descriptor of the others left open."""
    good = tmp_path / "good.jsonl"
    good.write_text("{}\n")
    bad = make(tmp_path)  # type: ignore[operator]
    before = open_descriptors()
    with pytest.raises(FileRefused) as raised:
        open_files([str(good), str(bad)])
    assert str(raised.value) == f"{bad}: {reason}"
    assert open_descriptors() == before


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    """A named pipe is no file to import: refused at once (opening it does not block)."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(FileRefused, match=r"pipe: not a regular file$"):
        open_files([str(fifo)])


def test_more_files_than_one_message_carries_are_refused(tmp_path: Path) -> None:
    """More paths than Linux passes in one message: refused before anything is opened."""
    with pytest.raises(FileRefused, match=rf"^{MAX_FILES + 1} files at once"):
        open_files([str(tmp_path / "x")] * (MAX_FILES + 1))


def test_a_path_with_control_characters_is_shown_visibly(tmp_path: Path) -> None:
    """The refusal stays one line whatever the path holds."""
    with pytest.raises(FileRefused) as raised:
        open_files([f"{tmp_path}/a\nb\x1b[0m"])
    assert str(raised.value) == f"{tmp_path}/a\\nb\\x1b[0m: cannot open: No such file or directory"


@pytest.mark.parametrize(
    ("tz", "name"), [(":Europe/Zurich", "Europe/Zurich"), ("America/New_York", "America/New_York")]
)
def test_the_callers_zone_comes_from_tz(
    monkeypatch: pytest.MonkeyPatch, tz: str, name: str
) -> None:
    """$TZ names the zone sent with the files (a .scrobbler.log in local time is read in it)."""
    monkeypatch.setenv("TZ", tz)
    assert local_zone_name() == name
