"""Reading other services' files: each entry becomes a play, a skip with its reason, or an
unreadable entry with where; a file that breaks keeps what came before and says where."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from collections import Counter
from zoneinfo import ZoneInfo

import pytest

from musiqued.errors import BadFileError
from musiqued.interchange import formats
from musiqued.interchange.entries import Entry, Origin, Play, Skipped, Unreadable
from musiqued.interchange.streams import MAX_LINE_BYTES
from tests import interchange_files as files

END = 1_655_495_586  # 2022-06-17T19:53:06Z


def read_all(fmt: Origin, data: bytes, name: str = "file", **kw: dt.tzinfo) -> list[Entry]:
    return list(formats.read(fmt, io.BytesIO(data), name, **kw))


def tally(entries: list[Entry]) -> Counter[str]:
    """How many plays, skips by reason, and unreadable entries."""
    return Counter(
        "play"
        if isinstance(entry, Play)
        else entry.reason
        if isinstance(entry, Skipped)
        else "unreadable"
        for entry in entries
    )


def plays(entries: list[Entry]) -> list[Play]:
    return [entry for entry in entries if isinstance(entry, Play)]


def test_spotify_extended_history_counts_each_reason() -> None:
    """A Streaming_History_Audio file: music plays are read with their start (ts minus
    ms_played) and track URI; podcasts, audiobook chapters, entries without a track name,
    incognito plays and plays under 30 s are each counted under their own reason; an entry
    without ts is unreadable, with its index."""
    data = files.json_file(
        [
            files.spotify_play(END, ms_played=215_500),
            files.spotify_episode(END + 400),
            files.spotify_chapter(END + 800),
            files.spotify_play(END + 900, track=None, artist=None, album=None, uri=None),
            files.spotify_play(END + 1200, incognito=True),
            files.spotify_play(END + 1300, ms_played=29_999, skipped=True, reason_end="fwdbtn"),
            files.spotify_play(END + 1400, ms_played=30_000),
            {**files.spotify_play(END + 1500), "ts": None},
            "not an object",
        ]
    )
    entries = read_all("spotify", data, "Streaming_History_Audio_2022.json")
    assert tally(entries) == {
        "play": 2,
        "podcast": 1,
        "audiobook": 1,
        "no_track_name": 1,
        "incognito": 1,
        "short_play": 1,
        "unreadable": 2,
    }
    first = plays(entries)[0]
    assert first == Play(
        timestamp=END - 216,  # 215.5 s played: the start floored to the second
        artist="Artist",
        title="Song",
        origin="spotify",
        album="Album",
        spotify_track_uri="spotify:track:4uLU6hMCjMI75M1A2tKUQC",
    )
    assert plays(entries)[1].timestamp == END + 1400 - 30
    unreadable = [entry for entry in entries if isinstance(entry, Unreadable)]
    assert [entry.where for entry in unreadable] == ["entry 8", "entry 9"]


def test_spotify_older_endsong_and_account_data() -> None:
    """The older endsong file reads like the newer one; the account data's
    StreamingHistory file (endTime to the minute, msPlayed) gives the start too, and skips
    its podcast entries."""
    old = files.json_file([files.spotify_play(END, ms_played=60_000, username="x")])
    assert plays(read_all("spotify", old, "endsong_0.json"))[0].timestamp == END - 60
    account = files.json_file(
        [
            files.spotify_account_play(1_612_124_100, ms_played=100_000),  # 2021-01-31 20:15
            files.spotify_account_play(1_612_124_200, ms_played=5_000),
            {
                "endTime": "2021-01-31 20:20",
                "podcastName": "The Show",
                "episodeName": "Episode 1",
                "msPlayed": 900_000,
            },
        ]
    )
    entries = read_all("spotify", account, "StreamingHistory_music_0.json")
    assert tally(entries) == {"play": 1, "short_play": 1, "podcast": 1}
    assert plays(entries)[0].timestamp == 1_612_124_100 - 100
    assert plays(entries)[0].artist == "Artist"


def test_spotify_zip_reads_every_history_file_in_it() -> None:
    """Spotify's own zip is read as its audio history files, its video history and PDF
    left aside; where names the member."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        folder = "Spotify Extended Streaming History/"
        archive.writestr(folder + "ReadMeFirst_ExtendedStreamingHistory.pdf", b"%PDF-1.4")
        archive.writestr(
            folder + "Streaming_History_Audio_2021.json",
            files.json_file([files.spotify_play(END), files.spotify_episode(END + 9)]),
        )
        archive.writestr(
            folder + "Streaming_History_Audio_2022.json", files.json_file([files.spotify_play(END)])
        )
        archive.writestr(
            folder + "Streaming_History_Video_2022.json", files.json_file([files.spotify_play(END)])
        )
    entries = read_all("spotify", buffer.getvalue(), "my_spotify_data.zip")
    assert tally(entries) == {"play": 2, "podcast": 1}
    assert entries[1] == Skipped("podcast", f"{folder}Streaming_History_Audio_2021.json: entry 2")


def test_bom_and_crlf_are_read_in_every_text_format() -> None:
    """A byte order mark and CRLF line ends change nothing, whatever the format."""
    spotify = files.json_file([files.spotify_play(END)], bom=True, crlf=True)
    assert tally(read_all("spotify", spotify)) == {"play": 1}
    maloja = b"\xef\xbb\xbf" + files.maloja_export([files.maloja_scrobble(END)]).replace(
        b"\n", b"\r\n"
    )
    assert tally(read_all("maloja", maloja)) == {"play": 1}
    lines = b"\xef\xbb\xbf" + files.json_lines([files.listenbrainz_listen(END)] * 2, crlf=True)
    assert tally(read_all("listenbrainz", lines)) == {"play": 2}
    array = files.json_file([files.listenbrainz_listen(END)], bom=True, crlf=True)
    assert tally(read_all("listenbrainz", array)) == {"play": 1}
    csv_data = files.lastfm_csv(
        [["Artist", "Album", "Song", "31 Jan 2021 20:15"]] * 2, crlf=True, bom=True
    )
    csv_plays = plays(read_all("lastfm-csv", csv_data))
    assert [play.artist for play in csv_plays] == ["Artist", "Artist"]
    assert csv_plays[1].timestamp == 1_612_124_100
    log = files.scrobbler_log(
        [["Artist", "Album", "Song", "1", "200", "L", str(END), ""]], crlf=True
    )
    log_plays = plays(read_all("scrobbler-log", b"\xef\xbb\xbf" + log))
    assert [(play.title, play.track_mbid) for play in log_plays] == [("Song", "")]


def test_truncated_json_keeps_what_came_before_and_says_where() -> None:
    """A JSON file cut short: the entries before the break are read, then the error names
    the file and the last entry read."""
    whole = files.json_file([files.spotify_play(END + i * 300) for i in range(5)])
    cut = whole[: whole.index(b'"ts"', whole.index(b"ms_played") + 2000) + 10]
    entries: list[Entry] = []
    with pytest.raises(BadFileError) as raised:
        entries.extend(formats.read("spotify", io.BytesIO(cut), "Streaming_History_Audio_1.json"))
    assert tally(entries) == {"play": 3}
    assert raised.value.kind == "broken_json"
    assert raised.value.message == (
        "Streaming_History_Audio_1.json: the JSON breaks after entry 3 (parse error: premature "
        "EOF); the entries before it were read"
    )


def test_json_not_in_utf8_is_a_clear_error() -> None:
    """A JSON file with a Latin-1 byte in a name: refused in one line saying so, without
    the parser's excerpt of the file."""
    data = files.json_file([files.spotify_play(END, track="Café")]).replace(b"\xc3\xa9", b"\xe9")
    with pytest.raises(BadFileError) as raised:
        read_all("spotify", data, "endsong_0.json")
    assert raised.value.message == (
        "endsong_0.json: the JSON breaks before its first entry (lexical error: invalid bytes "
        "in UTF8 string.)"
    )


def test_truncated_maloja_export_says_where() -> None:
    """Maloja's export cut inside a scrobble: the scrobbles before are read."""
    whole = files.maloja_export([files.maloja_scrobble(END + i) for i in range(4)])
    entries: list[Entry] = []
    with pytest.raises(BadFileError, match=r"^maloja_export\.json: the JSON breaks after entry 2"):
        entries.extend(
            formats.read("maloja", io.BytesIO(whole[: len(whole) // 2 + 40]), "maloja_export.json")
        )
    assert tally(entries) == {"play": 2}


def test_csv_not_in_utf8_is_a_clear_error_naming_the_line() -> None:
    """A Last.fm CSV saved in Latin-1: the lines before the first non-UTF-8 byte are read,
    then one line says which line is not UTF-8 and what to do."""
    data = files.lastfm_csv(
        [
            ["Artist", "Album", "Song", "31 Jan 2021 20:15"],
            ["Beyonce", "Album", "Halo", "31 Jan 2021 20:20"],
            ["Beyoncé", "Album", "Halo", "31 Jan 2021 20:25"],
        ],
        encoding="latin-1",
    )
    entries: list[Entry] = []
    with pytest.raises(BadFileError) as raised:
        entries.extend(formats.read("lastfm-csv", io.BytesIO(data), "scrobbles.csv"))
    assert tally(entries) == {"play": 2}
    assert raised.value.kind == "not_utf8"
    assert raised.value.message == (
        "scrobbles.csv: line 3 is not UTF-8 text (byte 0xe9 at column 7); save the file as "
        "UTF-8 and import it again"
    )


def test_lastfm_csv_rows() -> None:
    """Quoted fields keep their commas; a header row is no entry; a row without a date or
    with the wrong number of fields is unreadable, with its line; accents are kept."""
    data = files.lastfm_csv(
        [
            ["artist", "album", "title", "date"],
            ["Simon & Garfunkel", "Bookends", "Mrs. Robinson, Reprise", "02 Feb 2021 07:05"],
            ["Sigur Rós", "", "Hoppípolla", "03 Mar 2021 23:59"],
            ["Artist", "Album", "Now playing", ""],
            ["only", "three", "fields"],
        ]
    )
    entries = read_all("lastfm-csv", data)
    assert tally(entries) == {"play": 2, "unreadable": 2}
    first, second = plays(entries)
    assert (first.artist, first.title, first.timestamp) == (
        "Simon & Garfunkel",
        "Mrs. Robinson, Reprise",
        1_612_249_500,
    )
    assert (second.artist, second.album, second.title, second.origin) == (
        "Sigur Rós",
        "",
        "Hoppípolla",
        "lastfm-csv",
    )
    assert [entry.where for entry in entries if isinstance(entry, Unreadable)] == [
        "line 4",
        "line 5",
    ]


def test_scrobbler_log_ratings_and_zones() -> None:
    """L lines are plays with their length and MusicBrainz id, S lines are skips; under
    #TZ/UNKNOWN the times are the player's wall clock in the zone given; a line with the
    wrong field count is unreadable."""
    lines = [
        ["Metallica", "Metallica", "Enter Sandman", "1", "365", "L", "1143374412", "mbid-1"],
        ["Portishead", "Roseland NYC Live", "Cowboys", "2", "312", "S", "1143374777", ""],
        ["Steppenwolf", "Live", "The Pusher", "12", "350", "L", "1143374779"],
        ["broken", "line"],
    ]
    utc = read_all("scrobbler-log", files.scrobbler_log(lines))
    assert tally(utc) == {"play": 2, "rated_skip": 1, "unreadable": 1}
    first = plays(utc)[0]
    assert (first.timestamp, first.track_mbid, first.album) == (1143374412, "mbid-1", "Metallica")
    assert [entry.where for entry in utc if not isinstance(entry, Play)] == ["line 6", "line 8"]
    zurich = ZoneInfo("Europe/Zurich")  # summer time (UTC+2) from the morning of 2006-03-26
    local = read_all("scrobbler-log", files.scrobbler_log(lines, zone="UNKNOWN"), local_zone=zurich)
    assert plays(local)[0].timestamp == 1143374412 - 7200


def test_listenbrainz_zip_jsonl_and_array() -> None:
    """The export zip's monthly files are read (not its feedback); identifiers come from
    additional_info, else from the mbid_mapping; a fractional listened_at is floored; a
    broken line is unreadable with its member and line."""
    listens = [
        files.listenbrainz_listen(
            1_700_000_000.0,
            additional_info={
                "recording_mbid": "rec-1",
                "release_mbid": "rel-1",
                "artist_mbids": ["art-1", "art-2"],
                "duration_ms": 201_000,
                "spotify_id": "https://open.spotify.com/track/4uLU6hMCjMI75M1A2tKUQC",
            },
        ),
        files.listenbrainz_listen(
            1_702_000_000.75,
            release=None,
            mbid_mapping={
                "recording_mbid": "rec-2",
                "release_mbid": "rel-2",
                "artist_mbids": ["art-3"],
            },
        ),
    ]
    entries = read_all("listenbrainz", files.listenbrainz_zip(listens), "listenbrainz_x.zip")
    first, second = plays(entries)
    assert first == Play(
        timestamp=1_700_000_000,
        artist="Artist",
        title="Song",
        origin="listenbrainz",
        album="Album",
        spotify_track_uri="spotify:track:4uLU6hMCjMI75M1A2tKUQC",
        artist_mbid="art-1",
        album_mbid="rel-1",
        track_mbid="rec-1",
    )
    assert (second.timestamp, second.album, second.track_mbid, second.artist_mbid) == (
        1_702_000_000,
        "",
        "rec-2",
        "art-3",
    )
    lines = files.json_lines(listens) + b"{broken\n\n" + files.json_lines([{"listened_at": 5}])
    from_lines = read_all("listenbrainz", lines)
    assert tally(from_lines) == {"play": 2, "unreadable": 2}
    assert [entry.where for entry in from_lines if isinstance(entry, Unreadable)] == [
        "line 3",
        "line 5",
    ]
    assert plays(read_all("listenbrainz", files.json_file(listens))) == plays(entries)


def test_broken_zip_is_a_clear_error() -> None:
    """A zip cut short is refused in one line naming the file."""
    data = files.listenbrainz_zip([files.listenbrainz_listen(END)])
    with pytest.raises(BadFileError, match=r"^lb\.zip: not a readable zip archive") as raised:
        read_all("listenbrainz", data[: len(data) - 30], "lb.zip")
    assert raised.value.kind == "broken_zip"


def test_maloja_export() -> None:
    """Maloja's scrobbles: several artists read as one name, the album's title (not its
    artists), a null album; a scrobble without a title is unreadable."""
    data = files.maloja_export(
        [
            files.maloja_scrobble(END, artists=["A", "B"], album_artists=["Various Artists"]),
            files.maloja_scrobble(END + 300, album=None, length=245),
            {"time": END, "track": {"artists": ["A"], "title": None}},
        ]
    )
    entries = read_all("maloja", data)
    assert tally(entries) == {"play": 2, "unreadable": 1}
    first, second = plays(entries)
    assert (first.artist, first.album) == ("A, B", "Album")
    assert (second.artist, second.album) == ("Artist", "")


def test_blank_names_are_unreadable() -> None:
    """A play whose artist or title is blank cannot be stored: unreadable, saying which."""
    data = files.json_file([files.spotify_play(END, artist="  ")])
    (entry,) = read_all("spotify", data)
    assert entry == Unreadable("entry 1", "no artist (title 'Song')")


def test_an_overlong_line_is_unreadable_and_the_rest_is_read() -> None:
    """A line longer than 1 MiB (a wrong file, a broken export) is one unreadable entry; the
    lines after it are read as usual, in every line format."""
    huge = b"x" * (MAX_LINE_BYTES + 10)
    lines = files.json_lines([files.listenbrainz_listen(END)])
    assert tally(read_all("listenbrainz", huge + b"\n" + lines)) == {"unreadable": 1, "play": 1}
    row = files.lastfm_csv([["A", "B", "C", "31 Jan 2021 20:15"]])
    entries = read_all("lastfm-csv", row + huge + b"\n" + row)
    assert tally(entries) == {"play": 2, "unreadable": 1}
    assert entries[1] == Unreadable("line 2", "longer than 1 MiB")
    log = files.scrobbler_log([["A", "B", "C", "1", "200", "L", str(END), ""]])
    assert tally(read_all("scrobbler-log", log + huge + b"\n" + log.split(b"\n")[-2])) == {
        "play": 2,
        "unreadable": 1,
    }
    exact = b"y" * MAX_LINE_BYTES  # as long as allowed: read, and unreadable only as JSON
    (entry,) = read_all("listenbrainz", exact + b"\n")
    assert isinstance(entry, Unreadable)
    assert entry.reason.startswith("not JSON (")


def test_an_unreadable_entry_quotes_its_field_short_and_on_one_line() -> None:
    """A reason quotes the offending value escaped (a newline or escape stays visible text)
    and cut short, whatever the file holds."""
    data = files.json_file([{**files.spotify_play(END), "ts": "\x1b[2J\n" + "9" * 10_000}])
    (entry,) = read_all("spotify", data)
    assert isinstance(entry, Unreadable)
    assert entry.reason.startswith("no end time and played milliseconds (ts '\\x1b[2J\\n999")
    assert "\n" not in entry.reason
    assert "\x1b" not in entry.reason
    assert len(entry.reason) < 200
