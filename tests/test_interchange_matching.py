"""The matching rules of file imports: one identity ignoring case, accents and surrounding
spaces; starts within ``[import] match_window_s``; duplicates within a file count once."""

from __future__ import annotations

from pathlib import Path

import pytest

from musiqued.app.config import load_config
from musiqued.errors import ConfigError
from musiqued.interchange.entries import Play
from musiqued.interchange.matching import (
    FileDuplicates,
    exact_key,
    nearest,
    normalised,
)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("Beyoncé", "BEYONCE"),
        ("  Sigur Rós ", "sigur ros"),
        ("Mötley Crüe", "motley crue"),
        ("Straße", "STRASSE"),
        ("Ｒａｄｉｏｈｅａｄ", "radiohead"),  # full-width forms
        ("Ǆemal", "džemal"),
        ("Björk\t", "bjork"),
    ],
)
def test_names_equal_ignoring_case_accents_and_surrounding_spaces(one: str, other: str) -> None:
    """Names that differ only by case, accents, compatibility forms or surrounding spaces
    are one name."""
    assert normalised(one) == normalised(other)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("The Beatles", "Beatles"),
        ("AC/DC", "ACDC"),
        ("Sigur  Rós", "Sigur Rós"),  # inner spaces count
        ("Song (Live)", "Song"),
        ("Σ", "Ω"),
    ],
)
def test_other_differences_keep_names_apart(one: str, other: str) -> None:
    """Only case, accents and the spaces around a name are ignored: words, punctuation and
    inner spaces still tell names apart."""
    assert normalised(one) != normalised(other)


def test_a_play_takes_the_nearest_stored_start_within_the_window() -> None:
    """Of the stored starts not yet taken, the play takes the nearest; the earlier of two
    as near; none beyond the window."""
    assert nearest(1000, [700, 1150, 990, 1300], 180) == 990
    assert nearest(1000, [1100, 900], 180) == 900
    assert nearest(1000, [1181, 819], 180) is None
    assert nearest(1000, [], 180) is None


def test_repeat_plays_each_take_their_own_listen() -> None:
    """A track on repeat, its plays 150 s apart (closer than the window), imported from a
    file whose clock is 40 s late: each play takes its own stored listen when each play
    takes the nearest start not yet taken."""
    stored = [10_000 + 150 * n for n in range(5)]
    taken: list[int] = []
    for start in (10_040 + 150 * n for n in range(5)):
        choice = nearest(start, [s for s in stored if s not in taken], 180)
        assert choice is not None
        taken.append(choice)
    assert taken == stored


def play(timestamp: int, artist: str = "Artist", title: str = "Song") -> Play:
    return Play(timestamp=timestamp, artist=artist, title=title, origin="listenbrainz")


def test_exact_duplicates_within_a_file_count_once() -> None:
    """An entry repeating an earlier one (same start second and identity, however spelled)
    is seen, however far back the earlier was; another second or another title is not."""
    duplicates = FileDuplicates()
    total = FileDuplicates.RECENT * 5 + 17  # several merged runs and a partial set
    firsts = [
        duplicates.seen(play(1_600_000_000 + n * 200, title=f"Song {n}")) for n in range(total)
    ]
    assert not any(firsts)
    again = [
        duplicates.seen(play(1_600_000_000 + n * 200, title=f"SONG {n} ")) for n in range(total)
    ]
    assert all(again)
    assert not duplicates.seen(play(1_600_000_001, title="Song 0"))
    assert not duplicates.seen(play(1_600_000_000, title="Song 0 (Live)"))
    assert len(duplicates) == total + 2


def test_exact_key_separates_seconds_and_identities() -> None:
    """The key differs with the start second and with the identity, not with spelling."""
    assert exact_key(play(5, "Beyoncé", "Halo")) == exact_key(play(5, "BEYONCE", " halo"))
    assert exact_key(play(5)) != exact_key(play(6))
    assert exact_key(play(5, "A", "B")) != exact_key(play(5, "B", "A"))


def test_match_window_is_an_import_setting(tmp_path: Path) -> None:
    """``[import] match_window_s`` defaults to 180 s, is read from the file, and a value out
    of range is a one-line error naming the key."""
    path = tmp_path / "m.toml"
    path.write_text("[import]\nmatch_window_s = 60\n")
    assert load_config(path, environ={}).imports.match_window_s == 60
    path.write_text("")
    assert load_config(path, environ={}).imports.match_window_s == 180
    path.write_text("[import]\nmatch_window_s = -1\n")
    with pytest.raises(ConfigError, match=r"m\.toml: import\.match_window_s: "):
        load_config(path, environ={})
