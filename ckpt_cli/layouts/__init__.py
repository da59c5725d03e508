"""How a folder is read: one module per layout, registered in one table, loaded on demand.

- `ckpt.py`: ckpt's own layout, the seed crate's: `checkpoint-<step>/metadata.json`, the
  commit marker (`base.Layout` says what a layout implements).

A layout module is imported only when a listing holds a name that the layout's folder pattern
matches, so `ckpt latest` on a plain run loads just ckpt's own.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from importlib import import_module
from typing import TYPE_CHECKING

from ..core.records import CHECKPOINT_RE

if TYPE_CHECKING:
    from .base import Layout

#: name, folder pattern (the group is the step), module; in the order they are asked
REGISTRY: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("ckpt", CHECKPOINT_RE, "ckpt_cli.layouts.ckpt"),
)

_loaded: dict[str, Layout] = {}


def get(name: str) -> Layout:
    """The layout called `name`, imported on first use."""
    if name not in _loaded:
        module = next(m for n, _, m in REGISTRY if n == name)
        _loaded[name] = import_module(module).LAYOUT
    return _loaded[name]


def claiming(folder_name: str) -> Iterator[tuple[Layout, int]]:
    """The layouts whose folder pattern matches a name, with the step it says, in order."""
    for name, pattern, _ in REGISTRY:
        match = pattern.fullmatch(folder_name)
        if match:
            yield get(name), int(match.group(1))


def default() -> Layout:
    """ckpt's own layout: what `save` writes and `load` reads first."""
    return get("ckpt")
