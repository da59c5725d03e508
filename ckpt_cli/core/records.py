"""What a scan of a run directory knows about each entry in it, as plain data.

A `CheckpointRecord` is produced by `ops.scan` (which does the I/O, through a storage backend
and the layouts) and consumed by the pure retention engine, the renderers and the JSON output.
Nothing here touches the disk.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from .paths import Location

#: What kind of name an entry in a run directory has.
#: - checkpoint: `checkpoint-<digits>` (a real directory, not a symlink)
#: - staging: `.checkpoint-<step>.staging-<token>`, a save in progress or abandoned, or a
#:   framework's temporary folder (`tmp-checkpoint-<step>`)
#: - trash: `.checkpoint-<step>.deleting-<token>`, a deletion in progress or interrupted
#: - symlink: any symlink (never followed, never deleted through)
#: - other: anything else; never touched
EntryKind = Literal["checkpoint", "staging", "trash", "symlink", "other"]

#: For checkpoints: valid (complete, valid metadata.json), incomplete (no metadata.json),
#: corrupt (metadata.json present but unreadable or invalid). Other kinds carry "incomplete"
#: for staging/trash and "valid" for the rest (the status is meaningless there).
Status = Literal["valid", "incomplete", "corrupt"]

MAX_U64 = 2**64 - 1
METADATA_NAME = "metadata.json"
LOCK_NAME = ".ckpt.lock"
#: seconds a save or prune waits for the run lock unless told otherwise
DEFAULT_LOCK_TIMEOUT = 300.0

CHECKPOINT_RE = re.compile(r"checkpoint-([0-9]+)")
STAGING_RE = re.compile(r"\.checkpoint-([0-9]+)\.staging-[A-Za-z0-9_-]+")
TRASH_RE = re.compile(r"\.checkpoint-([0-9]+)\.deleting-[A-Za-z0-9_-]+")


def checkpoint_name(step: int) -> str:
    """The folder name of the checkpoint at `step`."""
    return f"checkpoint-{step}"


def step_from_name(name: str) -> int | None:
    """The step a `checkpoint-<digits>` name stands for, or None for any other name.

    Zero padding is tolerated (`checkpoint-0007` is step 7); a number past 2**64-1 is still
    returned so that the caller can report it rather than silently skip it.
    """
    match = CHECKPOINT_RE.fullmatch(name)
    return int(match.group(1)) if match else None


def display_name(name: str) -> str:
    """A printable form of a file name that may hold undecodable bytes (surrogate escapes)."""
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


@dataclass(frozen=True)
class CheckpointRecord:
    """One entry of a run directory, as `scan` found it."""

    #: a local Path, or an ObjectPath for a checkpoint on an object store
    path: Location
    name: str
    kind: EntryKind
    status: Status
    step: int | None = None
    epoch: int | None = None
    #: the checkpoint's own loss (`ckpt.loss` in metadata), when recorded
    loss: float | None = None
    best_loss: float | None = None
    rng_state: int | None = None
    #: POSIX seconds: `ckpt.saved_at` from metadata, else the folder's mtime
    saved_at: float | None = None
    #: bytes on disk of the folder's files (None when not measured)
    size: int | None = None
    #: why the entry is corrupt, or a warning about it (e.g. name/metadata step mismatch)
    error: str | None = None
    #: which layout read it (`ckpt`, `hf-trainer`, ...); None for what no layout read
    layout: str | None = None
    #: the epoch as the framework wrote it, when that is not a whole number of the format's
    #: kind (the Trainer's 2.5): `epoch` is then the epochs completed
    epoch_exact: float | None = None
    #: why retention must always keep it: a framework's own state names it (its best, its
    #: resume point)
    pinned: tuple[str, ...] = ()
    #: the save counter the entry is numbered by, where that is not a training step
    #: (Accelerate's `checkpoint_<i>`): `step` is then that counter, which orders the run,
    #: and `trained_step` the training step read inside (None where it cannot be read)
    save_index: int | None = None
    trained_step: int | None = None

    @property
    def global_step(self) -> int | None:
        """The training step: the one the name says, or the one read inside a folder that is
        numbered by a save counter."""
        return self.trained_step if self.save_index is not None else self.step

    @property
    def is_valid_checkpoint(self) -> bool:
        return self.kind == "checkpoint" and self.status == "valid"

    @property
    def display(self) -> str:
        return display_name(self.name)
