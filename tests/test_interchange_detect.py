"""Telling a file's format from its name and first bytes; refusing, in one line naming the
file, one that is none of them."""

from __future__ import annotations

import io
import zipfile

import pytest

from musiqued.errors import BadFileError
from musiqued.interchange.formats import DETECT_BYTES, detect
from tests import interchange_files as files

END = 1_655_495_586


def spotify_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            "Spotify Extended Streaming History/Streaming_History_Audio_2022.json",
            files.json_file([files.spotify_play(END)]),
        )
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        (
            "Streaming_History_Audio_2022.json",
            files.json_file([files.spotify_play(END)]),
            "spotify",
        ),
        ("endsong_3.json", files.json_file([files.spotify_play(END, username="u")]), "spotify"),
        ("StreamingHistory0.json", files.json_file([files.spotify_account_play(END)]), "spotify"),
        ("StreamingHistory_music_1.json", b"[]", "spotify"),
        ("download.bin", files.json_file([files.spotify_play(END)], bom=True), "spotify"),
        ("my_spotify_data.zip", spotify_zip(), "spotify"),
        ("lb.zip", files.listenbrainz_zip([files.listenbrainz_listen(END)]), "listenbrainz"),
        ("listens.jsonl", files.json_lines([files.listenbrainz_listen(END)]), "listenbrainz"),
        ("old.json", files.json_file([files.listenbrainz_listen(END)]), "listenbrainz"),
        ("maloja_export.json", files.maloja_export([files.maloja_scrobble(END)]), "maloja"),
        ("old_maloja.json", b'{"scrobbles": []}', "maloja"),
        ("s.csv", files.lastfm_csv([["A", "B", "C", "31 Jan 2021 20:15"]]), "lastfm-csv"),
        (
            "latin1.csv",
            files.lastfm_csv([["Beyoncé", "B", "C", "31 Jan 2021 20:15"]], encoding="latin-1"),
            "lastfm-csv",
        ),
        (
            "header.csv",
            files.lastfm_csv(
                [["artist", "album", "title", "date"], ["A", "", "C", "01 Feb 2021 00:00"]]
            ),
            "lastfm-csv",
        ),
        (
            "undated-first.csv",
            files.lastfm_csv([["A", "B", "C", ""], ["A", "B", "C", "31 Jan 2021 20:15"]]),
            "lastfm-csv",
        ),
        (".scrobbler.log", files.scrobbler_log([]), "scrobbler-log"),
    ],
)
def test_each_format_is_recognised(name: str, data: bytes, expected: str) -> None:
    """Each format, in each of its shapes, is told from its start (the name matters only
    for an empty Spotify file)."""
    assert detect(name, data[:DETECT_BYTES]) == expected


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("notes.txt", b"Shopping list\nmilk\n"),
        ("photo.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF"),
        ("empty.json", b""),
        ("empty-array.json", b"[]"),
        ("other.json", b'[{"name": "x", "plays": 3}]'),
        ("other.zip", b"PK\x03\x04" + bytes(22) + b"\x05\x00\x00\x00" + b"a.txt"),
        ("config.json", b'{"lastfm": {"username": "x"}}'),
        ("wrong.csv", b"a,b,c\n1,2,3\n"),
    ],
)
def test_a_file_of_no_known_format_is_refused_in_one_line_naming_it(name: str, data: bytes) -> None:
    """Anything else is refused: one line, starting with the file's name."""
    with pytest.raises(BadFileError) as raised:
        detect(name, data)
    assert raised.value.kind == "unknown_format"
    assert raised.value.message == (
        f"{name}: not a file musiqued can import (a Spotify streaming history, a ListenBrainz "
        "or Maloja export, a Last.fm CSV or a .scrobbler.log)"
    )


def test_a_name_with_control_characters_is_shown_visibly() -> None:
    """The refusal stays one line even for a name holding a newline or an escape."""
    with pytest.raises(BadFileError) as raised:
        detect("evil\n\x1b[31mname.txt", b"nothing")
    assert raised.value.message.startswith("evil\\n\\x1b[31mname.txt: not a file")
    assert "\n" not in raised.value.message
