"""Scanning a run directory: every entry classified, whatever backend holds it.

One listing of the run directory (`Backend.entries`), then each entry classified by its name
and type: a symlink (never followed), ckpt's hidden staging and trash folders, a folder whose
name a layout uses (read by that layout: valid, incomplete or corrupt), or anything else. The
folders' markers are read through `Backend.map`, concurrently on an object store.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from ..core.errors import CkptError, CkptFileSystemError, IncompleteCheckpointError
from ..core.namings import (
    EntryShape,
    Naming,
    first_step,
    named_step,
    namings_of,
    step_in,
    temporary_step,
)
from ..core.paths import Location, Target
from ..core.records import (
    MAX_U64,
    STAGING_RE,
    TRASH_RE,
    CheckpointRecord,
    Status,
    display_name,
)
from ..layouts import get, pointer_candidates, pointers
from ..layouts import names as layout_names
from ..layouts.base import Layout, Pointer, Reading
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
    #: what the frameworks' pointer files say that cannot be used (shown on stderr)
    warnings: list[str] = field(default_factory=list)
    pointers: list[Pointer] = field(default_factory=list)


def scan(
    target: Target,
    *,
    sizes: bool = False,
    layout: str | None = None,
    warn: Callable[[str], None] | None = None,
) -> list[CheckpointRecord]:
    """Every entry of a run directory, classified, in ascending step order (stepless last).

    The lock file and other hidden files that are not ckpt's are left out: they are not the
    user's checkpoints and never touched. `sizes` measures each folder (free on an object
    store, a walk of each folder locally). `warn` is told what the frameworks' pointer files
    say that cannot be used.
    """
    backend, run = backend_for(target)
    listing = scan_run(backend, run, sizes=sizes, layout=layout)
    if warn is not None:
        for message in listing.warnings:
            warn(message)
    return listing.records


def scan_run(
    backend: Backend, run: Location, *, sizes: bool = False, layout: str | None = None
) -> Listing:
    """`scan` on a backend already chosen.

    Each entry is classified by its name and type; one named as some layout's checkpoint is
    offered to the layouts whose namings match it, in the registry's order, each reading (in
    one batch) the entries that the ones before it found no signature in. What no layout
    claims is incomplete when its name says "checkpoint", and nobody's (other) when it only
    looks like a step. Then each layout names the entries its state protects (the Trainer's
    best) and its pointer files' targets, which retention keeps. `layout` offers every entry
    to that layout alone (`--layout`).
    """
    entries = backend.entries(run)
    by_name = {entry.name: entry for entry in entries}
    records: dict[str, CheckpointRecord] = {}
    pending: list[tuple[Entry, list[Naming]]] = []
    for entry in entries:
        record, namings = _by_name(run, entry, layout)
        if record is None:
            pending.append((entry, namings))
        else:
            records[entry.name] = record
    readings: dict[str, Reading] = {}
    used: list[Layout] = []
    asked = {n.layout for _, namings in pending for n in namings}
    for name in layout_names() if layout is None else [layout]:
        if not pending:
            break
        if name not in asked:
            continue
        mine: list[tuple[Entry, int | None]] = []
        others: list[tuple[Entry, list[Naming]]] = []
        for entry, namings in pending:
            naming = next((n for n in namings if n.layout == name), None)
            if naming is None:
                others.append((entry, namings))
            else:
                mine.append((entry, step_in(entry.name, naming)))
        if not mine:
            continue
        reader = get(name)
        used.append(reader)
        unclaimed = []
        found_all = reader.summaries(backend, run, mine)
        for (entry, step), found in zip(mine, found_all, strict=True):
            if found is None:
                unclaimed.append(entry)
                continue
            record = _read(backend, run, entry, step, found)
            if record is not None:
                records[entry.name] = record
            if isinstance(found, Reading):
                readings[entry.name] = found
        kept = {id(e) for e in unclaimed}
        pending = [(e, ns) for e, ns in pending if id(e) in kept] + others
    for entry, namings in pending:
        if not entry.files and backend.state(run / entry.name) == "missing":
            continue  # deleted since the listing (a prune beside us)
        step = first_step(entry.name, namings)
        if any(n.named for n in namings):
            records[entry.name] = _broken(run, entry, step, "incomplete", None)
        else:  # only looks like a step: nobody's checkpoint
            records[entry.name] = CheckpointRecord(
                run / entry.name, entry.name, "other", "valid", step=step, size=entry.size
            )
    names = set(records)
    listing = Listing([], by_name, readings)
    for reader in used:
        for name, reason in reader.pins(backend, run, readings, names).items():
            _pin(records, name, reason)
    listing.pointers = pointers(backend, run, by_name, pointer_candidates(by_name))
    for pointer in listing.pointers:
        if pointer.target is not None:
            _pin(records, pointer.target, f"named by {pointer.label}")
        if pointer.problem is not None:
            listing.warnings.append(pointer.problem)
    found_records = list(records.values())
    if sizes:
        found_records = [_with_size(backend, r, by_name[r.name]) for r in found_records]
    found_records.sort(key=_order)
    listing.records = found_records
    return listing


def _pin(records: dict[str, CheckpointRecord], name: str, reason: str) -> None:
    if name in records and reason not in records[name].pinned:
        records[name] = replace(records[name], pinned=(*records[name].pinned, reason))


def _by_name(
    run: Location, entry: Entry, layout: str | None
) -> tuple[CheckpointRecord | None, list[Naming]]:
    """The record of an entry that its name and type say all about; else None and the
    namings that match it, for the layouts to read."""
    name = entry.name
    path = run / name
    size = entry.size
    if entry.type == "other" and entry.mtime is None:
        return CheckpointRecord(path, name, "other", "corrupt", error="cannot stat"), []
    if entry.type == "link":
        return CheckpointRecord(path, name, "symlink", "valid", step=named_step(name)), []
    is_dir = entry.type == "dir"
    match = STAGING_RE.fullmatch(name) if is_dir else None
    if match is not None:
        step = int(match.group(1))
        return CheckpointRecord(
            path, name, "staging", "incomplete", step=step, saved_at=entry.mtime, size=size
        ), []
    match = TRASH_RE.fullmatch(name)  # a file checkpoint's trash is a file
    if match is not None and entry.type in ("dir", "file"):
        step = int(match.group(1))
        return CheckpointRecord(
            path, name, "trash", "incomplete", step=step, saved_at=entry.mtime, size=size
        ), []
    temporary = temporary_step(name) if is_dir else None
    if temporary is not None:  # a framework's temporary folder: never complete
        return CheckpointRecord(
            path, name, "staging", "incomplete", step=temporary, saved_at=entry.mtime, size=size
        ), []
    shape: EntryShape | None = "dir" if is_dir else "file" if entry.type == "file" else None
    namings = namings_of(name, shape) if shape is not None else []
    if layout is not None:  # forced: every entry named as some layout's is read by this one
        namings = [n._replace(layout=layout) for n in namings]
    if not namings:
        return CheckpointRecord(path, name, "other", "valid", step=named_step(name), size=size), []
    said = first_step(name, namings)
    if entry.condemned:  # an interrupted deletion: finished by the next prune
        return CheckpointRecord(
            path, name, "trash", "incomplete", step=said, saved_at=entry.mtime, size=size
        ), []
    if said is not None and said > MAX_U64:
        return _broken(
            run, entry, said, "corrupt", f"{display_name(name)}: step number past 2^64-1"
        ), []
    return None, namings


def _broken(
    run: Location, entry: Entry, step: int | None, status: Status, error: str | None
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
    backend: Backend, run: Location, entry: Entry, step: int | None, found: Reading | CkptError
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
    step: int | None,
    found: Reading,
    mtime: float | None,
    size: int | None = None,
) -> CheckpointRecord:
    """The record of a valid checkpoint: saved at its recorded time, else at `mtime`
    (checkpoints written by other tools), with a note when name and metadata disagree (or
    the layout's own note)."""
    mismatch = found.note
    if found.save_index is not None:  # numbered by a save counter: no step in the name
        step = found.save_index
    elif step is None:  # the name says no step (`last.ckpt`): the one read inside
        step = found.global_step
    elif found.global_step != step:
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
        save_index=found.save_index,
        trained_step=found.trained_step,
    )


def _with_size(backend: Backend, record: CheckpointRecord, entry: Entry) -> CheckpointRecord:
    if record.size is not None or record.kind not in ("checkpoint", "staging", "trash"):
        return record
    return replace(record, size=backend.folder_size(entry, record.path))


def _order(record: CheckpointRecord) -> tuple[bool, int, str]:
    return (record.step is None, record.step or 0, record.name)
