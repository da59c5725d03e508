"""Lightning's layout, on files the real Lightning wrote (tests/fixtures/lightning, by `make
fixtures`: pytorch-lightning 2.6.6, torch 2.14.1, CPU; FIXTURES.json says how).

Checkpoints here are files: `epoch=E-step=S.ckpt`, a `last.ckpt` copy or symlink, `-v1`
versions; the torn runs were SIGKILLed while Lightning wrote a file.
"""

from __future__ import annotations

import os
from pathlib import Path

from ckpt_cli import Checkpoint

from .fixture_runs import age, ckpt, ckpt_json, copy_run, statuses


def _entries(run: Path, *rules: str) -> dict[str, tuple[str, list[str]]]:
    plan = ckpt_json("prune", run, *rules, "--dry-run")["runs"][0]["entries"]
    return {e["name"]: (e["decision"], e["reasons"]) for e in plan}


def test_list_and_latest_read_the_archives(tmp_path: Path) -> None:
    run = copy_run(tmp_path, "lightning", "metric-names", "checkpoints")
    rows = ckpt_json("list", run)
    assert [(r["global_step"], r["epoch"], r["layout"]) for r in rows] == [
        (8, 0, "lightning"),
        (16, 1, "lightning"),
        (24, 2, "lightning"),
        (32, 3, "lightning"),
    ]
    assert [r["loss"] for r in rows] == [0.8163, 0.402, 0.2588, 0.2417]  # from the names
    assert all(r["size"] > 6000 for r in rows)
    assert ckpt("latest", run).stdout.strip() == str(run / "epoch=3-step=32-val_loss=0.2417.ckpt")
    assert Checkpoint.find_latest(run).global_step == 32
    assert ckpt("verify", run).returncode == 0


def test_a_last_copy_and_the_file_it_copies_are_one_step(tmp_path: Path) -> None:
    run = copy_run(tmp_path, "lightning", "topk-copy", "checkpoints")
    age(run, 30)
    entries = _entries(run, "--keep-last", "1")
    assert entries["last.ckpt"][0] == "keep" and entries["epoch=3-step=32.ckpt"][0] == "keep"
    assert entries["epoch=2-step=24.ckpt"][0] == "delete"
    ckpt("prune", run, "--keep-last", "1", "--yes")
    assert sorted(p.name for p in run.iterdir() if not p.name.startswith(".")) == [
        "epoch=3-step=32.ckpt",
        "last.ckpt",
    ]


def test_only_a_last_copy_reads_its_step_inside(tmp_path: Path) -> None:
    run = copy_run(tmp_path, "lightning", "last-only", "checkpoints")
    assert ckpt_json("list", run)[0]["global_step"] == 24
    assert ckpt("latest", run).stdout.strip() == str(run / "last.ckpt")


def test_a_last_link_is_a_pointer_kept_with_its_target(tmp_path: Path) -> None:
    run = copy_run(tmp_path, "lightning", "last-link", "checkpoints")
    assert os.readlink(run / "last.ckpt") == "epoch=4-step=40.ckpt"
    done = ckpt("latest", run)
    assert done.stdout.strip() == str(run / "epoch=4-step=40.ckpt") and done.stderr == ""
    age(run, 30)
    entries = _entries(run, "--keep-best", "1")
    assert entries["epoch=4-step=40.ckpt"][0] == "keep"
    assert any("Lightning's last.ckpt" in r for r in entries["epoch=4-step=40.ckpt"][1])
    assert entries["last.ckpt"][0] == "skip"  # a symlink: never followed, never deleted


def test_a_last_link_out_of_the_run_is_never_followed(tmp_path: Path) -> None:
    run = copy_run(tmp_path, "lightning", "last-link", "checkpoints")
    outside = tmp_path / "precious.ckpt"
    outside.write_bytes((run / "epoch=4-step=40.ckpt").read_bytes())
    (run / "last.ckpt").unlink()
    (run / "last.ckpt").symlink_to(outside)
    done = ckpt("latest", run)
    assert done.stdout.strip() == str(run / "epoch=4-step=40.ckpt")
    assert "leads outside the run directory" in done.stderr
    age(run, 30)
    ckpt("prune", run, "--keep-last", "1", "--yes")
    assert outside.is_file() and (run / "last.ckpt").is_symlink()


def test_versions_count_by_step(tmp_path: Path) -> None:
    run = copy_run(tmp_path, "lightning", "versions", "checkpoints")
    age(run, 30)
    entries = _entries(run, "--keep-last", "1")
    kept = sorted(n for n, (d, _) in entries.items() if d == "keep")
    assert kept == ["epoch=3-step=32-v1.ckpt", "epoch=3-step=32.ckpt", "last-v1.ckpt", "last.ckpt"]


def test_a_file_cut_short_is_incomplete_and_kept(tmp_path: Path) -> None:
    run = copy_run(tmp_path, "lightning", "torn-cross-device", "checkpoints")
    assert statuses(run)["epoch=2-step=24.ckpt"] == "incomplete"
    done = ckpt("latest", run)
    assert done.stdout.strip() == str(run / "epoch=1-step=16.ckpt")
    assert "cut short" in done.stderr
    age(run, 30)
    ckpt("prune", run, "--keep-last", "1", "--yes")
    assert (run / "epoch=2-step=24.ckpt").exists()
    ckpt("verify", run / "epoch=2-step=24.ckpt", code=3)
