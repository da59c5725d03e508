"""The retention engine: which entries of a run directory to keep, delete or leave alone, and why.

This module owns the one decision that `prune`, `save --keep-*` and `Checkpoint.cleanup_old` all
make. It is pure: it takes the records a scan produced, a `RetentionPolicy` and the current time,
and returns a `RetentionPlan`. It never touches the disk or reads the clock, which is what makes it
property-testable and what makes `--dry-run` print exactly the plan a real run carries out.

Rules are OR'd, restic-style: a valid checkpoint is kept when any rule keeps it, and its reasons
name every rule that does. Only valid checkpoints are subject to the rules and count toward any N.

ckpt never deletes what it cannot read: a visible checkpoint folder that is incomplete (no
completeness signal) or corrupt (its marker does not validate) may be another tool's data, so
it is kept, with a reason that says how to reclaim it, unless the policy says
`delete_incomplete`, and then only once it is older than `stale_after`. ckpt's own hidden
staging and trash folders are its own leftovers and are removed as before.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Literal

from .durations import format_duration_exact
from .records import CheckpointRecord

__all__ = [
    "DEFAULT_STALE_AFTER",
    "Decision",
    "PlanEntry",
    "RetentionPlan",
    "RetentionPolicy",
    "plan_retention",
]

#: How old (seconds) a staging folder (or, with `delete_incomplete`, an incomplete or a corrupt
#: checkpoint) must be before it is taken for abandoned. A day: far longer than any save takes,
#: short enough to reclaim disk soon.
DEFAULT_STALE_AFTER: float = 24 * 3600.0

Decision = Literal["keep", "delete", "skip"]

_DAY = 24 * 3600
# 1970-01-01 was a Thursday; ISO weeks start on Monday, three days earlier.
_EPOCH_WEEKDAY_OFFSET = 3

_COUNT_FIELDS = ("keep_last", "keep_best", "keep_daily", "keep_weekly")
_DURATION_FIELDS = ("keep_within", "min_age", "stale_after")


@dataclass(frozen=True)
class RetentionPolicy:
    """What to keep. Counts are numbers of checkpoints, durations are seconds.

    Any rule that is not None counts as given, zero included: `keep_last=0` means "keep only what
    is always kept" (the latest and the most recently saved checkpoint), which is a deliberate
    request, unlike giving no rule at all. `min_age` is a guard, not a rule: on its own it would
    keep nothing, so it does not make a policy usable.
    """

    keep_last: int | None = None
    keep_best: int | None = None
    keep_every: int | None = None
    keep_within: float | None = None
    keep_daily: int | None = None
    keep_weekly: int | None = None
    min_age: float | None = None
    stale_after: float = DEFAULT_STALE_AFTER
    delete_incomplete: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.delete_incomplete, bool):
            raise ValueError(
                f"delete_incomplete must be True or False, got {self.delete_incomplete!r}"
            )
        for name in (*_COUNT_FIELDS, "keep_every"):
            value = getattr(self, name)
            if value is None:
                continue
            # bool is an int subclass; `keep_last=True` is a bug in the caller, not a count.
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"{name} must be a whole number, got {value!r}")
            if name == "keep_every" and value < 1:
                raise ValueError(f"keep_every must be 1 or more, got {value}")
            if value < 0:
                raise ValueError(f"{name} must be 0 or more, got {value}")
        for name in _DURATION_FIELDS:
            value = getattr(self, name)
            if value is None and name != "stale_after":
                continue
            # Infinity is refused too: "forever" has no spelling in a reason such as `within 2h`,
            # and no caller needs it (a large keep_within or stale_after does the same).
            if (
                not isinstance(value, (int, float))
                or isinstance(value, bool)
                or not math.isfinite(value)
            ):
                raise ValueError(f"{name} must be a finite number of seconds, got {value!r}")
            if value < 0:
                raise ValueError(f"{name} must not be negative, got {value!r}")

    @property
    def has_rule(self) -> bool:
        """Whether any keep_* rule is given (without one, `plan_retention` refuses)."""
        return any(
            getattr(self, f.name) is not None for f in fields(self) if f.name.startswith("keep_")
        )


@dataclass(frozen=True)
class PlanEntry:
    """What the plan does with one record, and why (short, stable phrases such as `last 3`)."""

    record: CheckpointRecord
    decision: Decision
    reasons: tuple[str, ...]

    @property
    def is_stale(self) -> bool:
        """A deletion of leftovers (staging, trash, incomplete, corrupt), not of a checkpoint."""
        return self.decision == "delete" and not self.record.is_valid_checkpoint


@dataclass(frozen=True)
class RetentionPlan:
    """Every record of a run directory with its decision, in ascending step order."""

    entries: tuple[PlanEntry, ...]

    @property
    def to_delete(self) -> tuple[PlanEntry, ...]:
        """Valid checkpoints that no rule keeps."""
        return tuple(e for e in self.entries if e.decision == "delete" and not e.is_stale)

    @property
    def stale(self) -> tuple[PlanEntry, ...]:
        """Leftovers to delete (abandoned saves, interrupted deletions), reported apart."""
        return tuple(e for e in self.entries if e.is_stale)

    @property
    def deletions(self) -> tuple[PlanEntry, ...]:
        """Everything to delete, checkpoints and leftovers alike, in plan order."""
        return tuple(e for e in self.entries if e.decision == "delete")

    @property
    def kept(self) -> tuple[PlanEntry, ...]:
        return tuple(e for e in self.entries if e.decision == "keep")

    @property
    def skipped(self) -> tuple[PlanEntry, ...]:
        """Entries the plan never touches (other names, symlinks, saves that may be running)."""
        return tuple(e for e in self.entries if e.decision == "skip")

    @property
    def counts(self) -> dict[str, int]:
        """Totals for output: keep, delete (checkpoints), stale (leftovers), skip."""
        return {
            "keep": len(self.kept),
            "delete": len(self.to_delete),
            "stale": len(self.stale),
            "skip": len(self.skipped),
        }


def _rank_key(record: CheckpointRecord) -> tuple[int, str, str]:
    """Order of checkpoints by step. Name and path only break ties (e.g. `checkpoint-7` beside
    `checkpoint-007`), so that the plan never depends on the order the scan listed things in."""
    step = -1 if record.step is None else record.step
    return (step, record.name, str(record.path))


def _entry_key(record: CheckpointRecord) -> tuple[bool, int, str, str]:
    """Output order: ascending step, entries without a step last, then by name."""
    return (record.step is None, record.step or 0, record.name, str(record.path))


def _saved_at(record: CheckpointRecord) -> float | None:
    # A non-finite time can only come from a bug upstream; treat it as unknown rather than let
    # infinities or NaN leak into comparisons and bucket arithmetic.
    if record.saved_at is None or not math.isfinite(record.saved_at):
        return None
    return record.saved_at


def _usable_loss(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else value


def _select_last(valid: Sequence[CheckpointRecord], n: int) -> set[int]:
    # N steps, not N entries: Lightning's `last.ckpt` copy and the file it copies are one step
    steps = {_rank_key(r)[0] for r in valid}
    top = set(sorted(steps, reverse=True)[:n])
    return {i for i, r in enumerate(valid) if _rank_key(r)[0] in top}


def _select_best(valid: Sequence[CheckpointRecord], n: int) -> set[int]:
    # `best_loss` is a running minimum: every checkpoint after the one that reached a value carries
    # it forward. Only that first one is a "best" checkpoint; the others merely inherited the
    # number. So a record without its own loss competes with its best_loss only when no lower-step
    # valid checkpoint already had that same best_loss.
    scored: list[tuple[float, tuple[int, str, str], int]] = []
    seen_best: set[float] = set()
    for i in sorted(range(len(valid)), key=lambda i: _rank_key(valid[i])):
        record = valid[i]
        own = _usable_loss(record.loss)
        best = _usable_loss(record.best_loss)
        if own is not None:
            scored.append((own, _rank_key(record), i))
        elif best is not None and best not in seen_best:
            scored.append((best, _rank_key(record), i))
        if best is not None:
            seen_best.add(best)
    scored.sort()
    return {i for _, _, i in scored[:n]}


def _select_every(valid: Sequence[CheckpointRecord], every: int) -> set[int]:
    # the training step: a folder numbered by a save counter counts by the step read inside
    steps = [r.global_step for r in valid]
    return {i for i, step in enumerate(steps) if step is not None and step % every == 0}


def _select_within(valid: Sequence[CheckpointRecord], within: float, now: float) -> set[int]:
    selected = set()
    for i, record in enumerate(valid):
        saved_at = _saved_at(record)
        if saved_at is not None and now - saved_at <= within:
            selected.add(i)
    return selected


def _utc_day(saved_at: float) -> int:
    # POSIX time has no leap seconds, so whole days since the epoch are UTC calendar days. Plain
    # arithmetic, unlike datetime, has no platform range limits.
    return math.floor(saved_at / _DAY)


def _iso_week(saved_at: float) -> int:
    # Distinct ISO weeks (Monday to Sunday, UTC) map to distinct numbers, which is all that
    # bucketing needs.
    return (_utc_day(saved_at) + _EPOCH_WEEKDAY_OFFSET) // 7


def _select_periodic(
    valid: Sequence[CheckpointRecord], n: int, bucket_of: Callable[[float], int]
) -> set[int]:
    """restic's keep-daily/keep-weekly: walking from the newest save to the oldest, keep the
    newest checkpoint of each period, for the `n` most recent periods that have one."""
    dated: list[tuple[float, tuple[int, str, str], int]] = []
    for i, record in enumerate(valid):
        saved_at = _saved_at(record)
        if saved_at is not None:
            dated.append((saved_at, _rank_key(record), i))
    dated.sort(reverse=True)
    selected: set[int] = set()
    buckets: set[int] = set()
    for saved_at, _, i in dated:
        if len(buckets) >= n:
            break
        bucket = bucket_of(saved_at)
        if bucket not in buckets:
            buckets.add(bucket)
            selected.add(i)
    return selected


def _rule_reasons(
    valid: Sequence[CheckpointRecord], policy: RetentionPolicy, now: float
) -> list[list[str]]:
    """For each valid checkpoint, the reasons it is kept, rules first in policy order."""
    reasons: list[list[str]] = [[] for _ in valid]

    def mark(selected: set[int], reason: str) -> None:
        for i in selected:
            reasons[i].append(reason)

    if policy.keep_last is not None:
        mark(_select_last(valid, policy.keep_last), f"last {policy.keep_last}")
    if policy.keep_best is not None:
        mark(_select_best(valid, policy.keep_best), f"best {policy.keep_best}")
    if policy.keep_every is not None:
        mark(_select_every(valid, policy.keep_every), f"every {policy.keep_every}")
    if policy.keep_within is not None:
        mark(
            _select_within(valid, policy.keep_within, now),
            f"within {format_duration_exact(policy.keep_within)}",
        )
    if policy.keep_daily is not None:
        mark(_select_periodic(valid, policy.keep_daily, _utc_day), f"daily {policy.keep_daily}")
    if policy.keep_weekly is not None:
        mark(
            _select_periodic(valid, policy.keep_weekly, _iso_week),
            f"weekly {policy.keep_weekly}",
        )
    if valid:
        # Resuming needs the latest; the newest save may be a run restarted from a lower step,
        # whose higher steps are stale leftovers of an earlier run. Neither may ever go.
        mark({max(range(len(valid)), key=lambda i: _rank_key(valid[i]))}, "latest")
        dated = [
            (saved_at, _rank_key(r), i)
            for i, r in enumerate(valid)
            if (saved_at := _saved_at(r)) is not None
        ]
        if dated:
            mark({max(dated)[2]}, "newest save")
    for i, record in enumerate(valid):
        # what a framework's own state names (the Trainer's best) is never another's to drop
        for reason in record.pinned:
            mark({i}, reason)
    return reasons


def _older_than_limit(record: CheckpointRecord, policy: RetentionPolicy, now: float) -> bool | None:
    """Whether a leftover is old enough to be taken for abandoned; None when its age is unknown.

    `min_age` applies here too: the contract promises that nothing younger is ever deleted.
    """
    saved_at = _saved_at(record)
    if saved_at is None:
        return None
    age = now - saved_at
    if policy.min_age is not None and age < policy.min_age:
        return False
    return age > policy.stale_after


def _leftover_entry(record: CheckpointRecord, policy: RetentionPolicy, now: float) -> PlanEntry:
    """The decision for anything that is not a valid checkpoint."""
    if record.kind == "other":
        return PlanEntry(record, "skip", ("not a checkpoint",))
    if record.kind == "symlink":
        return PlanEntry(record, "skip", ("symlink",))
    if record.kind == "trash":
        # Renamed aside by a deletion that was interrupted: it was already condemned, and its name
        # no longer looks like a checkpoint, so finishing the job is always right.
        return PlanEntry(record, "delete", ("interrupted deletion",))
    if record.kind == "checkpoint":
        return _unreadable_entry(record, policy, now)
    old = _older_than_limit(record, policy, now)
    # ckpt's own hidden staging folder: a save that may still be running, or one that crashed.
    if old is None:
        return PlanEntry(record, "skip", ("undated staging",))
    if old:
        return PlanEntry(record, "delete", ("stale staging",))
    return PlanEntry(record, "skip", ("fresh staging",))


def _unreadable_entry(record: CheckpointRecord, policy: RetentionPolicy, now: float) -> PlanEntry:
    """An incomplete or corrupt checkpoint folder: kept, since it may be another tool's data (a
    framework still writing, or a layout ckpt does not know), unless `delete_incomplete` and
    it is stale. The reasons name the problem and how to reclaim the space."""
    problem = "corrupt" if record.status == "corrupt" else "incomplete"
    limit = format_duration_exact(policy.stale_after)
    if not policy.delete_incomplete:
        how = f"never deleted without --delete-incomplete (then once older than {limit})"
        return PlanEntry(record, "keep", (problem, how))
    old = _older_than_limit(record, policy, now)
    if old:
        return PlanEntry(record, "delete", (f"stale {problem}",))
    if old is None:
        return PlanEntry(record, "keep", (problem, "age unknown, never taken for stale"))
    saved_at = _saved_at(record)
    if saved_at is not None and now - saved_at > policy.stale_after:
        return PlanEntry(record, "keep", (problem, "younger than min-age"))
    return PlanEntry(record, "keep", (problem, f"not older than {limit} yet"))


def plan_retention(
    records: Sequence[CheckpointRecord], policy: RetentionPolicy, now: float
) -> RetentionPlan:
    """Decide, for every record of one run directory, keep / delete / skip, with reasons.

    `now` is POSIX seconds. The result does not depend on the order of `records`. Raises
    ValueError when the policy has no keep_* rule: pruning with no rule would delete everything.
    """
    if not policy.has_rule:
        raise ValueError(
            "no retention rule given: set at least one of keep_last, keep_best, keep_every, "
            "keep_within, keep_daily or keep_weekly"
        )
    if not math.isfinite(now):
        raise ValueError(f"now must be a finite time, got {now!r}")

    valid = sorted((r for r in records if r.is_valid_checkpoint), key=_rank_key)
    entries: list[PlanEntry] = []
    for record, reasons in zip(valid, _rule_reasons(valid, policy, now), strict=True):
        saved_at = _saved_at(record)
        if reasons:
            entries.append(PlanEntry(record, "keep", tuple(reasons)))
        elif (
            policy.min_age is not None and saved_at is not None and now - saved_at < policy.min_age
        ):
            entries.append(PlanEntry(record, "keep", ("younger than min-age",)))
        else:
            entries.append(PlanEntry(record, "delete", ("no rule keeps it",)))
    entries.extend(_leftover_entry(r, policy, now) for r in records if not r.is_valid_checkpoint)
    entries.sort(key=lambda e: _entry_key(e.record))
    return RetentionPlan(tuple(entries))
