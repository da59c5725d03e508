"""The pure retention engine: every rule, every special kind of entry, and properties over random
runs checked against a deliberately naive re-implementation of each rule."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ckpt_cli.core.records import CheckpointRecord, EntryKind, Status
from ckpt_cli.core.retention import (
    DEFAULT_STALE_AFTER,
    PlanEntry,
    RetentionPlan,
    RetentionPolicy,
    plan_retention,
)

MINUTE, HOUR, DAY, WEEK = 60.0, 3600.0, 86400.0, 7 * 86400.0
RUN = Path("/runs/exp7/checkpoints")
#: Friday 2024-03-15 12:00 UTC (ISO week 11 runs Monday 11th to Sunday 17th).
NOW = datetime(2024, 3, 15, 12, tzinfo=timezone.utc).timestamp()


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> float:
    return datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc).timestamp()


def ckpt(
    step: int,
    *,
    age: float | None = HOUR,
    loss: float | None = None,
    best_loss: float | None = None,
    status: Status = "valid",
    name: str | None = None,
    saved_at: float | None = None,
) -> CheckpointRecord:
    """A checkpoint saved `age` seconds before NOW (or at `saved_at`)."""
    name = name or f"checkpoint-{step}"
    if saved_at is None and age is not None:
        saved_at = NOW - age
    return CheckpointRecord(
        path=RUN / name,
        name=name,
        kind="checkpoint",
        status=status,
        step=step,
        loss=loss,
        best_loss=best_loss,
        saved_at=saved_at,
    )


def entry(
    kind: EntryKind, name: str, *, age: float | None = HOUR, step: int | None = None
) -> CheckpointRecord:
    status: Status = "incomplete" if kind in ("staging", "trash") else "valid"
    return CheckpointRecord(
        path=RUN / name,
        name=name,
        kind=kind,
        status=status,
        step=step,
        saved_at=None if age is None else NOW - age,
    )


def decisions(plan: RetentionPlan) -> dict[str, tuple[str, tuple[str, ...]]]:
    return {e.record.name: (e.decision, e.reasons) for e in plan.entries}


def kept_steps(plan: RetentionPlan) -> list[int | None]:
    return [e.record.step for e in plan.kept if e.record.is_valid_checkpoint]


# ---------------------------------------------------------------------------------------------
# The policy


def test_policy_without_rule_is_refused() -> None:
    assert not RetentionPolicy().has_rule
    with pytest.raises(ValueError, match="no retention rule given"):
        plan_retention([ckpt(1)], RetentionPolicy(), NOW)


def test_min_age_alone_is_not_a_rule() -> None:
    policy = RetentionPolicy(min_age=2 * HOUR)
    assert not policy.has_rule
    with pytest.raises(ValueError, match="no retention rule given"):
        plan_retention([ckpt(1)], policy, NOW)


@pytest.mark.parametrize(
    "field", ["keep_last", "keep_best", "keep_every", "keep_within", "keep_daily", "keep_weekly"]
)
def test_each_keep_field_is_a_rule(field: str) -> None:
    value: Any = 1
    assert RetentionPolicy(**{field: value}).has_rule


def test_zero_is_a_given_rule_that_keeps_only_what_is_always_kept() -> None:
    records = [ckpt(s, age=(10 - s) * HOUR) for s in range(1, 6)]
    plan = plan_retention(records, RetentionPolicy(keep_last=0), NOW)
    assert kept_steps(plan) == [5]
    assert [e.record.step for e in plan.to_delete] == [1, 2, 3, 4]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"keep_last": -1}, "keep_last must be 0 or more, got -1"),
        ({"keep_best": -2}, "keep_best must be 0 or more, got -2"),
        ({"keep_daily": -1}, "keep_daily must be 0 or more, got -1"),
        ({"keep_weekly": -1}, "keep_weekly must be 0 or more, got -1"),
        ({"keep_every": 0}, "keep_every must be 1 or more, got 0"),
        ({"keep_every": -5}, "keep_every must be 1 or more, got -5"),
        ({"keep_within": -1.0}, "keep_within must not be negative, got -1.0"),
        ({"min_age": -60.0}, "min_age must not be negative, got -60.0"),
        ({"keep_last": 1, "stale_after": -1.0}, "stale_after must not be negative, got -1.0"),
        ({"keep_within": float("nan")}, "keep_within must be a finite number of seconds, got nan"),
        ({"min_age": float("inf")}, "min_age must be a finite number of seconds, got inf"),
        (
            {"keep_last": 1, "stale_after": None},
            "stale_after must be a finite number of seconds, got None",
        ),
        ({"keep_last": 1.5}, "keep_last must be a whole number, got 1.5"),
        ({"keep_last": True}, "keep_last must be a whole number, got True"),
    ],
)
def test_policy_validation(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        RetentionPolicy(**kwargs)
    assert str(excinfo.value) == message


def test_now_must_be_finite() -> None:
    with pytest.raises(ValueError, match="now must be a finite time"):
        plan_retention([ckpt(1)], RetentionPolicy(keep_last=1), float("nan"))


def test_empty_run_gives_an_empty_plan() -> None:
    plan = plan_retention([], RetentionPolicy(keep_last=3), NOW)
    assert plan.entries == ()
    assert plan.counts == {"keep": 0, "delete": 0, "stale": 0, "skip": 0}


# ---------------------------------------------------------------------------------------------
# Each rule


def test_keep_last_orders_steps_numerically() -> None:
    # Saved in step order, so the newest save is the latest and adds nothing.
    records = [ckpt(s, age=DAY - s / 100) for s in (500, 9000, 10000, 20000, 100)]
    plan = plan_retention(records, RetentionPolicy(keep_last=3), NOW)
    assert decisions(plan) == {
        "checkpoint-100": ("delete", ("no rule keeps it",)),
        "checkpoint-500": ("delete", ("no rule keeps it",)),
        "checkpoint-9000": ("keep", ("last 3",)),
        "checkpoint-10000": ("keep", ("last 3",)),
        "checkpoint-20000": ("keep", ("last 3", "latest", "newest save")),
    }


def test_keep_best_by_own_loss_ties_go_to_the_lower_step() -> None:
    records = [
        ckpt(100, loss=0.9, best_loss=0.9, age=5 * HOUR),
        ckpt(200, loss=0.3, best_loss=0.3, age=4 * HOUR),
        ckpt(300, loss=0.5, best_loss=0.3, age=3 * HOUR),
        ckpt(400, loss=0.3, best_loss=0.3, age=2 * HOUR),
        ckpt(500, loss=0.7, best_loss=0.3, age=1 * HOUR),
    ]
    plan = plan_retention(records, RetentionPolicy(keep_best=2), NOW)
    assert decisions(plan)["checkpoint-200"] == ("keep", ("best 2",))
    assert decisions(plan)["checkpoint-400"] == ("keep", ("best 2",))
    assert decisions(plan)["checkpoint-300"] == ("delete", ("no rule keeps it",))
    plan = plan_retention(records, RetentionPolicy(keep_best=1), NOW)
    assert kept_steps(plan) == [200, 500]


def test_keep_best_without_own_loss_uses_the_first_checkpoint_to_reach_each_best_loss() -> None:
    # Seed-crate checkpoints carry only the running minimum, which later ones carry forward.
    records = [
        ckpt(100, best_loss=0.9, age=6 * HOUR),
        ckpt(200, best_loss=0.5, age=5 * HOUR),
        ckpt(300, best_loss=0.5, age=4 * HOUR),
        ckpt(400, best_loss=0.4, age=3 * HOUR),
        ckpt(500, best_loss=0.4, age=2 * HOUR),
        ckpt(600, best_loss=0.4, age=1 * HOUR),
    ]
    plan = plan_retention(records, RetentionPolicy(keep_best=2), NOW)
    assert [e.record.step for e in plan.kept if "best 2" in e.reasons] == [200, 400]
    assert kept_steps(plan) == [200, 400, 600]


def test_keep_best_a_carrier_never_competes_with_the_checkpoint_it_carries_from() -> None:
    # 200 has no own loss (say, saved by the seed crate) and merely carried 0.3 forward from 100.
    records = [
        ckpt(100, loss=0.3, best_loss=0.3, age=3 * HOUR),
        ckpt(200, best_loss=0.3, age=2 * HOUR),
        ckpt(300, loss=0.8, best_loss=0.3, age=1 * HOUR),
    ]
    plan = plan_retention(records, RetentionPolicy(keep_best=2), NOW)
    assert [e.record.step for e in plan.kept if "best 2" in e.reasons] == [100, 300]


def test_keep_best_ignores_checkpoints_with_no_loss_at_all() -> None:
    records = [ckpt(100, age=3 * HOUR), ckpt(200, loss=0.5, age=2 * HOUR), ckpt(300)]
    plan = plan_retention(records, RetentionPolicy(keep_best=5), NOW)
    assert [e.record.step for e in plan.kept if "best 5" in e.reasons] == [200]
    assert decisions(plan)["checkpoint-100"] == ("delete", ("no rule keeps it",))


def test_keep_every() -> None:
    records = [ckpt(s, age=DAY - s / 1000) for s in (0, 5000, 10000, 15000, 20000, 25000)]
    plan = plan_retention(records, RetentionPolicy(keep_every=10000), NOW)
    assert decisions(plan)["checkpoint-0"] == ("keep", ("every 10000",))
    assert decisions(plan)["checkpoint-10000"] == ("keep", ("every 10000",))
    assert decisions(plan)["checkpoint-20000"] == ("keep", ("every 10000",))
    assert decisions(plan)["checkpoint-25000"] == ("keep", ("latest", "newest save"))
    assert [e.record.step for e in plan.to_delete] == [5000, 15000]


def test_keep_within_is_inclusive_and_spells_the_duration() -> None:
    records = [
        ckpt(1, age=2 * HOUR + 1),
        ckpt(2, age=2 * HOUR),
        ckpt(3, age=HOUR),
        ckpt(4, age=None),
        ckpt(5, age=-MINUTE),  # a clock that went backwards: saved "in the future"
    ]
    plan = plan_retention(records, RetentionPolicy(keep_within=2 * HOUR), NOW)
    assert decisions(plan) == {
        "checkpoint-1": ("delete", ("no rule keeps it",)),
        "checkpoint-2": ("keep", ("within 2h",)),
        "checkpoint-3": ("keep", ("within 2h",)),
        "checkpoint-4": ("delete", ("no rule keeps it",)),
        "checkpoint-5": ("keep", ("within 2h", "latest", "newest save")),
    }
    plan = plan_retention(records, RetentionPolicy(keep_within=DAY + 12 * HOUR), NOW)
    assert decisions(plan)["checkpoint-1"] == ("keep", ("within 1d12h",))


def test_keep_daily_keeps_the_newest_of_each_utc_day_for_the_most_recent_days() -> None:
    records = [
        ckpt(10, saved_at=utc(2024, 3, 10, 9)),
        ckpt(20, saved_at=utc(2024, 3, 12, 8)),
        ckpt(30, saved_at=utc(2024, 3, 12, 23, 59, 59)),  # newest of the 12th
        ckpt(40, saved_at=utc(2024, 3, 13, 0, 0, 0)),  # the 13th, one second later
        ckpt(50, saved_at=utc(2024, 3, 15, 1)),
        ckpt(60, saved_at=utc(2024, 3, 15, 11)),
    ]
    plan = plan_retention(records, RetentionPolicy(keep_daily=3), NOW)
    assert [e.record.step for e in plan.kept if "daily 3" in e.reasons] == [30, 40, 60]
    # Days without checkpoints (the 11th, the 14th) are skipped, not counted.
    plan = plan_retention(records, RetentionPolicy(keep_daily=4), NOW)
    assert [e.record.step for e in plan.kept if "daily 4" in e.reasons] == [10, 30, 40, 60]


def test_keep_weekly_uses_iso_weeks_starting_monday_utc() -> None:
    records = [
        ckpt(10, saved_at=utc(2024, 2, 28, 12)),  # week 9
        ckpt(20, saved_at=utc(2024, 3, 4, 0, 0, 1)),  # Monday, week 10
        ckpt(30, saved_at=utc(2024, 3, 10, 23, 59, 59)),  # Sunday, still week 10
        ckpt(40, saved_at=utc(2024, 3, 11, 0, 0, 0)),  # Monday, week 11
        ckpt(50, saved_at=utc(2024, 3, 14, 12)),  # week 11
    ]
    plan = plan_retention(records, RetentionPolicy(keep_weekly=2), NOW)
    assert [e.record.step for e in plan.kept if "weekly 2" in e.reasons] == [30, 50]
    assert [e.record.step for e in plan.to_delete] == [10, 20, 40]


def test_keep_weekly_across_a_year_boundary() -> None:
    # 2020-12-31 (Thursday) and 2021-01-03 (Sunday) are both in ISO week 2020-W53.
    records = [
        ckpt(1, saved_at=utc(2020, 12, 27, 12)),  # Sunday of 2020-W52
        ckpt(2, saved_at=utc(2020, 12, 31, 12)),
        ckpt(3, saved_at=utc(2021, 1, 3, 12)),
        ckpt(4, saved_at=utc(2021, 1, 4, 12)),  # 2021-W01
    ]
    plan = plan_retention(records, RetentionPolicy(keep_weekly=3), NOW)
    assert [e.record.step for e in plan.kept if "weekly 3" in e.reasons] == [1, 3, 4]


def test_undated_checkpoints_never_satisfy_time_rules() -> None:
    records = [ckpt(1, age=None), ckpt(2, age=None), ckpt(3, age=HOUR)]
    policy = RetentionPolicy(keep_within=100 * WEEK, keep_daily=10, keep_weekly=10)
    plan = plan_retention(records, policy, NOW)
    assert decisions(plan) == {
        "checkpoint-1": ("delete", ("no rule keeps it",)),
        "checkpoint-2": ("delete", ("no rule keeps it",)),
        "checkpoint-3": (
            "keep",
            ("within 100w", "daily 10", "weekly 10", "latest", "newest save"),
        ),
    }


def test_reasons_list_every_rule_in_policy_order() -> None:
    records = [ckpt(10000, loss=0.1, age=MINUTE), ckpt(20000, loss=0.5, age=2 * DAY)]
    policy = RetentionPolicy(
        keep_last=2, keep_best=1, keep_every=10000, keep_within=HOUR, keep_daily=1, keep_weekly=1
    )
    plan = plan_retention(records, policy, NOW)
    assert decisions(plan)["checkpoint-10000"] == (
        "keep",
        ("last 2", "best 1", "every 10000", "within 1h", "daily 1", "weekly 1", "newest save"),
    )
    assert decisions(plan)["checkpoint-20000"] == ("keep", ("last 2", "every 10000", "latest"))


# ---------------------------------------------------------------------------------------------
# Always kept, and the min-age guard


def test_latest_and_newest_save_are_always_kept() -> None:
    # A run restarted from step 300: 400 and 500 are leftovers of the earlier attempt, and the
    # restarted run's newest save is a lower step.
    records = [
        ckpt(300, age=3 * DAY),
        ckpt(400, age=2 * DAY),
        ckpt(500, age=DAY),
        ckpt(310, age=MINUTE),
    ]
    plan = plan_retention(records, RetentionPolicy(keep_every=1000), NOW)
    assert decisions(plan) == {
        "checkpoint-300": ("delete", ("no rule keeps it",)),
        "checkpoint-310": ("keep", ("newest save",)),
        "checkpoint-400": ("delete", ("no rule keeps it",)),
        "checkpoint-500": ("keep", ("latest",)),
    }


def test_only_valid_checkpoints_can_be_latest() -> None:
    records = [
        ckpt(100, age=2 * DAY),
        ckpt(200, age=2 * DAY + 1),
        ckpt(300, status="corrupt"),
        ckpt(400, status="incomplete"),
    ]
    plan = plan_retention(records, RetentionPolicy(keep_last=0), NOW)
    assert decisions(plan)["checkpoint-200"] == ("keep", ("latest",))
    assert decisions(plan)["checkpoint-100"] == ("keep", ("newest save",))


def test_min_age_protects_what_no_rule_keeps() -> None:
    records = [
        ckpt(1, age=3 * HOUR),
        ckpt(2, age=2 * HOUR),  # exactly min-age old: old enough
        ckpt(3, age=2 * HOUR - 1),
        ckpt(4, age=MINUTE),
        ckpt(5, age=None),
    ]
    plan = plan_retention(records, RetentionPolicy(keep_last=1, min_age=2 * HOUR), NOW)
    assert decisions(plan) == {
        "checkpoint-1": ("delete", ("no rule keeps it",)),
        "checkpoint-2": ("delete", ("no rule keeps it",)),
        "checkpoint-3": ("keep", ("younger than min-age",)),
        "checkpoint-4": ("keep", ("newest save",)),
        "checkpoint-5": ("keep", ("last 1", "latest")),
    }


# ---------------------------------------------------------------------------------------------
# Entries that are not valid checkpoints


def test_other_names_and_symlinks_are_never_touched() -> None:
    records = [
        ckpt(1),
        entry("other", "notes.txt", age=100 * WEEK),
        entry("other", "checkpoint-final", age=None),
        entry("symlink", "checkpoint-999", step=999, age=100 * WEEK),
        entry("symlink", "best", age=None),
    ]
    plan = plan_retention(records, RetentionPolicy(keep_last=1), NOW)
    assert decisions(plan) == {
        "checkpoint-1": ("keep", ("last 1", "latest", "newest save")),
        "notes.txt": ("skip", ("not a checkpoint",)),
        "checkpoint-final": ("skip", ("not a checkpoint",)),
        "checkpoint-999": ("skip", ("symlink",)),
        "best": ("skip", ("symlink",)),
    }


def test_staging_folders_fresh_stale_and_undated() -> None:
    records = [
        ckpt(1),
        entry("staging", ".checkpoint-2.staging-a", step=2, age=DEFAULT_STALE_AFTER),
        entry("staging", ".checkpoint-3.staging-b", step=3, age=DEFAULT_STALE_AFTER + 1),
        entry("staging", ".checkpoint-4.staging-c", step=4, age=None),
    ]
    plan = plan_retention(records, RetentionPolicy(keep_last=1), NOW)
    assert decisions(plan) == {
        "checkpoint-1": ("keep", ("last 1", "latest", "newest save")),
        ".checkpoint-2.staging-a": ("skip", ("fresh staging",)),
        ".checkpoint-3.staging-b": ("delete", ("stale staging",)),
        ".checkpoint-4.staging-c": ("skip", ("undated staging",)),
    }
    assert [e.record.name for e in plan.stale] == [".checkpoint-3.staging-b"]
    assert plan.to_delete == ()


KEPT_UNREADABLE = "never deleted without --delete-incomplete (then once older than 1d)"


def test_incomplete_checkpoints_are_kept_whatever_their_age() -> None:
    # ckpt never deletes what it cannot read: a checkpoint folder without a completeness
    # signal may be a framework's (a Trainer run, a layout ckpt does not know).
    records = [
        ckpt(1),
        ckpt(2, status="incomplete", age=HOUR),
        ckpt(3, status="incomplete", age=30 * DAY),
        ckpt(4, status="incomplete", age=None),
    ]
    plan = plan_retention(records, RetentionPolicy(keep_last=0), NOW)
    assert decisions(plan) == {
        "checkpoint-1": ("keep", ("latest", "newest save")),
        "checkpoint-2": ("keep", ("incomplete", KEPT_UNREADABLE)),
        "checkpoint-3": ("keep", ("incomplete", KEPT_UNREADABLE)),
        "checkpoint-4": ("keep", ("incomplete", KEPT_UNREADABLE)),
    }
    assert plan.deletions == ()


def test_delete_incomplete_removes_only_stale_ones() -> None:
    records = [
        ckpt(1),
        ckpt(2, status="incomplete", age=HOUR),
        ckpt(3, status="incomplete", age=2 * DAY),
        ckpt(4, status="incomplete", age=None),
        ckpt(5, status="corrupt", age=2 * DAY),
    ]
    policy = RetentionPolicy(keep_last=1, delete_incomplete=True)
    plan = plan_retention(records, policy, NOW)
    assert decisions(plan) == {
        "checkpoint-1": ("keep", ("last 1", "latest", "newest save")),
        "checkpoint-2": ("keep", ("incomplete", "not older than 1d yet")),
        "checkpoint-3": ("delete", ("stale incomplete",)),
        "checkpoint-4": ("keep", ("incomplete", "age unknown, never taken for stale")),
        "checkpoint-5": ("delete", ("stale corrupt",)),
    }
    assert [e.record.name for e in plan.stale] == ["checkpoint-3", "checkpoint-5"]
    assert plan.to_delete == ()


def test_delete_incomplete_respects_min_age_and_stale_after() -> None:
    records = [ckpt(1), ckpt(2, status="incomplete", age=2 * DAY)]
    guarded = RetentionPolicy(keep_last=1, delete_incomplete=True, min_age=3 * DAY)
    assert decisions(plan_retention(records, guarded, NOW))["checkpoint-2"] == (
        "keep",
        ("incomplete", "younger than min-age"),
    )
    longer = RetentionPolicy(keep_last=1, delete_incomplete=True, stale_after=3 * DAY)
    assert decisions(plan_retention(records, longer, NOW))["checkpoint-2"] == (
        "keep",
        ("incomplete", "not older than 3d yet"),
    )


def test_delete_incomplete_must_be_a_bool() -> None:
    with pytest.raises(ValueError, match="delete_incomplete must be True or False"):
        RetentionPolicy(keep_last=1, delete_incomplete=1)  # type: ignore[arg-type]


def test_stale_after_is_part_of_the_policy() -> None:
    records = [ckpt(1), entry("staging", ".checkpoint-2.staging-a", step=2, age=2 * HOUR)]
    plan = plan_retention(records, RetentionPolicy(keep_last=1, stale_after=HOUR), NOW)
    assert decisions(plan)[".checkpoint-2.staging-a"] == ("delete", ("stale staging",))


def test_min_age_also_protects_leftovers() -> None:
    # The contract: nothing younger than --min-age is ever deleted, leftovers included.
    records = [
        ckpt(1),
        entry("staging", ".checkpoint-2.staging-a", step=2, age=2 * DAY),
        ckpt(3, status="corrupt", age=2 * DAY),
    ]
    plan = plan_retention(records, RetentionPolicy(keep_last=1, min_age=3 * DAY), NOW)
    assert decisions(plan)[".checkpoint-2.staging-a"] == ("skip", ("fresh staging",))
    assert decisions(plan)["checkpoint-3"] == ("keep", ("corrupt", KEPT_UNREADABLE))


def test_interrupted_deletions_are_always_finished() -> None:
    records = [
        ckpt(1),
        entry("trash", ".checkpoint-7.deleting-x", step=7, age=MINUTE),
        entry("trash", ".checkpoint-8.deleting-y", step=8, age=None),
    ]
    plan = plan_retention(records, RetentionPolicy(keep_last=1, min_age=WEEK), NOW)
    assert decisions(plan)[".checkpoint-7.deleting-x"] == ("delete", ("interrupted deletion",))
    assert decisions(plan)[".checkpoint-8.deleting-y"] == ("delete", ("interrupted deletion",))
    assert len(plan.stale) == 2


def test_corrupt_checkpoints_are_kept_whatever_their_age() -> None:
    records = [
        ckpt(1),
        ckpt(2, status="corrupt", age=HOUR),
        ckpt(3, status="corrupt", age=2 * DAY),
        ckpt(4, status="corrupt", age=None),
    ]
    plan = plan_retention(records, RetentionPolicy(keep_last=1), NOW)
    assert decisions(plan) == {
        "checkpoint-1": ("keep", ("last 1", "latest", "newest save")),
        "checkpoint-2": ("keep", ("corrupt", KEPT_UNREADABLE)),
        "checkpoint-3": ("keep", ("corrupt", KEPT_UNREADABLE)),
        "checkpoint-4": ("keep", ("corrupt", KEPT_UNREADABLE)),
    }
    assert plan.stale == ()


def test_leftovers_never_count_toward_n() -> None:
    records = [
        ckpt(1, age=3 * HOUR),
        ckpt(2, age=2 * HOUR),
        ckpt(3, status="corrupt", age=HOUR),
        ckpt(4, status="incomplete", age=HOUR),
        entry("staging", ".checkpoint-5.staging-a", step=5, age=HOUR),
    ]
    plan = plan_retention(records, RetentionPolicy(keep_last=2), NOW)
    assert decisions(plan)["checkpoint-1"] == ("keep", ("last 2",))
    assert decisions(plan)["checkpoint-2"] == ("keep", ("last 2", "latest", "newest save"))


# ---------------------------------------------------------------------------------------------
# The plan


def test_plan_views_counts_and_order() -> None:
    records = [
        entry("other", "zz-notes"),
        entry("symlink", "latest"),
        entry("trash", ".checkpoint-5.deleting-q", step=5),
        ckpt(30, age=HOUR),
        ckpt(20, age=2 * HOUR),
        ckpt(10, age=3 * HOUR),
        entry("staging", ".checkpoint-40.staging-a", step=40, age=3 * DAY),
        ckpt(20, name="checkpoint-0020", age=2 * HOUR),
    ]
    plan = plan_retention(records, RetentionPolicy(keep_last=1), NOW)
    assert [e.record.name for e in plan.entries] == [
        ".checkpoint-5.deleting-q",
        "checkpoint-10",
        "checkpoint-0020",
        "checkpoint-20",
        "checkpoint-30",
        ".checkpoint-40.staging-a",
        "latest",
        "zz-notes",
    ]
    assert [e.record.name for e in plan.to_delete] == [
        "checkpoint-10",
        "checkpoint-0020",
        "checkpoint-20",
    ]
    assert [e.record.name for e in plan.stale] == [
        ".checkpoint-5.deleting-q",
        ".checkpoint-40.staging-a",
    ]
    assert [e.record.name for e in plan.deletions] == [
        ".checkpoint-5.deleting-q",
        "checkpoint-10",
        "checkpoint-0020",
        "checkpoint-20",
        ".checkpoint-40.staging-a",
    ]
    assert [e.record.name for e in plan.kept] == ["checkpoint-30"]
    assert [e.record.name for e in plan.skipped] == ["latest", "zz-notes"]
    assert plan.counts == {"keep": 1, "delete": 3, "stale": 2, "skip": 2}


def test_duplicate_steps_are_separate_checkpoints() -> None:
    # `checkpoint-7` and `checkpoint-007` both hold step 7; the plan must say which it keeps.
    records = [ckpt(7, name="checkpoint-007"), ckpt(7), ckpt(6)]
    plan = plan_retention(records, RetentionPolicy(keep_last=1), NOW)
    assert decisions(plan) == {
        "checkpoint-6": ("delete", ("no rule keeps it",)),
        "checkpoint-007": ("keep", ("last 1",)),
        "checkpoint-7": ("keep", ("last 1", "latest", "newest save")),
    }


# ---------------------------------------------------------------------------------------------
# Properties over random runs, against a naive re-implementation of each rule

_NAMES = {"staging": ".checkpoint-{}.staging-t{}", "trash": ".checkpoint-{}.deleting-t{}"}

# Each record takes four draws, each from a list whose first item is the simplest: hypothesis
# spends most of its time per draw, and shrinking a failure re-runs the test thousands of times.
_KIND_STATUS: st.SearchStrategy[tuple[EntryKind, Status]] = st.sampled_from(
    [("checkpoint", "valid")] * 12
    + [("checkpoint", "incomplete"), ("checkpoint", "corrupt")] * 2
    + [("staging", "incomplete"), ("trash", "incomplete"), ("symlink", "valid"), ("other", "valid")]
)
# Steps 0-40, each with four names (zero padding makes duplicate steps).
_STEP_TAG = st.integers(min_value=0, max_value=4 * 41 - 1).map(lambda i: divmod(i, 4))
# Few distinct losses, so that ties and carried-forward best losses are common.
_LOSS_VALUES = [None, 0.1, 0.2, 0.3, 0.5, 0.9]
_LOSSES = st.sampled_from([(loss, best) for loss in _LOSS_VALUES for best in _LOSS_VALUES])
# Times on a six-hour grid (NOW is noon UTC, so every fourth point is a midnight), nudged by a
# second or an hour so that saves collide and sit on either side of every day, week and age
# boundary the policies below use; as many within the last four days (where within, min-age and
# the stale limit decide) as over five weeks (where daily and weekly do); one in ten undated
# (a stat that failed).
_NEAR = [NOW - q * 6 * HOUR + s for q in range(-1, 17) for s in (0, -1, 1, HOUR, -HOUR)]
_FAR = [NOW - q * 6 * HOUR + s for q in range(17, 145) for s in (0, -1, 1, HOUR, -HOUR)]
_TIMES: list[float | None] = [*_NEAR, *_FAR[:: max(1, len(_FAR) // len(_NEAR))]]
_SAVED_AT = st.sampled_from(_TIMES + [None] * (len(_TIMES) // 9))


@st.composite
def records_strategy(draw: st.DrawFn) -> CheckpointRecord:
    kind, status = draw(_KIND_STATUS)
    step, tag = draw(_STEP_TAG)
    if kind == "checkpoint":
        name = f"checkpoint-{step:0{1 + tag}d}"
    elif kind in _NAMES:
        name = _NAMES[kind].format(step, tag)
    else:
        name = f"{kind}-{step}-{tag}"
    loss, best_loss = draw(_LOSSES)
    return CheckpointRecord(
        path=RUN / name,
        name=name,
        kind=kind,
        status=status,
        step=None if kind == "other" else step,
        loss=loss,
        best_loss=best_loss,
        saved_at=draw(_SAVED_AT),
    )


def _one_per_name(parts: tuple[list[CheckpointRecord], ...]) -> list[CheckpointRecord]:
    return list({r.name: r for part in reversed(parts) for r in reversed(part)}.values())


# A run is the concatenation of three short lists, one record per name. One st.lists of up to 24
# would mostly be short (a run needs a dozen checkpoints or so before the rules disagree); drawing
# the size first makes hypothesis take minutes to shrink a failure. Three lists shrink apart.
_PART = st.lists(records_strategy(), max_size=8)
runs = st.tuples(_PART, _PART, _PART).map(_one_per_name)

_RULES: dict[str, st.SearchStrategy[Any]] = {
    "keep_last": st.integers(min_value=0, max_value=6),
    "keep_best": st.integers(min_value=0, max_value=6),
    "keep_every": st.integers(min_value=1, max_value=12),
    "keep_within": st.sampled_from([0.0, HOUR, DAY, 3 * DAY, 2 * WEEK]),
    "keep_daily": st.integers(min_value=0, max_value=6),
    "keep_weekly": st.integers(min_value=0, max_value=4),
}


@st.composite
def policies(draw: st.DrawFn) -> RetentionPolicy:
    # One to three rules: with all six, nearly everything is kept and nothing is learnt.
    names = draw(st.lists(st.sampled_from(sorted(_RULES)), min_size=1, max_size=3, unique=True))
    return RetentionPolicy(
        **{name: draw(_RULES[name]) for name in names},
        min_age=draw(st.sampled_from([None, 3 * DAY, DAY, HOUR, 0.0])),
        stale_after=draw(st.sampled_from([0.0, HOUR, DEFAULT_STALE_AFTER, 3 * DAY])),
        delete_incomplete=draw(st.booleans()),
    )


PROPERTY = settings(max_examples=200, deadline=None)


def _key(r: CheckpointRecord) -> tuple[int, str]:
    return (-1 if r.step is None else r.step, r.name)


def _periodic(
    valid: Sequence[CheckpointRecord], n: int, period: Callable[[datetime], Hashable]
) -> set[str]:
    dated = [r for r in valid if r.saved_at is not None]
    dated.sort(key=lambda r: (r.saved_at, _key(r)), reverse=True)
    seen: list[Hashable] = []
    kept = set()
    for r in dated:
        assert r.saved_at is not None
        p = period(datetime.fromtimestamp(r.saved_at, tz=timezone.utc))
        if p not in seen and len(seen) < n:
            seen.append(p)
            kept.add(r.name)
    return kept


def expected_reasons(
    records: Sequence[CheckpointRecord], policy: RetentionPolicy, now: float
) -> dict[str, set[str]]:
    """Each valid checkpoint's reasons, every rule computed on its own, as plainly as possible."""
    valid = [r for r in records if r.kind == "checkpoint" and r.status == "valid"]
    rules: dict[str, set[str]] = {}
    if policy.keep_last is not None:  # N steps: two spellings of one step are one
        steps = sorted({r.step for r in valid}, key=lambda s: -1 if s is None else s)
        top = set(steps[::-1][: policy.keep_last])
        rules[f"last {policy.keep_last}"] = {r.name for r in valid if r.step in top}
    if policy.keep_best is not None:
        scored = []
        for r in valid:
            if r.loss is not None:
                scored.append((r.loss, _key(r), r.name))
            elif r.best_loss is not None and not any(
                o.best_loss == r.best_loss and _key(o) < _key(r) for o in valid
            ):
                scored.append((r.best_loss, _key(r), r.name))
        rules[f"best {policy.keep_best}"] = {n for *_, n in sorted(scored)[: policy.keep_best]}
    if policy.keep_every is not None:
        every = policy.keep_every
        rules[f"every {every}"] = {r.name for r in valid if (r.step or 0) % every == 0}
    if policy.keep_within is not None:
        within = policy.keep_within
        label = {0.0: "0s", HOUR: "1h", DAY: "1d", 3 * DAY: "3d", 2 * WEEK: "2w"}[within]
        rules[f"within {label}"] = {
            r.name for r in valid if r.saved_at is not None and now - r.saved_at <= within
        }
    if policy.keep_daily is not None:
        rules[f"daily {policy.keep_daily}"] = _periodic(valid, policy.keep_daily, datetime.date)
    if policy.keep_weekly is not None:
        rules[f"weekly {policy.keep_weekly}"] = _periodic(
            valid, policy.keep_weekly, lambda d: d.isocalendar()[:2]
        )
    if valid:
        rules["latest"] = {max(valid, key=_key).name}
        dated = [r for r in valid if r.saved_at is not None]
        if dated:
            rules["newest save"] = {max(dated, key=lambda r: (r.saved_at, _key(r))).name}
    reasons = {r.name: {rule for rule, names in rules.items() if r.name in names} for r in valid}
    for r in valid:
        young = (
            policy.min_age is not None
            and r.saved_at is not None
            and now - r.saved_at < policy.min_age
        )
        if not reasons[r.name] and young:
            reasons[r.name] = {"younger than min-age"}
    return reasons


def check_kept_checkpoints_are_exactly_the_union_of_the_rules(
    records: list[CheckpointRecord], policy: RetentionPolicy, plan: RetentionPlan
) -> None:
    expected = expected_reasons(records, policy, NOW)
    actual = {e.record.name: e for e in plan.entries if e.record.is_valid_checkpoint}
    assert actual.keys() == expected.keys()
    for name, reasons in expected.items():
        got = actual[name]
        if reasons:
            assert got.decision == "keep", name
            assert set(got.reasons) == reasons, name
            assert len(got.reasons) == len(reasons), name
        else:
            assert (got.decision, got.reasons) == ("delete", ("no rule keeps it",)), name


def check_latest_and_newest_save_are_never_deleted(
    records: list[CheckpointRecord], policy: RetentionPolicy, plan: RetentionPlan
) -> None:
    valid = [e for e in plan.entries if e.record.is_valid_checkpoint]
    if not valid:
        return
    latest = max(valid, key=lambda e: _key(e.record))
    assert latest.decision == "keep"
    dated = [e for e in valid if e.record.saved_at is not None]
    if dated:
        newest_time = max(e.record.saved_at or 0 for e in dated)
        # Whichever of several equally new saves the engine picks, one of them is kept.
        assert any(e.decision == "keep" for e in dated if e.record.saved_at == newest_time)


def _is_fresh(record: CheckpointRecord, policy: RetentionPolicy) -> bool:
    if record.saved_at is None:
        return True
    age = NOW - record.saved_at
    return age <= policy.stale_after or (policy.min_age is not None and age < policy.min_age)


def check_what_must_not_be_touched_is_not(
    records: list[CheckpointRecord], policy: RetentionPolicy, plan: RetentionPlan
) -> None:
    for e in plan.entries:
        r = e.record
        if r.kind in ("other", "symlink"):
            assert e.decision == "skip"
        if r.kind == "staging":
            assert e.decision == ("skip" if _is_fresh(r, policy) else "delete")
        if r.kind == "trash":
            assert (e.decision, e.reasons) == ("delete", ("interrupted deletion",))
        if r.kind == "checkpoint" and r.status in ("incomplete", "corrupt"):
            # never deleted without delete_incomplete, whatever its age; then only once stale
            stale = policy.delete_incomplete and not _is_fresh(r, policy)
            assert e.decision == ("delete" if stale else "keep")
            assert e.reasons[0] == (f"stale {r.status}" if stale else r.status)
        if e.decision == "delete":
            assert r.kind in ("checkpoint", "staging", "trash")
        if e.decision == "skip":
            assert not r.is_valid_checkpoint
        if r.is_valid_checkpoint and r.saved_at is not None and policy.min_age is not None:
            if NOW - r.saved_at < policy.min_age:
                assert e.decision == "keep"


def check_plan_covers_every_record_once_in_step_order(
    records: list[CheckpointRecord], policy: RetentionPolicy, plan: RetentionPlan
) -> None:
    assert sorted(e.record.name for e in plan.entries) == sorted(r.name for r in records)
    order = [(e.record.step is None, e.record.step or 0, e.record.name) for e in plan.entries]
    assert order == sorted(order)
    assert all(e.reasons for e in plan.entries)
    counts = plan.counts
    assert sum(counts.values()) == len(records)
    assert set(plan.to_delete) | set(plan.stale) == set(plan.deletions)
    assert all(e.record.is_valid_checkpoint for e in plan.to_delete)
    assert not any(e.record.is_valid_checkpoint for e in plan.stale)


def check_plan_does_not_depend_on_input_order(
    shuffled: list[CheckpointRecord], policy: RetentionPolicy, plan: RetentionPlan
) -> None:
    assert plan_retention(shuffled, policy, NOW) == plan


# One generated run feeds every check: generating runs is the slow part.
@PROPERTY
@given(runs, policies(), st.data())
def test_plan_properties(
    records: list[CheckpointRecord], policy: RetentionPolicy, data: st.DataObject
) -> None:
    plan = plan_retention(records, policy, NOW)
    check_kept_checkpoints_are_exactly_the_union_of_the_rules(records, policy, plan)
    check_latest_and_newest_save_are_never_deleted(records, policy, plan)
    check_what_must_not_be_touched_is_not(records, policy, plan)
    check_plan_covers_every_record_once_in_step_order(records, policy, plan)
    check_plan_does_not_depend_on_input_order(data.draw(st.permutations(records)), policy, plan)


@PROPERTY
@given(
    st.lists(records_strategy(), max_size=6, unique_by=lambda r: r.name),
    st.builds(
        RetentionPolicy,
        min_age=st.sampled_from([None, 0.0, HOUR]),
        stale_after=st.sampled_from([0.0, DEFAULT_STALE_AFTER]),
    ),
)
def test_a_policy_without_rule_always_refuses(
    records: list[CheckpointRecord], policy: RetentionPolicy
) -> None:
    with pytest.raises(ValueError, match="no retention rule given"):
        plan_retention(records, policy, NOW)


def test_plan_entries_are_plain_frozen_data() -> None:
    plan = plan_retention([ckpt(1)], RetentionPolicy(keep_last=1), NOW)
    entry_ = plan.entries[0]
    assert isinstance(entry_, PlanEntry)
    with pytest.raises(AttributeError):
        entry_.decision = "delete"  # type: ignore[misc]
    assert replace(entry_, decision="delete") != entry_
