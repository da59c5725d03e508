"""Orbax's layout, on folders the real Orbax CheckpointManager wrote (tests/fixtures/orbax, by
`make fixtures`: orbax-checkpoint 0.12.8, jax 0.10.2 on the CPU; FIXTURES.json says how).

Losses asserted are the `metrics` item's: step 20 -> 1.18501, 30 -> 0.553394, 40 -> 0.26903.
"""

from __future__ import annotations

from pathlib import Path

from ckpt_cli import Checkpoint

from .fixture_runs import FIXTURES, age, ckpt, ckpt_json, copy_run, statuses, tree

LOSS = {20: 1.1850, 30: 0.5534, 40: 0.2690}


def test_list_reads_steps_losses_and_commit_times(tmp_path: Path) -> None:
    run = copy_run(tmp_path, "orbax", "default")
    rows = ckpt_json("list", run)
    assert [(r["name"], r["global_step"], r["layout"]) for r in rows] == [
        ("20", 20, "orbax"),
        ("30", 30, "orbax"),
        ("40", 40, "orbax"),
    ]
    assert [round(r["loss"], 4) for r in rows] == [LOSS[20], LOSS[30], LOSS[40]]
    assert [r["epoch"] for r in rows] == [5, 7, 10]  # custom_metadata's epoch
    # the root's own `metadata/` folder is nobody's checkpoint
    assert "metadata" not in {r["name"] for r in rows}
    assert ckpt("latest", run).stdout.strip() == str(run / "40")
    assert Checkpoint.find_latest(run).global_step == 40


def test_prefixed_and_fixed_length_names(tmp_path: Path) -> None:
    assert ckpt("latest", copy_run(tmp_path, "orbax", "prefix")).stdout.strip().endswith("ckpt_40")
    run = copy_run(tmp_path, "orbax", "fixed-length")
    assert [r["global_step"] for r in ckpt_json("list", run)] == [20, 30, 40]
    assert ckpt("latest", run).stdout.strip().endswith("00000040")


def test_a_torn_save_leaves_a_temporary_folder_that_is_removed_once_stale(tmp_path: Path) -> None:
    for scenario in ("torn-tmp", "torn-tmp-mid"):
        run = copy_run(tmp_path, "orbax", scenario)
        assert statuses(run) == {"10": "valid", "20": "valid", "30.orbax-checkpoint-tmp": "staging"}
        assert ckpt("latest", run).stdout.strip() == str(run / "20")
        plan = ckpt_json("prune", run, "--keep-last", "5", "--dry-run")
        assert {e["name"]: e["decision"] for e in plan["runs"][0]["entries"]}[
            "30.orbax-checkpoint-tmp"
        ] == "skip"
        age(run, 30)
        ckpt("prune", run, "--keep-last", "5", "--yes")
        assert not (run / "30.orbax-checkpoint-tmp").exists()
        assert (run / "10").is_dir() and (run / "20").is_dir()


def test_a_bare_number_without_a_signature_is_nobodys(tmp_path: Path) -> None:
    run = copy_run(tmp_path, "orbax", "default")
    (run / "50").mkdir()
    (run / "50" / "notes.txt").write_text("not a checkpoint")
    age(run, 30)
    assert "50" not in statuses(run)
    done = ckpt("latest", run)
    assert done.stdout.strip() == str(run / "40") and done.stderr == ""
    ckpt("prune", run, "--keep-last", "1", "--delete-incomplete", "--yes")
    assert (run / "50" / "notes.txt").exists()  # never deleted, not even by --delete-incomplete
    assert sorted(p.name for p in run.iterdir()) == [".ckpt.lock", "40", "50", "metadata"]


def test_the_todelete_folder_is_left_alone(tmp_path: Path) -> None:
    run = copy_run(tmp_path, "orbax", "todelete")
    before = tree(run / "todelete")
    assert set(statuses(run)) == {"30", "40"}
    age(run, 30)
    ckpt("prune", run, "--keep-last", "1", "--yes")
    assert tree(run / "todelete") == before
    assert not (run / "30").exists() and (run / "40").is_dir()


def test_keep_best_uses_the_recorded_loss(tmp_path: Path) -> None:
    run = copy_run(tmp_path, "orbax", "default")
    age(run, 30)
    plan = ckpt_json("prune", run, "--keep-best", "1", "--dry-run")
    decisions = {e["name"]: e["decision"] for e in plan["runs"][0]["entries"]}
    assert decisions == {"20": "delete", "30": "delete", "40": "keep", "metadata": "skip"}


def test_verify_and_load(tmp_path: Path) -> None:
    run = copy_run(tmp_path, "orbax", "commit-file")
    assert ckpt("verify", run / "30").returncode == 0
    loaded = ckpt_json("load", run / "30")
    assert loaded["global_step"] == 30 and loaded["layout"] == "orbax"
    assert round(loaded["loss"], 4) == LOSS[30]


def test_without_its_commit_file_a_written_in_place_step_is_incomplete_on_an_object_store(
    tmp_path: Path,
) -> None:
    """The same rule Orbax applies on object stores (commit_success.txt written last), run
    here on the real torn commit-file save: tests/test_s3.py uploads it to a real S3 server."""
    from ckpt_cli.layouts.orbax import COMMIT

    torn = FIXTURES / "orbax" / "torn-commit-file" / "30"
    assert (torn / "_CHECKPOINT_METADATA").is_file() and not (torn / COMMIT).exists()
