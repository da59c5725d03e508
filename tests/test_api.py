"""The seed crate's behaviours, through the Python API: every example of checkpoint-usage.md."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ckpt_cli import (
    Checkpoint,
    CheckpointConfig,
    CkptError,
    CkptFileSystemError,
    InvalidCheckpointError,
    NotFoundError,
)
from ckpt_cli.ops.latest import find_latest
from ckpt_cli.ops.scan import scan

from .conftest import REPO, make_checkpoint


def test_basic_save_and_load(tmp_path: Path) -> None:
    checkpoint = Checkpoint(
        epoch=5, global_step=1000, best_loss=0.42, optimizer_state=[0.1, 0.2, 0.3], rng_state=12345
    )
    checkpoint_path = tmp_path / "checkpoints" / "checkpoint-1000"
    checkpoint.save(checkpoint_path)
    loaded = Checkpoint.load(checkpoint_path)
    assert loaded.global_step == 1000
    assert loaded == checkpoint
    assert loaded.path == checkpoint_path and loaded.saved_at is not None


def test_save_accepts_str_paths_and_creates_parents(tmp_path: Path) -> None:
    target = str(tmp_path / "a" / "b" / "checkpoint-3")
    Checkpoint(epoch=0, global_step=3, best_loss=1.0).save(target)
    assert Checkpoint.load(target).global_step == 3


def test_find_latest_among_50_100_150(run_dir: Path) -> None:
    for step in (100, 50, 150):
        make_checkpoint(run_dir, step)
    latest = Checkpoint.find_latest(run_dir)
    assert latest.global_step == 150
    assert latest.path == run_dir / "checkpoint-150"


def test_find_latest_orders_numerically_not_lexically(run_dir: Path) -> None:
    for step in (9000, 10000, 999):
        make_checkpoint(run_dir, step)
    assert Checkpoint.find_latest(run_dir).global_step == 10000
    steps = [r.step for r in scan(run_dir)]
    assert steps == [999, 9000, 10000]


def test_zero_padded_names_are_read(run_dir: Path) -> None:
    make_checkpoint(run_dir, 7)
    (run_dir / "checkpoint-7").rename(run_dir / "checkpoint-0012")
    meta_file = run_dir / "checkpoint-0012" / "metadata.json"
    meta_file.write_text(meta_file.read_text().replace('"global_step": 7', '"global_step": 12'))
    make_checkpoint(run_dir, 9)
    assert Checkpoint.find_latest(run_dir).global_step == 12


def test_cleanup_old_keeps_the_newest_max_checkpoints(run_dir: Path) -> None:
    for step in (50, 100, 150, 200, 250):
        make_checkpoint(run_dir, step)
    config = CheckpointConfig(output_dir=run_dir, save_every_n_steps=50, max_checkpoints=3)
    deleted = Checkpoint.cleanup_old(config)
    assert sorted(p.name for p in deleted) == ["checkpoint-100", "checkpoint-50"]
    assert sorted(p.name for p in run_dir.iterdir() if not p.name.startswith(".")) == [
        "checkpoint-150",
        "checkpoint-200",
        "checkpoint-250",
    ]


def test_cleanup_old_never_touches_other_names(run_dir: Path) -> None:
    for step in (1, 2, 3):
        make_checkpoint(run_dir, step)
    (run_dir / "notes.txt").write_text("mine")
    (run_dir / "checkpoint-best").mkdir()
    Checkpoint.cleanup_old(CheckpointConfig(output_dir=run_dir, max_checkpoints=1))
    assert (run_dir / "notes.txt").exists() and (run_dir / "checkpoint-best").exists()
    assert [p.name for p in run_dir.glob("checkpoint-[0-9]*")] == ["checkpoint-3"]


def test_cleanup_old_keeps_what_it_cannot_read(run_dir: Path) -> None:
    for step in (1, 2, 3):
        make_checkpoint(run_dir, step)
    foreign = run_dir / "checkpoint-10"  # a framework's folder: no metadata.json
    foreign.mkdir()
    (foreign / "trainer_state.json").write_text("{}")
    corrupt = run_dir / "checkpoint-2" / "metadata.json"
    corrupt.write_text("{ broken")
    month_ago = time.time() - 30 * 86400
    for folder in (foreign, corrupt.parent):
        os.utime(folder, (month_ago, month_ago))
    config = CheckpointConfig(output_dir=run_dir, max_checkpoints=1)
    assert [p.name for p in Checkpoint.cleanup_old(config)] == ["checkpoint-1"]
    assert sorted(p.name for p in run_dir.glob("checkpoint-*")) == [
        "checkpoint-10",
        "checkpoint-2",
        "checkpoint-3",
    ]
    # on request, and only once stale (a day by default), they go too
    deleted = Checkpoint.cleanup_old(config, delete_incomplete=True)
    assert sorted(p.name for p in deleted) == ["checkpoint-10", "checkpoint-2"]
    assert [p.name for p in run_dir.glob("checkpoint-*")] == ["checkpoint-3"]


def test_load_of_a_missing_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(CkptFileSystemError, match="no such checkpoint folder"):
        Checkpoint.load(tmp_path / "checkpoint-404")


def test_find_latest_of_an_empty_folder_errors(run_dir: Path) -> None:
    with pytest.raises(NotFoundError, match="no valid checkpoint"):
        Checkpoint.find_latest(run_dir)


def test_error_handling_example_catches_one_base_class(run_dir: Path) -> None:
    # the seed's "handle missing checkpoints gracefully": match on Ok / Err
    try:
        Checkpoint.find_latest(run_dir)
        found = True
    except CkptError as error:
        found = False
        assert "no valid checkpoint" in str(error)
    assert not found


def test_config_defaults_and_should_save() -> None:
    config = CheckpointConfig()
    assert (str(config.output_dir), config.save_every_n_steps, config.max_checkpoints) == (
        "./checkpoints",
        500,
        3,
    )
    assert config.should_save(0) and config.should_save(1000) and not config.should_save(250)
    assert CheckpointConfig(save_every_n_steps=0).should_save(5) is False
    assert config.checkpoint_path(1500) == Path("./checkpoints/checkpoint-1500")


def test_latest_skips_corrupt_and_incomplete(run_dir: Path) -> None:
    make_checkpoint(run_dir, 100)
    make_checkpoint(run_dir, 200)
    (run_dir / "checkpoint-300").mkdir()  # incomplete: a framework is still writing
    (run_dir / "checkpoint-250").mkdir()
    (run_dir / "checkpoint-250" / "metadata.json").write_text('{"epoch": 1, "glob')  # truncated
    warnings: list[str] = []
    folder, meta = find_latest(run_dir, warn=warnings.append)
    assert folder == run_dir / "checkpoint-200" and meta.global_step == 200
    assert any("checkpoint-300: incomplete checkpoint, no metadata.json" in w for w in warnings)
    assert any("checkpoint-250/metadata.json: not valid JSON" in w for w in warnings)


def test_latest_warns_on_name_and_metadata_disagreeing(run_dir: Path) -> None:
    make_checkpoint(run_dir, 100)
    (run_dir / "checkpoint-100").rename(run_dir / "checkpoint-500")
    warnings: list[str] = []
    find_latest(run_dir, warn=warnings.append)
    assert warnings == [
        f"{run_dir / 'checkpoint-500'}: folder name says step 500 but metadata says 100"
    ]


def test_latest_warns_when_a_newer_save_has_a_lower_step(run_dir: Path) -> None:
    make_checkpoint(run_dir, 5000)
    old = 1_000_000_000
    os.utime(run_dir / "checkpoint-5000", (old, old))
    make_checkpoint(run_dir, 300)
    warnings: list[str] = []
    folder, _ = find_latest(run_dir, warn=warnings.append)
    assert folder.name == "checkpoint-5000"
    assert warnings == [
        "checkpoint-300 was saved after checkpoint-5000, which has a higher step: "
        "checkpoint-5000 may be left over from an earlier run"
    ]


def test_sealing_a_folder_a_framework_filled(run_dir: Path) -> None:
    folder = run_dir / "checkpoint-1500"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"weights" * 100)
    assert scan(run_dir)[0].status == "incomplete"
    Checkpoint(epoch=3, global_step=1500, best_loss=0.41).save(folder)
    loaded = Checkpoint.load(folder)
    assert loaded.manifest is not None
    assert [(m.path, m.size) for m in loaded.manifest] == [("model.safetensors", 700)]
    assert (folder / "model.safetensors").read_bytes() == b"weights" * 100
    assert scan(run_dir)[0].status == "valid"


def test_saving_again_replaces_atomically_and_keeps_payload(run_dir: Path) -> None:
    folder = run_dir / "checkpoint-10"
    folder.mkdir()
    (folder / "w.bin").write_bytes(b"1234")
    Checkpoint(epoch=0, global_step=10, best_loss=0.9).save(folder)
    Checkpoint(epoch=0, global_step=10, best_loss=0.5).save(folder)
    assert Checkpoint.load(folder).best_loss == 0.5
    assert (folder / "w.bin").read_bytes() == b"1234"
    assert [p.name for p in run_dir.iterdir() if p.name != ".ckpt.lock"] == ["checkpoint-10"]


def test_payload_files_are_copied_or_moved(run_dir: Path, tmp_path: Path) -> None:
    payload = tmp_path / "model.bin"
    payload.write_bytes(b"x" * 1000)
    Checkpoint(epoch=0, global_step=1, best_loss=0.9).save(
        run_dir / "checkpoint-1", payloads=[payload]
    )
    assert payload.exists() and (run_dir / "checkpoint-1" / "model.bin").read_bytes() == b"x" * 1000
    Checkpoint(epoch=0, global_step=2, best_loss=0.9).save(
        run_dir / "checkpoint-2", payloads=[payload], move=True
    )
    assert not payload.exists() and (run_dir / "checkpoint-2" / "model.bin").exists()


def test_no_staging_left_after_a_failed_save(run_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(CkptFileSystemError, match="no such payload file"):
        Checkpoint(epoch=0, global_step=1, best_loss=0.9).save(
            run_dir / "checkpoint-1", payloads=[tmp_path / "missing.bin"]
        )
    assert [p.name for p in run_dir.iterdir() if p.name != ".ckpt.lock"] == []


def test_metadata_json_that_is_a_folder_is_invalid(run_dir: Path) -> None:
    (run_dir / "checkpoint-1" / "metadata.json").mkdir(parents=True)
    with pytest.raises(InvalidCheckpointError, match="metadata.json: it is a directory"):
        Checkpoint.load(run_dir / "checkpoint-1")


def test_training_loop_example_resumes_exactly(tmp_path: Path) -> None:
    """The seed's Training Loop Integration example, TODOs done: optimizer and RNG state are
    saved and restored, so an interrupted-and-resumed run ends exactly like an uninterrupted one."""
    script = REPO / "examples" / "training_loop.py"

    def run(output: Path, *extra: str) -> dict[str, object]:
        done = subprocess.run(
            [
                sys.executable,
                str(script),
                "--output-dir",
                str(output),
                "--epochs",
                "2",
                "--steps-per-epoch",
                "600",
                *extra,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(done.stdout)

    straight = run(tmp_path / "a")
    assert run(tmp_path / "b", "--stop-at", "850") == {"stopped_at": 850}
    resumed = run(tmp_path / "b")
    assert resumed == straight
    kept = sorted(p.name for p in (tmp_path / "b").glob("checkpoint-*"))
    assert kept == ["checkpoint-1000", "checkpoint-1100", "checkpoint-900"]
    latest = Checkpoint.load(tmp_path / "b" / "checkpoint-1100")
    assert latest.rng_state is not None and len(latest.optimizer_state) == 3
