"""Moments as people and scripts write them: one parser for musiquectl and the RPC params."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from musiqued.rpc.methods.history import ListParams
from musiqued.timespec import MomentError, parse_moment

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
        ("3mo", "'3mo': unknown unit 'mo'; units are s, m (minutes), h, d, w, y (365 days)"),
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


def test_rpc_params_read_strings_the_same_way() -> None:
    """The daemon's ``since``/``until`` read a string as musiquectl does (``20240302`` is a
    date); a JSON number stays Unix seconds."""
    assert ListParams.model_validate({"since": "20240302"}).since == MARCH_2_2024
    assert ListParams.model_validate({"since": 20240302}).since == 20_240_302
    with pytest.raises(ValidationError, match="is not a moment"):
        ListParams.model_validate({"since": "tomorrow"})
