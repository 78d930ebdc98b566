"""Laying text out for a terminal (``musiquectl/terminal.py``): display widths, cells wrapped
in their column, columns fitted to the width, the progress line."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from musiquectl.terminal import (
    BOLD,
    RESET,
    bar,
    display_width,
    fit_widths,
    progress_line,
    table_lines,
    truncate,
    wrap,
)
from musiquectl.text import visible

WIDE = "坂本龍一"  # four wide characters: eight columns
COMBINED = "\u00d8\u0338 e\u0301te\u0301"  # Ø with a combining slash, two é: five columns


def _starts(line: str, cells: list[str]) -> list[int]:
    """The display column at which each of ``cells`` begins in ``line``."""
    starts, at = [], 0
    for cell in cells:
        at = line.index(cell, at)
        starts.append(display_width(line[:at]))
        at += len(cell)
    return starts


def test_display_width_counts_columns_not_characters() -> None:
    """Wide and fullwidth characters take two columns, combining marks and joiners none,
    everything else one."""
    assert display_width("Björk") == 5
    assert display_width(WIDE) == 8
    assert display_width("ＡＢ") == 4  # fullwidth Latin
    assert display_width(COMBINED) == 5
    assert display_width("e\u0301") == 1
    assert display_width("😀") == 2
    assert display_width("a\u200db") == 2  # a zero-width joiner
    assert display_width("") == 0


def test_wrap_breaks_at_spaces_then_anywhere() -> None:
    """A cell wraps at the last space that fits (dropping it), and a word longer than the
    column is cut where the column ends."""
    assert wrap("Track 19, part “5”", 16) == ["Track 19, part", "“5”"]
    assert wrap("Ágætis byrjun, live", 10) == ["Ágætis", "byrjun,", "live"]
    assert wrap("Homogenic", 4) == ["Homo", "geni", "c"]
    assert wrap("exactly ten", 11) == ["exactly ten"]  # an exact fit stays whole
    assert wrap("exactly ten", 10) == ["exactly", "ten"]
    assert wrap("", 5) == [""]


def test_wrap_never_splits_a_wide_character_or_a_combining_mark() -> None:
    """Lines of wide characters break between them (an odd width leaves a column unused), a
    mark stays with its letter, and a wide character in a one-column cell still shows."""
    assert wrap(WIDE, 5) == ["坂本", "龍一"]
    assert wrap(WIDE, 4) == ["坂本", "龍一"]
    assert wrap(WIDE, 1) == ["坂", "本", "龍", "一"]
    assert wrap("e\u0301e\u0301e\u0301", 2) == ["e\u0301e\u0301", "e\u0301"]
    assert wrap("a漢\u0301b", 2) == ["a", "漢\u0301", "b"]


@given(st.text(st.characters(codec="utf-8")), st.integers(2, 30))
def test_wrap_loses_no_text(raw: str, width: int) -> None:
    """Any visible text wraps into lines that fit, and only the spaces at the breaks are
    gone."""
    text = visible(raw)
    lines = wrap(text, width)
    assert all(display_width(line) <= width for line in lines), lines
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")


def test_truncate_marks_what_it_cut() -> None:
    """Text too wide ends in an ellipsis in the last column; a wide character that would
    straddle it goes too."""
    assert truncate("imported", 20) == "imported"
    assert truncate("imported", 8) == "imported"
    assert truncate("imported", 7) == "import…"
    assert truncate(WIDE, 6) == "坂本…"
    assert truncate(WIDE, 5) == "坂本…"
    assert truncate(WIDE, 1) == "…"


def test_fit_widths_shares_the_room_fairly() -> None:
    """Columns that fit keep their width; otherwise narrow columns keep theirs and the wide
    ones are cut to an equal share of what is left; a no-wrap column is never cut."""
    natural = [19, 18, 18, 19, 6]
    wraps = [False, True, True, True, True]
    assert fit_widths(natural, wraps, 88) == natural  # an exact fit: 80 + four gaps
    assert fit_widths(natural, wraps, 200) == natural
    assert fit_widths(natural, wraps, 80) == [19, 15, 16, 16, 6]
    assert fit_widths(natural, wraps, 40) == [19, 3, 3, 4, 3]
    assert fit_widths(natural, wraps, 10) == [19, 1, 1, 1, 1]  # wider than asked: folded


def test_a_table_that_fits_is_aligned_by_display_width() -> None:
    """Cells of wide characters, combining marks and plain letters line up in columns; the
    header line is bold, the rows are not; a table that fits exactly is not wrapped, one
    column less and it is."""
    rows = [["1", WIDE, "ok"], ["22", "abcdefgh", "fine"], ["3", COMBINED, "x"]]
    lines = table_lines(["#", "artist", "listens"], rows, 2 + 2 + 8 + 2 + 7)
    assert lines[0] == f"{BOLD}#   artist    listens{RESET}"
    assert lines[1:] == [f"1   {WIDE}  ok", "22  abcdefgh  fine", f"3   {COMBINED}     x"]
    for line, row in zip(lines[1:], rows, strict=True):
        assert _starts(line, row) == [0, 4, 14]
    assert len(table_lines(["#", "artist", "listens"], rows, 20)) == 6  # one column short


def test_a_narrow_terminal_wraps_cells_in_their_columns() -> None:
    """When the row is too wide, long cells wrap inside their own column (every line fits,
    no text is lost) and the no-wrap column keeps its value on one line."""
    rows = [
        ["2023-11-14 22:23:02", 'The "Quoted", Band', "Track 19, part “5”", "import"],
        ["2023-11-14 22:23:03", "坂本龍一坂本龍一", "short", "import"],
    ]
    columns = ["played (local)", "artist", "title", "source"]
    lines = table_lines(columns, rows, 43, no_wrap={"played (local)"}, bold=False)
    indent = " " * 21
    assert lines == [
        "played (local)       artist  title   source",
        "2023-11-14 22:23:02  The     Track   import",
        f'{indent}"Quote  19,',
        f'{indent}d",     part',
        f"{indent}Band    “5”",
        "2023-11-14 22:23:03  坂本龍  short   import",
        f"{indent}一坂本",
        f"{indent}龍一",
    ]
    assert all(display_width(line) <= 43 for line in lines)


def test_titles_headers_and_continuations() -> None:
    """A title is its own line above the header; ``header=False`` gives the rows alone, and
    markup-like text is just text."""
    rows = [["[bold red]x[/bold red]", "[/]"]]
    lines = table_lines(["a", "b"], rows, 80, title="Top albums", bold=False)
    assert lines == ["Top albums", "a" + " " * 23 + "b", "[bold red]x[/bold red]  [/]"]
    assert table_lines(["a", "b"], rows, 80, title="Top albums", header=False) == [
        "[bold red]x[/bold red]  [/]"
    ]


def test_the_bar_fills_by_eighths() -> None:
    """The bar is full blocks for what is done, a partial block for the cell in progress and
    shade for the rest; an unknown total is all shade, and it never overflows."""
    assert bar(0, 8, 8) == "░" * 8
    assert bar(4, 8, 8) == "████░░░░"
    assert bar(8, 8, 8) == "████████"
    assert bar(9, 8, 8) == "████████"
    assert bar(1, 8, 4) == "▌░░░"
    assert bar(1, 16, 4) == "▎░░░"
    assert bar(3, 4, 5) == "███▊░"
    assert bar(5, None, 6) == "░" * 6
    assert bar(5, 0, 6) == "░" * 6


def test_the_progress_line_keeps_the_last_column_free() -> None:
    """Head, bar and details on one line; the bar (10 to 30 cells) takes the room the
    details leave; details that do not fit are left out whole, the last first, one column
    short of the width; a first detail too long for any room is cut with an ellipsis."""
    head, parts = "import job 3", ["12/s", "8s left", "page 2/8", "100 new"]
    detail = ", ".join(parts)
    wide = progress_line(head, parts, done=2, total=8, width=200)
    assert wide == f"{head} {'███████▌' + '░' * 22} {detail}"
    snug = progress_line(head, parts, done=2, total=8, width=len(head + detail) + 2 + 16 + 1)
    assert snug == f"{head} {'████' + '░' * 12} {detail}"
    narrow = progress_line(head, parts, done=2, total=8, width=40)
    assert narrow == f"{head} ███░░░░░░░░░ 12/s, 8s left"
    assert display_width(narrow) <= 39
    tiny = progress_line(head, ["a very long first detail"], done=2, total=8, width=30)
    assert tiny == f"{head} ██▌░░░░░░░ a ve…"
    assert display_width(tiny) == 29
