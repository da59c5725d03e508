"""Scanning a run directory: every entry classified, whatever backend holds it.

One listing of the run directory (`Backend.entries`), then each entry classified by its name
and type: a symlink (never followed), ckpt's hidden staging and trash folders, a folder whose
name a layout uses (read by that layout: valid, incomplete or corrupt), or anything else. The
folders' markers are read through `Backend.map`, concurrently on an object store.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from ..core.errors import CkptFileSystemError, InvalidCheckpointError
from ..core.paths import Location, Target
from ..core.records import (
    MAX_U64,
    STAGING_RE,
    TRASH_RE,
    CheckpointRecord,
    EntryKind,
    Status,
    display_name,
    step_from_name,
)
from ..layouts import claiming
from ..layouts.base import Reading
from ..storage import backend_for
from ..storage.base import Backend
from ..storage.listing import Entry


@dataclass
class Listing:
    """A run directory as one scan saw it: its records in step order, and each record's
    listing entry (what the backend needs to delete it)."""

    run: Location
    records: list[CheckpointRecord]
    entries: dict[str, Entry]
    #: what the layouts read of each valid checkpoint, by name
    readings: dict[str, Reading]


def scan(target: Target, *, sizes: bool = False) -> list[CheckpointRecord]:
    """Every entry of a run directory, classified, in ascending step order (stepless last).

    The lock file and other hidden files that are not ckpt's are left out: they are not the
    user's checkpoints and never touched. `sizes` measures each folder (free on an object
    store, a walk of each folder locally).
    """
    backend, run = backend_for(target)
    return scan_run(backend, run, sizes=sizes).records


def scan_run(backend: Backend, run: Location, *, sizes: bool = False) -> Listing:
    """`scan` on a backend already chosen."""
    entries = backend.entries(run)
    classified = list(backend.map(lambda entry: _classify(backend, run, entry), entries))
    records = [record for record, _ in classified if record is not None]
    readings = {record.name: found for record, found in classified if record is not None and found}
    by_name = {entry.name: entry for entry in entries}
    if sizes:
        records = [_with_size(backend, record, by_name[record.name]) for record in records]
    records.sort(key=_order)
    return Listing(run, records, by_name, readings)


def _classify(
    backend: Backend, run: Location, entry: Entry
) -> tuple[CheckpointRecord | None, Reading | None]:
    """The record of one entry, and what its layout read; no record when it was deleted or
    renamed since the listing (a save or prune ran beside the scan): it is not there, and it
    was never broken."""
    name = entry.name
    path = run / name
    size = entry.size
    if entry.type == "other" and entry.mtime is None:
        return CheckpointRecord(path, name, "other", "corrupt", error="cannot stat"), None
    if entry.type == "link":
        return CheckpointRecord(path, name, "symlink", "valid", step=step_from_name(name)), None
    is_dir = entry.type == "dir"
    hidden_kinds: tuple[tuple[re.Pattern[str], EntryKind], ...] = (
        (STAGING_RE, "staging"),
        (TRASH_RE, "trash"),
    )
    for pattern, kind in hidden_kinds:
        match = pattern.fullmatch(name)
        if match and is_dir:
            step = int(match.group(1))
            hidden = CheckpointRecord(
                path, name, kind, "incomplete", step=step, saved_at=entry.mtime, size=size
            )
            return hidden, None
    claims = list(claiming(name)) if is_dir else []
    if not claims:
        other = CheckpointRecord(path, name, "other", "valid", step=step_from_name(name), size=size)
        return other, None
    step = claims[0][1]
    if entry.condemned:  # an interrupted deletion: finished by the next prune
        trash = CheckpointRecord(
            path, name, "trash", "incomplete", step=step, saved_at=entry.mtime, size=size
        )
        return trash, None

    def broken(status: Status, error: str | None) -> CheckpointRecord:
        return CheckpointRecord(
            path,
            name,
            "checkpoint",
            status,
            step=step,
            saved_at=entry.mtime,
            size=size,
            error=error,
        )

    if step > MAX_U64:
        return broken("corrupt", f"{display_name(name)}: step number past 2^64-1"), None
    try:
        for layout, _ in claims:
            found = layout.summary(backend, path, entry)
            if found is not None:
                return valid_record(path, name, step, found, entry.mtime, size), found
    except InvalidCheckpointError as exc:
        return broken("corrupt", str(exc)), None
    except CkptFileSystemError as exc:
        if backend.state(path) == "missing":
            return None, None
        return broken("corrupt", str(exc)), None
    if entry.files is None and backend.state(path) == "missing":
        return None, None  # deleted since the listing
    return broken("incomplete", None), None


def valid_record(
    path: Location,
    name: str,
    step: int,
    found: Reading,
    mtime: float | None,
    size: int | None = None,
) -> CheckpointRecord:
    """The record of a valid checkpoint: saved at its recorded time, else at `mtime`
    (checkpoints written by other tools), with a note when name and metadata disagree."""
    mismatch = None
    if found.global_step != step:
        mismatch = f"folder name says step {step} but metadata says {found.global_step}"
    return CheckpointRecord(
        path,
        name,
        "checkpoint",
        "valid",
        step=step,
        epoch=found.epoch,
        loss=found.loss,
        best_loss=found.best_loss,
        rng_state=found.rng_state,
        saved_at=mtime if found.saved_at is None else found.saved_at,
        size=size,
        error=mismatch,
    )


def _with_size(backend: Backend, record: CheckpointRecord, entry: Entry) -> CheckpointRecord:
    if record.size is not None or record.kind not in ("checkpoint", "staging", "trash"):
        return record
    return replace(record, size=backend.folder_size(entry, record.path))


def _order(record: CheckpointRecord) -> tuple[bool, int, str]:
    return (record.step is None, record.step or 0, record.name)


def checkpoints_of(records: Sequence[CheckpointRecord]) -> list[CheckpointRecord]:
    """The records that are checkpoint folders (valid, incomplete or corrupt)."""
    return [r for r in records if r.kind == "checkpoint"]
