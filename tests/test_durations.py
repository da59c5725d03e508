"""Duration parsing (`--keep-within 2h`, `--min-age 1d12h`) and age formatting for tables."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ckpt_cli.core.durations import format_duration, format_duration_exact, parse_duration

MINUTE, HOUR, DAY, WEEK = 60, 3600, 86400, 7 * 86400


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("30m", 30 * MINUTE),
        ("90m", 90 * MINUTE),
        ("2h", 2 * HOUR),
        ("3d", 3 * DAY),
        ("1w", WEEK),
        ("1d12h", DAY + 12 * HOUR),
        ("1w2d", WEEK + 2 * DAY),
        ("1w2d3h4m5s", WEEK + 2 * DAY + 3 * HOUR + 4 * MINUTE + 5),
        ("0s", 0),
        ("0h", 0),
        ("007m", 7 * MINUTE),
        ("1d 4h", DAY + 4 * HOUR),  # what format_duration prints reads back in
        (" 2h ", 2 * HOUR),  # stray shell quoting spaces are harmless
    ],
)
def test_parse_duration_accepts(text: str, seconds: int) -> None:
    result = parse_duration(text)
    assert result == seconds
    assert isinstance(result, float)


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "2",
        "2x",
        "h",
        "-1h",
        "+1h",
        "1.5h",
        "1,5h",
        "2H",
        "2M",
        "1 h",
        "1h-",
        "12h1d",  # units out of order
        "1h1h",  # a unit twice
        "1d\n2h",
        "٣h",  # a non-ASCII digit
        "1e3s",
        "inf",
        "nan",
    ],
)
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        parse_duration(text)
    assert str(excinfo.value) == (
        f"invalid duration {text!r}: use a number and a unit, e.g. 30m, 2h, 3d, 1w or 1d12h"
    )
    assert "\n" not in str(excinfo.value)


def test_parse_duration_error_message_is_exact() -> None:
    with pytest.raises(ValueError) as excinfo:
        parse_duration("2x")
    assert str(excinfo.value) == (
        "invalid duration '2x': use a number and a unit, e.g. 30m, 2h, 3d, 1w or 1d12h"
    )


def test_parse_duration_rejects_what_no_float_can_hold() -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration("9" * 400 + "w")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.9, "0s"),
        (45, "45s"),
        (60, "1m"),
        (90, "1m 30s"),
        (12 * MINUTE, "12m"),
        (3 * HOUR, "3h"),
        (3 * HOUR + 59 * MINUTE + 59, "3h 59m"),  # truncated, never rounded up
        (DAY - 1, "23h 59m"),
        (DAY + 4 * HOUR + 5 * MINUTE, "1d 4h"),
        (2 * DAY, "2d"),
        (5 * WEEK, "5w"),
        (5 * WEEK + 2 * DAY + 3 * HOUR, "5w 2d"),
        (52 * WEEK + DAY, "52w 1d"),
        (3 * HOUR + 59, "3h"),  # only the unit right below the largest, never `3h 59s`
        (-5 * MINUTE, "-5m"),
        (-0.5, "0s"),  # a checkpoint "from the future": a clock went backwards
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (2 * HOUR, "2h"),
        (90 * MINUTE, "1h30m"),
        (DAY + 12 * HOUR, "1d12h"),
        (WEEK + 2 * DAY + 3 * HOUR + 4 * MINUTE + 5, "1w2d3h4m5s"),
        (90.5, "90.5s"),
    ],
)
def test_format_duration_exact(seconds: float, text: str) -> None:
    assert format_duration_exact(seconds) == text


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_format_rejects_non_finite(value: float) -> None:
    with pytest.raises(ValueError):
        format_duration(value)
    with pytest.raises(ValueError):
        format_duration_exact(value)


_COUNTS = st.integers(min_value=0, max_value=10**6)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_COUNTS, st.sampled_from("wdhms")), min_size=1, max_size=5))
def test_parse_duration_sums_components(components: list[tuple[int, str]]) -> None:
    order = "wdhms"
    unique = sorted(
        {unit: count for count, unit in components}.items(), key=lambda u: order.index(u[0])
    )
    text = "".join(f"{count}{unit}" for unit, count in unique)
    size = {"w": WEEK, "d": DAY, "h": HOUR, "m": MINUTE, "s": 1}
    assert parse_duration(text) == sum(count * size[unit] for unit, count in unique)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=10**12))
def test_exact_format_round_trips(seconds: int) -> None:
    assert parse_duration(format_duration_exact(seconds)) == seconds


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=0, max_value=1e12, allow_nan=False))
def test_short_format_reads_back_and_never_overstates(seconds: float) -> None:
    text = format_duration(seconds)
    shown = parse_duration(text)
    assert shown <= seconds
    # At most two adjacent units are shown, so what is lost is less than one of the unit right
    # below the largest one shown.
    below = {"w": DAY, "d": HOUR, "h": MINUTE, "m": 1, "s": 1}[text.split()[0][-1]]
    assert seconds - shown < below
    assert len(text.split()) <= 2
