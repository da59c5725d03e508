"""Pruning: lock, scan, plan, delete, report, written once over any storage backend.

The decisions are the pure engine's (`core.retention.plan_retention`); this module only does
the I/O around them, so that `--dry-run` shows the very plan a real run executes. The deletion
itself is the backend's (`Backend.delete`): renamed aside before removal on a local disk,
condemned by a tombstone on an object store, so that no crash leaves a half-deleted folder that
looks like a checkpoint. Oldest step first: an interrupted prune leaves the newer ones.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from ..core.errors import CkptError, CkptFileSystemError
from ..core.namings import could_be_deleted
from ..core.paths import Location, Target
from ..core.records import DEFAULT_LOCK_TIMEOUT
from ..core.retention import PlanEntry, RetentionPlan, RetentionPolicy, plan_retention
from ..storage import backend_for
from ..storage.base import Backend, Guard
from .locks import run_lock
from .scan import Listing, scan_run

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
    #: what the frameworks' pointer files said that cannot be used (for stderr)
    warnings: list[str] = field(default_factory=list)

    @property
    def bytes_freed(self) -> int:
        return sum(entry.record.size or 0 for entry in self.deleted)


def _plan(listing: Listing, policy: RetentionPolicy, now: float | None) -> RetentionPlan:
    return plan_retention(listing.records, policy, time.time() if now is None else now)


def plan_run_dir(
    run_dir: Target,
    policy: RetentionPolicy,
    *,
    now: float | None = None,
    sizes: bool = False,
    layout: str | None = None,
) -> RetentionPlan:
    """The plan for a run directory as it is now; touches nothing."""
    backend, run = backend_for(run_dir)
    return _plan(scan_run(backend, run, sizes=sizes, layout=layout), policy, now)


def _sized(entry: PlanEntry, size: int | None) -> PlanEntry:
    if size is None or entry.record.size == size:
        return entry
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
    layout: str | None = None,
) -> PruneResult:
    """Plan and (unless `dry_run`) delete, holding the run directory's lock throughout.

    A dry run takes no lock: it deletes nothing, and what it plans is what a real run would.
    `layout` reads every checkpoint by that layout alone (what it does not find complete is
    kept).
    """
    backend, run = backend_for(target)
    if dry_run:
        listing = scan_run(backend, run, sizes=sizes, layout=layout)
        result = PruneResult(run, _plan(listing, policy, now), dry_run=True)
        result.warnings = listing.warnings
        result.deleted = [
            _sized(
                entry, backend.folder_size(listing.entries[entry.record.name], entry.record.path)
            )
            if entry.record.size is None
            else entry
            for entry in result.plan.deletions
        ]
        return result
    backend.require_run(run)
    names = backend.names(run) if backend.links else None
    if names is not None and not any(could_be_deleted(name) for name in names):
        # nothing a prune may ever delete: no lock, so that a cron job pointed at a folder
        # that another tool writes leaves nothing of its own there (Accelerate's rotation
        # fails on a name without a digit)
        listing = scan_run(backend, run, sizes=sizes, layout=layout)
        plan = _plan(listing, policy, now)
        if not plan.deletions:  # else something came meanwhile: prune under the lock
            return PruneResult(run, plan, dry_run=False, warnings=listing.warnings)
    with run_lock(backend, run, lock_timeout, names) as guard:
        return prune_locked(
            backend, run, policy, guard, now=now, sizes=sizes, progress=progress, layout=layout
        )


def prune_locked(
    backend: Backend,
    run: Location,
    policy: RetentionPolicy,
    guard: Guard,
    *,
    now: float | None = None,
    sizes: bool = False,
    progress: Progress = _no_progress,
    layout: str | None = None,
) -> PruneResult:
    """Plan and delete; the caller holds the run directory's lock (as `save --keep-*` does)."""
    listing = scan_run(backend, run, sizes=sizes, layout=layout)
    plan = _plan(listing, policy, now)
    result = PruneResult(run, plan, dry_run=False, warnings=listing.warnings)
    doomed = [(entry, listing.entries.get(entry.record.name)) for entry in plan.deletions]
    done = backend.delete(run, doomed, lambda entry, freed: progress(_sized(entry, freed)), guard)
    result.deleted = [_sized(entry, freed) for entry, freed in done.deleted]
    result.failed = done.failed
    return result


def prune_many(
    targets: Sequence[Target],
    policy: RetentionPolicy,
    *,
    dry_run: bool = False,
    lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT,
    sizes: bool = False,
    progress: Progress = _no_progress,
    layout: str | None = None,
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
                layout=layout,
            )
        except CkptError as exc:
            failures.append(exc)
            continue
        results.append(result)
        for entry, reason in result.failed:
            failures.append(CkptFileSystemError(f"cannot delete {entry.record.path}: {reason}"))
    return results, failures
