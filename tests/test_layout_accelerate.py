"""Accelerate's layout, on folders the real `Accelerator.save_state` wrote
(tests/fixtures/accelerate, by `make fixtures`: accelerate 1.15.0, torch 2.14.1, CPU).

`auto-naming/checkpoints/` is `ProjectConfiguration(automatic_checkpoint_naming=True,
total_limit=3)` after five saves (checkpoint_2..4 remain: a save counter, not a step);
`manual-naming/` is the diffusers scripts' `checkpoint-<global_step>`.
"""

from __future__ import annotations

from pathlib import Path

from ckpt_cli import Checkpoint

from .conftest import make_checkpoint
from .fixture_runs import age, ckpt, ckpt_json, copy_run, statuses


def test_a_save_counter_orders_the_run_and_says_so(tmp_path: Path) -> None:
    run = copy_run(tmp_path, "accelerate", "auto-naming", "checkpoints")
    rows = ckpt_json("list", run)
    assert [(r["name"], r["save_index"], r["layout"]) for r in rows] == [
        (f"checkpoint_{i}", i, "accelerate") for i in (2, 3, 4)
    ]
    # the training step is in no file readable without unpickling
    assert [r["global_step"] for r in rows] == [None, None, None]
    assert "#4" in ckpt("list", run).stdout
    assert ckpt("latest", run).stdout.strip() == str(run / "checkpoint_4")
    assert Checkpoint.find_latest(run).extra["save_index"] == 4
    loaded = ckpt_json("load", run / "checkpoint_4")
    assert (loaded["global_step"], loaded["save_index"]) == (None, 4)
    assert ckpt("verify", run).returncode == 0


def test_manual_naming_is_by_step(tmp_path: Path) -> None:
    run = copy_run(tmp_path, "accelerate", "manual-naming")
    rows = ckpt_json("list", run)
    assert [(r["global_step"], r["save_index"]) for r in rows] == [
        (s, None) for s in (2, 4, 6, 8, 10)
    ]


def test_torn_saves_are_incomplete_and_kept(tmp_path: Path) -> None:
    for scenario in ("torn-before-random-states", "torn-mid-model"):
        run = copy_run(tmp_path, "accelerate", scenario, "checkpoints")
        assert statuses(run)["checkpoint_3"] == "incomplete"
        assert ckpt("latest", run).stdout.strip() == str(run / "checkpoint_2")
        age(run, 30)
        ckpt("prune", run, "--keep-last", "1", "--yes")
        assert (run / "checkpoint_3").is_dir()


def test_prune_leaves_nothing_of_its_own_in_the_folder(tmp_path: Path) -> None:
    """Accelerate's rotation sorts every entry of checkpoints/ by its last number and fails
    on a name without one: the lock goes beside the folder, and trash is removed."""
    run = copy_run(tmp_path, "accelerate", "auto-naming", "checkpoints")
    before = {p.name for p in run.iterdir()}
    age(run, 30)
    ckpt("prune", run, "--keep-last", "2", "--yes")
    assert {p.name for p in run.iterdir()} == before - {"checkpoint_2"}
    assert (run.parent / ".checkpoints.ckpt.lock").is_file()


def test_a_prune_with_nothing_to_delete_takes_no_lock(tmp_path: Path) -> None:
    """A cron job that reaches `checkpoints/` before Accelerate's first save writes nothing."""
    run = tmp_path / "project" / "checkpoints"
    run.mkdir(parents=True)
    (run / "notes.txt").write_text("x")
    ckpt("prune", run, "--keep-last", "1", "--yes")
    assert sorted(p.name for p in run.iterdir()) == ["notes.txt"]
    assert not (run.parent / ".checkpoints.ckpt.lock").exists()


def test_a_ckpt_run_keeps_its_lock_inside(tmp_path: Path) -> None:
    run = tmp_path / "run"
    for step in (1, 2, 3):
        make_checkpoint(run, step)
    age(run, 30)
    ckpt("prune", run, "--keep-last", "1", "--yes")
    assert (run / ".ckpt.lock").is_file()
