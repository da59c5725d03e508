"""Durations as users type them (`30m`, `2h`, `1d12h`) and ages as tables show them (`3h`, `1d 4h`).

This module owns the one duration syntax that every flag taking a time span uses (`--keep-within`,
`--min-age`, ...) and the way ages are printed. It is pure: it never reads the clock.
"""

from __future__ import annotations

import math
import re

__all__ = ["format_duration", "format_duration_exact", "parse_duration"]

#: Seconds per unit, largest first: formatting walks this order.
_UNITS: tuple[tuple[str, int], ...] = (
    ("w", 7 * 24 * 3600),
    ("d", 24 * 3600),
    ("h", 3600),
    ("m", 60),
    ("s", 1),
)
_UNIT_SECONDS = dict(_UNITS)
_UNIT_RANK = {unit: rank for rank, (unit, _) in enumerate(_UNITS)}

# `[0-9]`, not `\d`: `\d` also matches non-ASCII digits such as "٣", which int() would accept.
# Lower-case units only, so that `M` (month? minute?) is never guessed at.
_COMPONENT = re.compile(r"([0-9]+)([wdhms])")
# Components may be separated by spaces so that what `format_duration` prints (`1d 4h`) can be
# typed back in.
_DURATION = re.compile(r"[0-9]+[wdhms](?: *[0-9]+[wdhms])*")


def _invalid(text: str) -> ValueError:
    # repr() keeps the message on one line whatever the input holds (newlines, tabs).
    return ValueError(
        f"invalid duration {text!r}: use a number and a unit, e.g. 30m, 2h, 3d, 1w or 1d12h"
    )


def parse_duration(text: str) -> float:
    """The number of seconds that `text` (e.g. `30m`, `2h`, `1w2d`, `0s`) stands for.

    Counts are whole numbers, units are s, m, h, d, w (a week is 7 days). Several components must
    go from the largest unit down, each unit at most once (`1d12h`, not `12h1d` or `1h1h`), since
    anything else is more likely a typo than a meaning. Raises ValueError with a one-line message.
    """
    stripped = text.strip()
    if not _DURATION.fullmatch(stripped):
        raise _invalid(text)
    total = 0
    last_rank = -1
    for count, unit in _COMPONENT.findall(stripped):
        rank = _UNIT_RANK[unit]
        if rank <= last_rank:
            raise _invalid(text)
        last_rank = rank
        total += int(count) * _UNIT_SECONDS[unit]
    try:
        return float(total)
    except OverflowError:
        # Python ints are unbounded; a float is not. Nobody means 10**400 weeks.
        raise _invalid(text) from None


def _counts(seconds: int) -> list[tuple[int, str]]:
    """`seconds` as a count of every unit, largest first, zeros included (3h: 0w 0d 3h 0m 0s)."""
    counts: list[tuple[int, str]] = []
    for unit, size in _UNITS:
        count, seconds = divmod(seconds, size)
        counts.append((count, unit))
    return counts


def _checked(seconds: float) -> tuple[str, float]:
    if not math.isfinite(seconds):
        raise ValueError(f"cannot format a duration of {seconds} seconds")
    return ("-", -seconds) if seconds < 0 else ("", seconds)


def format_duration(seconds: float) -> str:
    """A short human age: the largest unit plus the one right below it when that is not zero.

    `45s`, `12m 5s`, `3h`, `1d 4h`, `5w 2d`. Smaller units are truncated, never rounded up, so an
    age is never overstated (a checkpoint 23h59m old is not yet `1d`). Never `3h 59s`, which
    would read as a typo of `3h 59m`. A negative value (a clock that went backwards) keeps its
    sign; any other result parses back with `parse_duration`.
    """
    sign, magnitude = _checked(seconds)
    counts = _counts(math.floor(magnitude))
    # The largest non-zero unit, or seconds for an age under one second.
    first = next((i for i, (count, _) in enumerate(counts) if count), len(counts) - 1)
    shown = [counts[first], *(c for c in counts[first + 1 : first + 2] if c[0])]
    if shown == [(0, "s")]:
        return "0s"  # not `-0s` for a clock that is half a second out
    return sign + " ".join(f"{count}{unit}" for count, unit in shown)


def format_duration_exact(seconds: float) -> str:
    """`seconds` spelt in full in the syntax `parse_duration` reads, e.g. `1d12h`, `1h30m`, `0s`.

    Used where a duration is echoed back to the user (a retention reason such as `within 2h`), so
    nothing may be dropped. A fraction of a second (only the Python API can ask for one) is
    written as plain seconds, e.g. `90.5s`.
    """
    sign, magnitude = _checked(seconds)
    if magnitude != math.floor(magnitude):
        return f"{sign}{magnitude!r}s"
    parts = [f"{count}{unit}" for count, unit in _counts(int(magnitude)) if count]
    return sign + "".join(parts) if parts else "0s"
