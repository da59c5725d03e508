"""The layout interface: how one checkpoint folder is read, whoever wrote it.

A layout answers, for an entry of a run directory: does it carry my signature (the files that
my framework writes, never the name alone); is it complete by my rule; and what is its record
(step, epoch, losses, saving time, what it protects). `ckpt_cli.ops.scan` asks the layouts
that claim an entry's name, through any storage backend, and builds the `CheckpointRecord`.

A new layout is one module in this folder with a `LAYOUT` object implementing `Layout`, and
one line in the registry (`layouts/__init__.py`); no operation changes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from ..core.format import Metadata
from ..core.paths import Location
from ..storage.base import Backend
from ..storage.listing import Entry


@dataclass(frozen=True)
class Reading:
    """What a layout read from a complete folder: the values of its record."""

    global_step: int
    epoch: int | None
    loss: float | None
    best_loss: float | None
    rng_state: int | None
    #: POSIX seconds of the commit, when the folder records it; else the folder's mtime counts
    saved_at: float | None
    #: the metadata, where the layout is ckpt's own
    metadata: Metadata | None = None
    #: whether `metadata` was read and validated whole (optimizer state included), so that
    #: verify need not read it again
    whole: bool = False


class Layout(Protocol):
    """One way a checkpoint folder is written and read."""

    #: the name `list --json` reports in `layout` and `--layout` would take
    name: str
    #: the folder names this layout uses; the group captures the step
    folder_re: re.Pattern[str]

    def summary(self, backend: Backend, folder: Location, entry: Entry) -> Reading | None:
        """The folder's record, reading what a listing needs (cheaply: the ends of a large
        file); None when the folder does not carry this layout's signature. Raises
        InvalidCheckpointError when it does but is corrupt, CkptFileSystemError when it
        cannot be read."""

    def load(self, backend: Backend, folder: Location) -> Metadata:
        """The folder's metadata in full, validated (load, latest, verify)."""
