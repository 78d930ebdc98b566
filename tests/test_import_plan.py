"""An import job's plan and checkpoint (``services/import_plan.py``): pure functions, no I/O."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from musiqued.models import Scrobble
from musiqued.services.import_plan import PageSet, Plan, ShortPage, expand, ranges, short_page


def _scrobbles(*timestamps: int) -> list[Scrobble]:
    return [Scrobble(timestamp=ts, artist="Artist", title=f"Song {ts}") for ts in timestamps]


def test_ranges_fold_consecutive_pages() -> None:
    """Committed pages are kept as ranges, in order, whatever order they were done in."""
    assert ranges({8, 1, 3, 2, 7}) == [[1, 3], [7, 8]]
    assert ranges({5}) == [[5, 5]]
    assert ranges(set()) == []


@given(st.sets(st.integers(min_value=1, max_value=5000), max_size=300))
def test_ranges_and_expand_are_inverse(pages: set[int]) -> None:
    """Any set of pages survives the checkpoint's compact form unchanged."""
    assert expand(ranges(pages)) == pages


@given(st.lists(st.integers(min_value=1, max_value=60), max_size=80), st.integers(1, 61))
def test_page_set_is_a_set_of_pages(added: list[int], probe: int) -> None:
    """Pages added in any order, again or next to others: the spans are the set's, sorted
    and disjoint; membership and size agree with a plain set."""
    pages, plain = PageSet(), set()
    for page in added:
        pages.add(page)
        plain.add(page)
        assert list(pages) == sorted(plain)
    assert pages == plain
    assert len(pages) == len(plain)
    assert (probe in pages) == (probe in plain)
    spans = pages.spans()
    assert spans == ranges(plain)
    assert all(a[1] + 1 < b[0] for a, b in itertools.pairwise(spans))


def test_first_plan_counts_the_window_or_the_limit() -> None:
    """Page 1 tells the window's size: every scrobble of it, or the ``limit`` newest."""
    whole = Plan.first(per_page=200, window_total=1001, limit=None)
    assert (whole.expected, whole.pages_total) == (1001, 6)
    assert whole.todo() == [1, 2, 3, 4, 5, 6]
    newest = Plan.first(per_page=200, window_total=1200, limit=450)
    assert (newest.expected, newest.pages_total) == (450, 3)
    more_than_there_is = Plan.first(per_page=200, window_total=120, limit=1000)
    assert (more_than_there_is.expected, more_than_there_is.pages_total) == (120, 1)
    empty = Plan.first(per_page=200, window_total=0, limit=None)
    assert (empty.expected, empty.pages_total, empty.todo()) == (0, 0, [])


def test_expected_size_of_every_page() -> None:
    """Every page holds ``per_page`` scrobbles but the last, which holds the rest; none past
    the end. With a limit, Last.fm's pages are still counted in the whole window."""
    plan = Plan.first(per_page=200, window_total=1001, limit=None)
    assert [plan.expected_size(page) for page in range(1, 8)] == [200, 200, 200, 200, 200, 1, 0]
    limited = Plan.first(per_page=200, window_total=1200, limit=450)
    assert [limited.expected_size(page) for page in (1, 2, 3)] == [200, 200, 200]
    assert [limited.kept_size(page) for page in (1, 2, 3, 4)] == [200, 200, 50, 0]


def test_keep_cuts_the_last_page_at_the_limit() -> None:
    """With ``limit`` N, only the part of a page inside the N newest is stored."""
    page = _scrobbles(*range(1000, 800, -1))
    limited = Plan.first(per_page=200, window_total=1200, limit=450)
    assert limited.keep(1, page) == page
    assert limited.keep(3, page) == page[:50]
    assert limited.keep(4, page) == []
    assert Plan.first(per_page=200, window_total=1200, limit=None).keep(6, page) == page


def test_short_page_says_how_many_are_missing_and_where() -> None:
    """A page served with fewer scrobbles than its place holds is recorded with the count
    and the span it did hold; unusable entries count as served (they are errors, with
    their reasons, not a gap)."""
    assert short_page(2, 3, _scrobbles(30, 20, 10)) is None
    assert short_page(2, 5, _scrobbles(30, 20, 10)) == ShortPage(2, 2, 30, 10)
    assert short_page(2, 4, _scrobbles(30, 20, 10), unusable=1) is None
    assert short_page(7, 200, []) == ShortPage(7, 200, None, None)


def test_a_second_sweep_walks_the_whole_window_again() -> None:
    """When back-dated scrobbles change the window, the next sweep plans every page of it
    anew, keeps counting pages after the first sweep's, and has no limit."""
    first = Plan.first(per_page=200, window_total=1000, limit=None)
    first.done = PageSet({1, 2, 3, 4, 5})
    second = first.again(1150)
    assert (second.sweep, second.base_pages, second.pages_total) == (2, 5, 6)
    assert (second.expected, second.window_total, second.limit) == (1150, 1150, None)
    assert second.todo() == [1, 2, 3, 4, 5, 6]


def test_checkpoint_round_trip() -> None:
    """What a page's transaction commits is what a resumed job plans from."""
    plan = Plan.first(per_page=100, window_total=950, limit=None)
    plan.short = {4: ShortPage(4, 3, 1700, 1600)}
    plan.gap = 3
    checkpoint = plan.dump({1, 2, 4, 9})
    assert checkpoint["done"] == [[1, 2], [4, 4], [9, 9]]
    again = Plan.load(checkpoint)
    assert again is not None
    assert again.done == {1, 2, 4, 9}
    assert again.todo() == [3, 5, 6, 7, 8, 10]
    assert again.short == plan.short
    assert (again.missing, again.gap) == (3, 3)
    assert (again.per_page, again.pages_total, again.expected) == (100, 10, 950)


def test_a_checkpoint_without_a_plan_plans_again() -> None:
    """A job that stopped before page 1 was stored has no plan: the runner plans anew;
    checkpoints written before the sweep fields existed still load."""
    assert Plan.load({}) is None
    old = Plan.load({"per_page": 200, "pages_total": 3, "expected": 500, "done": [[1, 2]]})
    assert old is not None
    assert (old.window_total, old.sweep, old.base_pages, old.todo()) == (500, 1, 0, [3])
