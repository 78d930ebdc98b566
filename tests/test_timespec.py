"""Moments as people and scripts write them: one parser for musiquectl and the RPC params."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from musiqued.contract.params import TrackerParams
from musiqued.rpc.methods.history import ListParams
from musiqued.timespec import MomentError, parse_duration, parse_moment

NOW = 1_790_000_000.5
MARCH_2_2024 = 1_709_337_600


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1709337600", MARCH_2_2024),
        ("@1709337600", MARCH_2_2024),
        ("20240302", MARCH_2_2024),  # ISO 8601 basic, not 20 million seconds after 1970
        ("2024-03-02", MARCH_2_2024),
        ("2024-03-02T00:00:00Z", MARCH_2_2024),
        ("2024-03-02T01:00:00+01:00", MARCH_2_2024),
        ("2024-03-02T00:00", MARCH_2_2024),  # naive means UTC
        (" 2024-03-02 ", MARCH_2_2024),
        ("@20240302", 20_240_302),
        ("90s", 1_790_000_000 - 90),
        ("15m", 1_790_000_000 - 900),
        ("12h", 1_790_000_000 - 12 * 3600),
        ("30d", 1_790_000_000 - 30 * 86400),
        ("30D", 1_790_000_000 - 30 * 86400),
        ("2w", 1_790_000_000 - 14 * 86400),
        ("1y", 1_790_000_000 - 365 * 86400),
        ("1month", 1_790_000_000 - 30 * 86400),
        ("2 Months ago", 1_790_000_000 - 60 * 86400),
        ("2 weeks ago", 1_790_000_000 - 14 * 86400),
        ("15min", 1_790_000_000 - 900),
        ("1.5h", 1_790_000_000 - 5400),
        ("last week", 1_790_000_000 - 7 * 86400),
        ("Last  Month", 1_790_000_000 - 30 * 86400),
        ("now", 1_790_000_000),
    ],
)
def test_forms_that_are_moments(text: str, expected: int) -> None:
    """Unix seconds, ISO 8601 dates and datetimes (basic and extended), and ages."""
    assert parse_moment(text, NOW) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tomorrow", "'tomorrow' is not a moment: use Unix seconds, an ISO 8601 date"),
        ("20241332", "'20241332' is not a moment"),
        ("-5", "'-5' is not a moment"),
        ("", "'' is not a moment"),
        (
            "3fortnights",
            "'3fortnights': unknown unit 'fortnights'; units s, m (minutes), h, d, w, "
            "month (30 days), y (365 days)",
        ),
        ("last fortnight", "'last fortnight': unknown unit 'fortnight'"),
        ("\u0663d", "'\u0663d' is not a moment"),  # an Arabic-Indic 3: not a number here
        ("\x1b[2J", "'\\x1b[2J' is not a moment"),
        # A digit to str.isdigit, not to int(): it once ended in a bare ValueError.
        ("@\u00b2", "'@²' is not a moment"),
        ("\u00b2", "'²' is not a moment"),
        (
            "@99999999999999999999",
            "'@99999999999999999999' is out of range (Unix seconds from -62135510400 to "
            "253402214400: years 1 to 9999)",
        ),
        ("@253402214401", "'@253402214401' is out of range"),
    ],
)
def test_what_is_not_a_moment_says_which_forms_work(text: str, message: str) -> None:
    """One wording for each mistake, quoting what was given (escaped)."""
    with pytest.raises(MomentError) as caught:
        parse_moment(text, NOW)
    assert str(caught.value).startswith(message)


def test_today_and_yesterday_start_at_local_midnight() -> None:
    """``today`` is the start of the local day that holds now, ``yesterday`` the one before;
    at any hour of the day."""
    for now in (NOW, NOW + 3600 * 5, NOW + 3600 * 13, NOW + 3600 * 23):
        today = parse_moment("today", now)
        start = dt.datetime.fromtimestamp(now).astimezone()
        midnight = dt.datetime.combine(start.date(), dt.time()).astimezone()
        assert today == int(midnight.timestamp())
        assert today <= now < today + 25 * 3600
        yesterday = parse_moment("Yesterday", now)
        assert dt.datetime.fromtimestamp(yesterday).astimezone().date() == start.date() - (
            dt.timedelta(days=1)
        )
        assert dt.datetime.fromtimestamp(yesterday).astimezone().time() == dt.time()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("2.5", 2.5), ("60", 60.0), ("90s", 90.0), ("1.5m", 90.0), ("1h", 3600.0), ("2 min", 120.0)],
)
def test_durations(text: str, seconds: float) -> None:
    """A duration is seconds (fractions too) or a number and a unit."""
    assert parse_duration(text) == seconds


def test_what_is_not_a_duration() -> None:
    """A duration that cannot be read says which forms work."""
    for text in ("often", "1 fortnight", "nan", "inf"):
        with pytest.raises(MomentError, match=r"is not a duration|unknown unit|out of range"):
            parse_duration(text)


def test_the_tracker_interval_reads_durations_as_musiquectl_does() -> None:
    """``tracker.start``'s ``interval_seconds`` takes 2.5, "2.5" and "1m" alike, and
    refuses less than a second."""
    assert TrackerParams.model_validate({"interval_seconds": 2.5}).interval_seconds == 2.5
    assert TrackerParams.model_validate({"interval_seconds": "2.5"}).interval_seconds == 2.5
    assert TrackerParams.model_validate({"interval_seconds": "1m"}).interval_seconds == 60
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        TrackerParams.model_validate({"interval_seconds": "0.5"})
    with pytest.raises(ValidationError, match="is not a duration"):
        TrackerParams.model_validate({"interval_seconds": "often"})


def test_rpc_params_read_strings_the_same_way() -> None:
    """The daemon's ``since``/``until`` read a string as musiquectl does (``20240302`` is a
    date); a JSON number stays Unix seconds."""
    assert ListParams.model_validate({"since": "20240302"}).since == MARCH_2_2024
    assert ListParams.model_validate({"since": 20240302}).since == 20_240_302
    with pytest.raises(ValidationError, match="is not a moment"):
        ListParams.model_validate({"since": "tomorrow"})
