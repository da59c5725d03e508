"""The layout interface: how one checkpoint folder is read, whoever wrote it.

A layout answers, for an entry of a run directory: does it carry my signature (the files that
my framework writes, never the name alone); is it complete by my rule; and what is its record
(step, epoch, losses, saving time, what it protects). `ckpt_cli.ops.scan` asks the layouts
that claim an entry's name, through any storage backend, and builds the `CheckpointRecord`.

A new layout is one module in this folder with a `LAYOUT` object implementing `Layout`, and
one line in the registry (`layouts/__init__.py`); no operation changes.
"""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ..core.errors import CkptError, NoCheckpointFolderError, NoSignatureError
from ..core.namings import step_for

if TYPE_CHECKING:
    from ..core.format import Metadata
    from ..core.paths import Location
    from ..storage.base import Backend
    from ..storage.listing import Entry, FileInfo


@dataclass(slots=True)  # not frozen: one is made per checkpoint a listing reads
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
    #: which layout read it, and the values of its own that a record shows
    layout: str = "ckpt"
    #: the epoch as the framework wrote it (the Trainer's is a float: 2.5)
    epoch_exact: float | None = None
    best_metric: float | None = None
    #: which checkpoint the framework names as its best (the Trainer: by step, by path)
    best_global_step: int | None = None
    best_model_checkpoint: str | None = None
    #: the last entry of a Trainer state's history (a later state continues from it)
    last_entry: Mapping[str, Any] | None = None
    #: the save counter a folder is numbered by, where that is not the step (Accelerate's
    #: `checkpoint_<i>`): `global_step` is then the training step read inside, if any
    save_index: int | None = None
    #: for such a folder, the training step where it can be read (else None)
    trained_step: int | None = None
    #: what a listing should say about the folder although it is complete (a DeepSpeed tag
    #: whose step is not its Trainer folder's)
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Pointer:
    """A framework's file that names one of its checkpoints (DeepSpeed's `latest`, Megatron's
    tracker, Lightning's `last.ckpt` link): a hint, never trusted on its own. Its target is
    always kept by retention; `latest` warns when it is not the highest complete checkpoint."""

    #: the pointer file's name in the run directory
    source: str
    #: how the output calls it ("DeepSpeed's latest")
    label: str
    #: the entry of this run directory it names, when it names one
    target: str | None
    #: why it names nothing that can be used (unreadable, outside the run, no such entry)
    problem: str | None = None


class Layout(Protocol):
    """One way a checkpoint folder is written and read."""

    #: the name `list` shows in its `layout` column and JSON key (the folder names it uses are
    #: in the registry, `layouts.REGISTRY`, so that a listing can tell without importing it)
    name: str

    def summaries(
        self, backend: Backend, run: Location, claimed: Sequence[tuple[Entry, int | None]]
    ) -> list[Reading | CkptError | None]:
        """For each (entry, step) of a listing whose name this layout uses (the step None where
        the name says none: Lightning's `last.ckpt`), its record, read
        cheaply (what a listing shows: the ends of a large file); None where the folder
        lacks this layout's signature; an IncompleteCheckpointError where it has it but is
        incomplete, another CkptError where it is corrupt or cannot be read."""

    def load(self, backend: Backend, folder: Location) -> Metadata:
        """The folder's values in full, validated (load, latest, verify). Raises NoSignatureError
        when the folder does not hold what this layout writes."""

    def pins(
        self, backend: Backend, run: Location, readings: Mapping[str, Reading], names: set[str]
    ) -> dict[str, str]:
        """The entries of the run that this layout's state protects (a framework's named
        best or resume point), with the reason: always kept by retention."""

    def pointers(
        self, backend: Backend, run: Location, files: Sequence[str], present: Container[str]
    ) -> list[Pointer]:
        """This layout's pointer `files` (names in the run directory), each read and resolved
        to an entry of the run that `present` holds, never followed outside it."""


def as_metadata(reading: Reading, **extra: Any) -> Metadata:
    """A framework checkpoint's values in the format's shape (what load and latest show,
    what the Python API returns), its layout's own values as extra keys."""
    import math

    from ..core.format import Metadata, format_timestamp

    values: dict[str, Any] = {"layout": reading.layout}
    if reading.save_index is not None:
        values["save_index"] = reading.save_index
    if reading.note is not None:
        values["note"] = reading.note
    values.update(extra)
    meta = Metadata(
        epoch=reading.epoch if reading.epoch is not None else 0,
        global_step=reading.global_step,
        best_loss=reading.best_loss if reading.best_loss is not None else math.nan,
        optimizer_state=[],
        rng_state=None,
        loss=reading.loss,
        extra=values,
    )
    if reading.saved_at is not None:
        meta.saved_at = format_timestamp(reading.saved_at)
    return meta


def running_best(readings: list[Reading | CkptError | None], steps: list[int | None]) -> None:
    """Set each complete reading's best_loss to the lowest own loss up to its step (`steps`,
    one per reading), where the framework records a loss but no best."""
    import math

    best: float | None = None
    for i in sorted(range(len(readings)), key=lambda i: steps[i] or 0):
        found = readings[i]
        if not isinstance(found, Reading):
            continue
        if found.loss is not None and not math.isnan(found.loss):
            best = found.loss if best is None else min(best, found.loss)
        if found.best_loss is None:
            found.best_loss = best


def entry_files(backend: Backend, folder: Location, entry: Entry | None) -> dict[str, FileInfo]:
    """Every file below a folder: from the listing when it told them (an object store),
    else by one walk of the folder, which the entry keeps (its size is summed from it)."""
    if entry is not None and entry.files is not None:
        return dict(entry.files)
    found = backend.files(folder)
    if entry is not None:
        entry.files = found
    return dict(found)


def bare_reading(layout: str, step: int | None, saved_at: float | None) -> Reading:
    """The record of a framework that records only its step (in the folder's name)."""
    return Reading(
        global_step=step or 0,
        epoch=None,
        loss=None,
        best_loss=None,
        rng_state=None,
        saved_at=saved_at,
        layout=layout,
    )


class FolderLayout:
    """A layout whose checkpoints are folders, each judged on its own files: a subclass says
    what its signature is (`signed`) and how a folder with it is read (`read`); listing,
    loading, and the empty pins and pointers are written here once."""

    name: str
    #: what `load` says of a folder without the signature
    missing_signature: str

    def signed(self, name: str, files: Mapping[str, FileInfo]) -> bool:
        raise NotImplementedError

    def read(
        self,
        backend: Backend,
        folder: Location,
        step: int | None,
        files: Mapping[str, FileInfo],
        context: Any,
        whole: bool,
    ) -> Reading:
        """The record of a signed folder; raises IncompleteCheckpointError, or another
        CkptError when it is corrupt or cannot be read. `whole` (load, verify) asks for every
        check, a listing (`whole` False) for what it shows."""
        raise NotImplementedError

    def context(self, backend: Backend, run: Location) -> Any:
        """What the run directory says about all its folders (read once per listing)."""
        return None

    def finish(self, found: list[Reading | CkptError | None], steps: list[int | None]) -> None:
        """Values that depend on the other checkpoints of the listing (a running best)."""

    def summaries(
        self, backend: Backend, run: Location, claimed: Sequence[tuple[Entry, int | None]]
    ) -> list[Reading | CkptError | None]:
        context = self.context(backend, run)

        def one(item: tuple[Entry, int | None]) -> Reading | CkptError | None:
            entry, step = item
            folder = run / entry.name
            try:
                files = entry_files(backend, folder, entry)
                if not self.signed(entry.name, files):
                    return None
                return self.read(backend, folder, step, files, context, False)
            except CkptError as exc:
                return exc

        found = list(backend.map(one, claimed))
        self.finish(found, [step for _, step in claimed])
        return found

    def load(self, backend: Backend, folder: Location) -> Metadata:
        files = backend.files(folder)
        if not files and backend.state(folder, follow=True) == "missing":
            raise NoCheckpointFolderError(f"{folder}: no such checkpoint folder")
        if not self.signed(folder.name, files):
            raise NoSignatureError(f"{folder}: {self.missing_signature}")
        step = step_for(self.name, folder.name)
        context = self.context(backend, folder.parent)
        reading = self.read(backend, folder, step, files, context, True)
        self.finish([reading], [step])
        return as_metadata(reading)

    def pins(
        self, backend: Backend, run: Location, readings: Mapping[str, Reading], names: set[str]
    ) -> dict[str, str]:
        return {}

    def pointers(
        self, backend: Backend, run: Location, files: Sequence[str], present: Container[str]
    ) -> list[Pointer]:
        return []
