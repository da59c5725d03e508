"""Keep Typer from importing pydantic to coerce values that need no coercion.

Typer 0.29 coerces every non-flag parameter with a pydantic `TypeAdapter`, and builds the first
one by importing pydantic: about 150 ms, half of `ckpt latest`'s start-up, spent to return the
string `RUN_DIR` unchanged and `None` for every unset option. Job scripts call `ckpt latest` at
every start, sometimes in loops over hundreds of runs.

`install(command)` gives each parameter of a built command tree a shortcut that returns what the
adapter would return for the plain cases (a missing value, a string for `str`, ASCII digits for
an `int` or `float` within its bounds) and hands every other value to Typer's own coercion, built
on first use, so that errors and odd inputs behave exactly as before. A test checks that the
shortcut and the adapter agree. If Typer's internals change shape, nothing is installed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

_DIGITS = re.compile(r"[0-9]{1,15}")
_DECIMAL = re.compile(r"[0-9]{1,15}(?:\.[0-9]{1,15})?")
_MISS = object()


class Shortcut:
    """Stands in for Typer's runtime parameter (`param._runtime_param`)."""

    __slots__ = ("descriptor", "full")

    def __init__(self, descriptor: Any) -> None:
        self.descriptor = descriptor
        self.full: Any = None

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        multi = param.multiple or param.nargs == -1
        if value is None:  # what Typer's RuntimeParam.coerce returns for a missing value
            return () if multi else None
        fast = self.plain(value, multi)
        if fast is not _MISS:
            return fast
        if self.full is None:
            from typer._coercion import build_runtime_param

            self.full = build_runtime_param(self.descriptor)
        return self.full.coerce(value, param=param, ctx=ctx)

    def plain(self, value: Any, multi: bool) -> Any:
        """The coerced value when it is certain without pydantic, else `_MISS`."""
        annotation = self.descriptor.annotation
        info = self.descriptor.parameter_info
        if multi:
            if annotation == list[str] and isinstance(value, (list, tuple)):
                if all(type(item) is str for item in value):
                    return list(value)
            return _MISS
        if annotation is str:
            return value if type(value) is str else _MISS
        if annotation not in (int, float) or getattr(info, "clamp", False):
            return _MISS
        if type(value) is annotation:
            number = value
        elif type(value) is str and (_DIGITS if annotation is int else _DECIMAL).fullmatch(value):
            number = annotation(value)
        else:
            return _MISS
        low, high = getattr(info, "min", None), getattr(info, "max", None)
        if (low is not None and number < low) or (high is not None and number > high):
            return _MISS  # Typer words the error
        return number


def install(command: Any, help_names: Sequence[str]) -> None:
    """Give every parameter of `command` and of its subcommands a `Shortcut` (once).

    `help_names` are the root's `help_option_names`: the help option is built on first use and
    cached, and it is coerced like any other parameter.
    """
    settings = getattr(command, "context_settings", None) or {}
    names = settings.get("help_option_names", help_names)
    params = list(getattr(command, "params", ()))
    get_help_option = getattr(command, "get_help_option", None)
    if get_help_option is not None:
        params.append(get_help_option(SimpleNamespace(help_option_names=names)))
    for param in params:
        descriptor = getattr(param, "type_descriptor", None)
        if descriptor is None or getattr(param, "_runtime_param", _MISS) is not None:
            continue  # not Typer 0.29's shape, or already built
        param._runtime_param = Shortcut(descriptor)
    for sub in getattr(command, "commands", {}).values():
        install(sub, names)
