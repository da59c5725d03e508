"""How a folder is read: one module per layout, registered in one table, loaded on demand.

- `ckpt.py`: ckpt's own layout, the seed crate's: `checkpoint-<step>/metadata.json`, the
  commit marker (`base.Layout` says what a layout implements).
- `hf_trainer.py`: the Hugging Face Trainer's `checkpoint-<step>/trainer_state.json`.
- `deepspeed.py`: DeepSpeed's `global_step<N>/` tags beside a `latest` file (also nested in
  Trainer folders).
- `megatron.py`: Megatron-LM's `iter_<7 digits>/` and its tracker file.
- `accelerate.py`: Accelerate's `save_state` folders (`checkpoint_<i>/`, a save counter).
- `dcp.py`: PyTorch Distributed Checkpoint folders (TorchTitan's `step-<N>/`), `.metadata`.
- `orbax.py`: Orbax's `<step>/` and `<prefix>_<step>/` with `_CHECKPOINT_METADATA`.
- `lightning.py`: Lightning's `*.ckpt` files (checkpoints that are files, not folders).

How each names its checkpoints is in `core/namings.py` (plain data). Each entry is read by the
first layout, in that table's order, whose signature it holds: ckpt's own first, so that a
Trainer folder that `ckpt save` sealed is read by its marker.

A layout module is imported only when a listing holds a name that one of its namings matches,
so `ckpt latest` on a plain run loads just ckpt's own.
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from importlib import import_module
from typing import TYPE_CHECKING

from ..core.errors import NoSignatureError
from ..core.namings import NAMINGS, POINTERS, may_be_pointer

if TYPE_CHECKING:
    from ..core.format import Metadata
    from ..core.paths import Location
    from ..storage.base import Backend
    from .base import Layout, Pointer

#: layout name -> the module that implements it (`LAYOUT` in it)
MODULES = {
    "ckpt": "ckpt_cli.layouts.ckpt",
    "hf-trainer": "ckpt_cli.layouts.hf_trainer",
    "deepspeed": "ckpt_cli.layouts.deepspeed",
    "megatron": "ckpt_cli.layouts.megatron",
    "accelerate": "ckpt_cli.layouts.accelerate",
    "dcp": "ckpt_cli.layouts.dcp",
    "orbax": "ckpt_cli.layouts.orbax",
    "lightning": "ckpt_cli.layouts.lightning",
}

_loaded: dict[str, Layout] = {}


def get(name: str) -> Layout:
    """The layout called `name`, imported on first use."""
    if name not in _loaded:
        _loaded[name] = import_module(MODULES[name]).LAYOUT
    return _loaded[name]


def names() -> list[str]:
    """Every layout's name, in the order entries are offered to them (`--layout` choices)."""
    return list(MODULES)


def load(backend: Backend, folder: Location, layout: str | None = None) -> Metadata:
    """A checkpoint's values in full, validated, by the first layout whose signature it holds
    (of those whose namings match its name; every layout for an entry named otherwise), or by
    `layout` alone. When none holds its signature, the error is the first one's: for a folder
    named as ckpt's, no metadata.json."""
    if layout is not None:
        return get(layout).load(backend, folder)
    matching = [n.layout for n in NAMINGS if n.pattern.fullmatch(folder.name)]
    first: NoSignatureError | None = None
    # one at a time: a layout is imported only when the ones before it found no signature
    for name in dict.fromkeys(matching or list(MODULES)):
        try:
            return get(name).load(backend, folder)
        except NoSignatureError as exc:
            first = first or exc
    assert first is not None
    raise first


def pointers(
    backend: Backend, run: Location, present: Container[str], candidates: Iterable[str]
) -> list[Pointer]:
    """The frameworks' pointer files among `candidates` (names of the run's listing), read and
    resolved against `present` (what the listing holds); only the layouts whose pointer
    files are there are imported."""
    found: list[Pointer] = []
    asked: dict[str, list[str]] = {}
    for name in candidates:
        for layout, pattern in POINTERS:
            if pattern.fullmatch(name):
                asked.setdefault(layout, []).append(name)
    for layout, files in asked.items():
        found.extend(get(layout).pointers(backend, run, files, present))
    return found


def pointer_candidates(names: Iterable[str]) -> list[str]:
    """The names of a listing that may be pointer files (one cheap pass)."""
    return [name for name in names if may_be_pointer(name)]
