"""The one output path of the CLI: data to stdout, diagnostics to stderr.

JSON (one document, `[]` for an empty list) and plain text are written here without rich, so
that `ckpt latest` in a job script never imports a renderer; rich tables and panels live in
`render.py` and are used only when stdout is a terminal. `NO_COLOR` is honoured there.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Sequence
from typing import Any

import orjson

from ..core.records import display_name


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def stderr_is_terminal() -> bool:
    """Where progress may be drawn: a terminal on stderr, never a pipe or a log file."""
    return sys.stderr.isatty()


def stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def use_color() -> bool:
    """Colour only on a terminal and only when NO_COLOR is unset or empty (no-color.org)."""
    return stdout_is_terminal() and not os.environ.get("NO_COLOR")


def data(text: str) -> None:
    """A line of data on stdout."""
    sys.stdout.write(text + "\n")


def warn(message: str) -> None:
    """A warning on stderr: `ckpt: warning: ...`."""
    sys.stderr.write(f"ckpt: warning: {message}\n")


def error(message: str) -> None:
    """The one error line on stderr: `ckpt: error: ...`."""
    sys.stderr.write(f"ckpt: error: {message}\n")


def info(message: str) -> None:
    """Progress and status on stderr (never on stdout, which carries data)."""
    sys.stderr.write(f"{message}\n")


def _default(value: object) -> object:
    if isinstance(value, os.PathLike):
        return display_name(os.fspath(value))
    raise TypeError(f"cannot encode {type(value).__name__}")


def to_json(value: Any) -> str:
    try:
        return orjson.dumps(value, default=_default, option=orjson.OPT_INDENT_2).decode()
    except TypeError:
        # orjson cannot write a str holding a path that is not UTF-8 (Python surrogate-escapes
        # it) nor an integer past 64 bits: write the one as list shows it, the other as text
        return orjson.dumps(
            _printable(value), default=_default, option=orjson.OPT_INDENT_2
        ).decode()


def _printable(value: Any) -> Any:
    if isinstance(value, str):
        return display_name(value)
    if isinstance(value, int) and not -(2**63) <= value <= 2**64 - 1:
        return str(value)  # a step in a folder name can have any number of digits
    if isinstance(value, dict):
        return {_printable(key): _printable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_printable(item) for item in value]
    return value


def json_document(value: Any) -> None:
    """One JSON document on stdout."""
    data(to_json(value))


def field_text(value: Any) -> str:
    """A single field for `--field`: strings as they are, everything else as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, float) and not math.isfinite(value):
        return _non_finite(value)  # a framework's NaN or Infinity, shown as it wrote it
    return orjson.dumps(value, default=_default).decode()


def _non_finite(value: float) -> str:
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def human_bytes(size: int | None) -> str:
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"  # pragma: no cover


def number(value: float | None) -> str:
    if value is None:
        return "-"
    if not math.isfinite(value):
        return _non_finite(value)
    return f"{value:.6g}"


def summarize_numbers(values: Sequence[float]) -> str:
    """`3 values: min 0.1, max 0.3, mean 0.2, first [0.1, 0.2, 0.3]` (never the whole list)."""
    if not values:
        return "0 values"
    low, high = min(values), max(values)
    mean = math.fsum(values) / len(values)
    first = ", ".join(f"{v:.6g}" for v in values[:5])
    more = ", ..." if len(values) > 5 else ""
    return (
        f"{len(values)} values: min {low:.6g}, max {high:.6g}, mean {mean:.6g}, "
        f"first [{first}{more}]"
    )


def columns(rows: Sequence[Sequence[str]]) -> list[str]:
    """Space-aligned plain columns (no box drawing): stable and greppable."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
