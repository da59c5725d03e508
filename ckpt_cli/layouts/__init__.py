"""How a folder is read: one module per layout, registered in one table, loaded on demand.

- `ckpt.py`: ckpt's own layout, the seed crate's: `checkpoint-<step>/metadata.json`, the
  commit marker (`base.Layout` says what a layout implements).
- `hf_trainer.py`: the Hugging Face Trainer's `checkpoint-<step>/trainer_state.json`.

Each folder is read by the first layout, in the registry's order, whose signature it holds:
ckpt's own first, so that a Trainer folder that `ckpt save` sealed is read by its marker.

A layout module is imported only when a listing holds a name that the layout's folder pattern
matches, so `ckpt latest` on a plain run loads just ckpt's own.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from importlib import import_module
from typing import TYPE_CHECKING

from ..core.errors import NoSignatureError
from ..core.records import CHECKPOINT_RE

if TYPE_CHECKING:
    from ..core.format import Metadata
    from ..core.paths import Location
    from ..storage.base import Backend
    from .base import Layout

#: name, folder pattern (the group is the step), module; in the order they are asked
REGISTRY: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("ckpt", CHECKPOINT_RE, "ckpt_cli.layouts.ckpt"),
    ("hf-trainer", CHECKPOINT_RE, "ckpt_cli.layouts.hf_trainer"),
)
#: the files whose writing completes a folder, by layout (what `latest` compares the times of)
MARKERS = ("metadata.json", "trainer_state.json")
#: the temporary folders that frameworks leave (never complete; removed once stale), by the
#: layout whose they are; the group is the step
TEMPORARY: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("hf-trainer", re.compile(r"tmp-checkpoint-([0-9]+)")),
)

_loaded: dict[str, Layout] = {}


def get(name: str) -> Layout:
    """The layout called `name`, imported on first use."""
    if name not in _loaded:
        module = next(m for n, _, m in REGISTRY if n == name)
        _loaded[name] = import_module(module).LAYOUT
    return _loaded[name]


def step_of(folder_name: str) -> int | None:
    """The step a folder name says in some layout's naming, without importing any layout."""
    for _, pattern, _ in REGISTRY:
        match = pattern.fullmatch(folder_name)
        if match:
            return int(match.group(1))
    return None


def temporary_step(folder_name: str) -> int | None:
    """The step of a framework's temporary folder name (`tmp-checkpoint-40`), else None."""
    for _, pattern in TEMPORARY:
        match = pattern.fullmatch(folder_name)
        if match:
            return int(match.group(1))
    return None


def ordered() -> Iterator[tuple[str, re.Pattern[str]]]:
    """Every layout's name and folder pattern, in the order folders are offered to them."""
    for name, pattern, _ in REGISTRY:
        yield name, pattern


def load(backend: Backend, folder: Location) -> Metadata:
    """A folder's values in full, validated, by the first layout whose signature it holds (of
    those that use its name; every layout for a folder named otherwise). When none holds its
    signature, the error is ckpt's own: no metadata.json."""
    names = [name for name, pattern in ordered() if pattern.fullmatch(folder.name)]
    first: NoSignatureError | None = None
    # one at a time: a layout is imported only when the ones before it found no signature
    for name in names or [name for name, _ in ordered()]:
        try:
            return get(name).load(backend, folder)
        except NoSignatureError as exc:
            first = first or exc
    assert first is not None
    raise first
