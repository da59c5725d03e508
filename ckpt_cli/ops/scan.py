"""Scanning a run directory: every entry classified, whatever backend holds it.

One listing of the run directory (`Backend.entries`), then each entry classified by its name
and type: a symlink (never followed), ckpt's hidden staging and trash folders, a folder whose
name a layout uses (read by that layout: valid, incomplete or corrupt), or anything else. The
folders' markers are read through `Backend.map`, concurrently on an object store.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from ..core.errors import CkptError, CkptFileSystemError, IncompleteCheckpointError
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
from ..layouts import get, ordered, step_of, temporary_step
from ..layouts.base import Layout, Reading
from ..storage import backend_for
from ..storage.base import Backend
from ..storage.listing import Entry


@dataclass
class Listing:
    """A run directory as one scan saw it: its records in step order, and each record's
    listing entry (what the backend needs to delete it)."""

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
    """`scan` on a backend already chosen.

    Each entry is classified by its name and type; a folder named as a checkpoint is offered
    to the layouts, in the registry's order, each reading (in one batch) the folders that the
    ones before it found no signature in; what no layout claims is incomplete. Then each
    layout names the entries its state protects (the Trainer's best), which retention keeps.
    """
    entries = backend.entries(run)
    by_name = {entry.name: entry for entry in entries}
    records: dict[str, CheckpointRecord] = {}
    pending: list[tuple[Entry, int]] = []
    for entry in entries:
        record = _by_name(run, entry)
        if record is None:
            pending.append((entry, step_of(entry.name) or 0))
        else:
            records[entry.name] = record
    readings: dict[str, Reading] = {}
    used: list[Layout] = []
    for name, pattern in ordered():
        mine: list[tuple[Entry, int]] = []
        others: list[tuple[Entry, int]] = []
        for item in pending:
            (mine if pattern.fullmatch(item[0].name) else others).append(item)
        if not mine:
            continue
        layout = get(name)
        used.append(layout)
        unclaimed = []
        for (entry, step), found in zip(mine, layout.summaries(backend, run, mine), strict=True):
            if found is None:
                unclaimed.append((entry, step))
                continue
            record = _read(backend, run, entry, step, found)
            if record is not None:
                records[entry.name] = record
            if isinstance(found, Reading):
                readings[entry.name] = found
        pending = unclaimed + others
    for entry, step in pending:
        if entry.files is None and backend.state(run / entry.name) == "missing":
            continue  # deleted since the listing (a prune beside us)
        records[entry.name] = _broken(run, entry, step, "incomplete", None)
    names = set(records)
    for layout in used:
        for name, reason in layout.pins(backend, run, readings, names).items():
            if name in records:
                pinned = records[name].pinned
                records[name] = replace(records[name], pinned=(*pinned, reason))
    found_records = list(records.values())
    if sizes:
        found_records = [_with_size(backend, r, by_name[r.name]) for r in found_records]
    found_records.sort(key=_order)
    return Listing(found_records, by_name, readings)


def _by_name(run: Location, entry: Entry) -> CheckpointRecord | None:
    """The record of an entry that its name and type say all about; None for a folder named
    as a checkpoint, which the layouts must read."""
    name = entry.name
    path = run / name
    size = entry.size
    if entry.type == "other" and entry.mtime is None:
        return CheckpointRecord(path, name, "other", "corrupt", error="cannot stat")
    if entry.type == "link":
        return CheckpointRecord(path, name, "symlink", "valid", step=step_from_name(name))
    is_dir = entry.type == "dir"
    hidden_kinds: tuple[tuple[re.Pattern[str], EntryKind], ...] = (
        (STAGING_RE, "staging"),
        (TRASH_RE, "trash"),
    )
    for pattern, kind in hidden_kinds:
        match = pattern.fullmatch(name)
        if match and is_dir:
            step = int(match.group(1))
            return CheckpointRecord(
                path, name, kind, "incomplete", step=step, saved_at=entry.mtime, size=size
            )
    temporary = temporary_step(name) if is_dir else None
    if temporary is not None:  # a framework's temporary folder: never complete
        return CheckpointRecord(
            path, name, "staging", "incomplete", step=temporary, saved_at=entry.mtime, size=size
        )
    named = step_of(name) if is_dir else None
    if named is None:
        return CheckpointRecord(path, name, "other", "valid", step=step_from_name(name), size=size)
    step = named
    if entry.condemned:  # an interrupted deletion: finished by the next prune
        return CheckpointRecord(
            path, name, "trash", "incomplete", step=step, saved_at=entry.mtime, size=size
        )
    if step > MAX_U64:
        return _broken(
            run, entry, step, "corrupt", f"{display_name(name)}: step number past 2^64-1"
        )
    return None


def _broken(
    run: Location, entry: Entry, step: int, status: Status, error: str | None
) -> CheckpointRecord:
    return CheckpointRecord(
        run / entry.name,
        entry.name,
        "checkpoint",
        status,
        step=step,
        saved_at=entry.mtime,
        size=entry.size,
        error=error,
    )


def _read(
    backend: Backend, run: Location, entry: Entry, step: int, found: Reading | CkptError
) -> CheckpointRecord | None:
    """The record of a folder a layout claimed; None when it vanished since the listing."""
    if isinstance(found, Reading):
        return valid_record(run / entry.name, entry.name, step, found, entry.mtime, entry.size)
    if isinstance(found, IncompleteCheckpointError):
        return _broken(run, entry, step, "incomplete", str(found))
    if isinstance(found, CkptFileSystemError) and backend.state(run / entry.name) == "missing":
        return None
    return _broken(run, entry, step, "corrupt", str(found))


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
        layout=found.layout,
        epoch_exact=found.epoch_exact if found.epoch_exact != found.epoch else None,
    )


def _with_size(backend: Backend, record: CheckpointRecord, entry: Entry) -> CheckpointRecord:
    if record.size is not None or record.kind not in ("checkpoint", "staging", "trash"):
        return record
    return replace(record, size=backend.folder_size(entry, record.path))


def _order(record: CheckpointRecord) -> tuple[bool, int, str]:
    return (record.step is None, record.step or 0, record.name)
