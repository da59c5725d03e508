"""Carrying out a retention plan on a run directory: lock, scan, plan, delete, report.

The decisions are the pure engine's (`retention.plan_retention`); this module only does the I/O
around them, so that `--dry-run` shows the very plan a real run executes. Deletion renames each
folder aside to a hidden trash name before removing it (a half-deleted folder never looks like a
checkpoint) and goes oldest step first, so an interrupted prune leaves the newer ones.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import atomic
from .errors import CkptError, CkptFileSystemError
from .locking import DEFAULT_LOCK_TIMEOUT, run_lock
from .retention import PlanEntry, RetentionPlan, RetentionPolicy, plan_retention
from .rundir import folder_size, scan
from .storage import Location, ObjectPath, Target, local, location

#: called once per entry as it is deleted (for progress bars)
Progress = Callable[[PlanEntry], None]


def _no_progress(_: PlanEntry) -> None:
    return None


@dataclass
class PruneResult:
    """What a prune of one run directory planned and what it carried out."""

    run_dir: Location
    plan: RetentionPlan
    dry_run: bool
    deleted: list[PlanEntry] = field(default_factory=list)
    failed: list[tuple[PlanEntry, str]] = field(default_factory=list)

    @property
    def bytes_freed(self) -> int:
        return sum(entry.record.size or 0 for entry in self.deleted)


def plan_run_dir(
    run_dir: Target, policy: RetentionPolicy, *, now: float | None = None, sizes: bool = False
) -> RetentionPlan:
    """The plan for a run directory as it is now; touches nothing."""
    records = scan(run_dir, sizes=sizes)
    return plan_retention(records, policy, time.time() if now is None else now)


def _measured(entry: PlanEntry) -> PlanEntry:
    if entry.record.size is not None:
        return entry
    return _sized(entry, folder_size(local(entry.record.path)))


def _sized(entry: PlanEntry, size: int) -> PlanEntry:
    return PlanEntry(replace(entry.record, size=size), entry.decision, entry.reasons)


def prune_run_dir(
    target: Target,
    policy: RetentionPolicy,
    *,
    dry_run: bool = False,
    lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT,
    now: float | None = None,
    sizes: bool = False,
    progress: Progress = _no_progress,
) -> PruneResult:
    """Plan and (unless `dry_run`) delete, holding the run directory's lock throughout.

    A dry run takes no lock: it deletes nothing, and what it plans is what a real run would.
    A URL goes to `remote.prune_run_dir` (a lock object instead of flock).
    """
    run_dir = location(target)
    if isinstance(run_dir, ObjectPath):
        from . import remote

        return remote.prune_run_dir(
            run_dir,
            policy,
            dry_run=dry_run,
            lock_timeout=lock_timeout,
            now=now,
            progress=progress,
        )
    if dry_run:
        plan = plan_run_dir(run_dir, policy, now=now, sizes=sizes)
        result = PruneResult(run_dir, plan, dry_run=True)
        result.deleted = [_measured(entry) for entry in plan.entries if entry.decision == "delete"]
        return result
    if not run_dir.is_dir():
        scan(run_dir)  # raises the one clear error for a missing run directory or a file
    with run_lock(run_dir, lock_timeout):
        return prune_locked(run_dir, policy, now=now, sizes=sizes, progress=progress)


def prune_locked(
    run_dir: Path,
    policy: RetentionPolicy,
    *,
    now: float | None = None,
    sizes: bool = False,
    progress: Progress = _no_progress,
) -> PruneResult:
    """Plan and delete; the caller holds the run directory's lock (as `save --keep-*` does)."""
    plan = plan_run_dir(run_dir, policy, now=now, sizes=sizes)
    result = PruneResult(run_dir, plan, dry_run=False)
    # Doomed folders are renamed aside, then one fsync of the run directory makes the renames
    # durable, then they are removed: the guarantee of atomic.delete_folder (no half-deleted
    # folder under a checkpoint's name) without its fsync per folder, which was most of the
    # time of a large prune. Batches double (1, 2, 4, ...): oldest first, a few fsyncs in all,
    # and a prune killed midway leaves at most half of what it finished as hidden trash.
    doomed = [entry for entry in plan.entries if entry.decision == "delete"]
    batch = 1
    while doomed:
        current, doomed = doomed[:batch], doomed[batch:]
        batch *= 2
        for entry, trash in _rename_aside(run_dir, current, result):
            atomic.fault_point("delete:before-remove")
            try:
                freed = atomic.remove_tree(trash)
            except OSError as exc:
                result.failed.append((entry, exc.strerror or str(exc)))
                continue
            atomic.fault_point("delete:removed")
            entry = _sized(entry, freed)
            result.deleted.append(entry)
            progress(entry)
    return result


def _rename_aside(
    run_dir: Path, entries: Sequence[PlanEntry], result: PruneResult
) -> list[tuple[PlanEntry, Path]]:
    """Rename each folder to a hidden trash name and fsync the run directory once; returns
    (the entry, the trash path) for each one that can now be removed."""
    trashed: list[tuple[PlanEntry, Path]] = []
    for entry in entries:
        folder = local(entry.record.path)
        if entry.record.kind == "trash":
            trashed.append((entry, folder))
            continue
        trash = atomic.trash_name(folder, entry.record.step)
        atomic.fault_point("prune:before-delete")
        try:
            os.rename(folder, trash)
        except OSError as exc:
            result.failed.append((entry, exc.strerror or str(exc)))
            continue
        atomic.fault_point("delete:after-rename")
        trashed.append((entry, trash))
    if len(trashed) > sum(1 for entry, _ in trashed if entry.record.kind == "trash"):
        atomic.fsync_dir(run_dir)
    return trashed


def prune_many(
    targets: Sequence[Target],
    policy: RetentionPolicy,
    *,
    dry_run: bool = False,
    lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT,
    sizes: bool = False,
    progress: Progress = _no_progress,
) -> tuple[list[PruneResult], list[CkptError]]:
    """Prune each run directory in turn; one that fails does not stop the others.

    Returns the results and one error per failed directory or per folder that could not be
    deleted.
    """
    results: list[PruneResult] = []
    failures: list[CkptError] = []
    for target in targets:
        try:
            result = prune_run_dir(
                target,
                policy,
                dry_run=dry_run,
                lock_timeout=lock_timeout,
                sizes=sizes,
                progress=progress,
            )
        except CkptError as exc:
            failures.append(exc)
            continue
        results.append(result)
        for entry, reason in result.failed:
            failures.append(CkptFileSystemError(f"cannot delete {entry.record.path}: {reason}"))
    return results, failures
