"""Megatron-LM's layout, on folders Megatron's checkpoint code wrote (tests/fixtures/megatron,
by `make fixtures`: megatron-core 0.16.1 `dist_checkpointing.save` on the CPU; the folder
names and the tracker written by the generator as Megatron-LM's `save_checkpoint` does, which
needs a GPU: FIXTURES.json and the generator's docstring say exactly how)."""

from __future__ import annotations

from pathlib import Path

from .fixture_runs import age, ckpt, ckpt_json, copy_run, statuses


def test_torch_dist_run(tmp_path: Path) -> None:
    run = copy_run(tmp_path, "megatron", "torch-dist")
    rows = ckpt_json("list", run)
    assert [(r["name"], r["global_step"], r["layout"]) for r in rows] == [
        (f"iter_{s:07d}", s, "megatron") for s in (10, 20, 30)
    ]
    done = ckpt("latest", run)
    assert done.stdout.strip() == str(run / "iter_0000030") and done.stderr == ""
    assert ckpt("verify", run).returncode == 0


def test_torn_saves_are_incomplete(tmp_path: Path) -> None:
    for scenario in (
        "torn-after-common",
        "torn-mid-save",
        "torn-before-metadata-rename",
        "torn-before-metadata-json",
    ):
        run = copy_run(tmp_path, "megatron", scenario)
        assert statuses(run)["iter_0000030"] == "incomplete", scenario
        assert ckpt("latest", run).stdout.strip() == str(run / "iter_0000020")
        age(run, 30)
        ckpt("prune", run, "--keep-last", "1", "--yes")
        assert (run / "iter_0000030").is_dir() and (run / "iter_0000020").is_dir()


def test_the_tracker_is_a_hint_whose_target_is_kept(tmp_path: Path) -> None:
    run = copy_run(tmp_path, "megatron", "torn-before-tracker")
    assert (run / "latest_checkpointed_iteration.txt").read_bytes() == b"20"
    done = ckpt("latest", run)
    assert done.stdout.strip() == str(run / "iter_0000030")
    assert "names iter_0000020, not iter_0000030" in done.stderr
    age(run, 30)
    ckpt("prune", run, "--keep-last", "1", "--yes")
    assert sorted(p.name for p in run.glob("iter_*")) == ["iter_0000020", "iter_0000030"]


def test_an_unparsable_tracker_is_a_warning_never_a_crash(tmp_path: Path) -> None:
    """Megatron itself exits on such a tracker (a plain write, torn by a crash)."""
    run = copy_run(tmp_path, "megatron", "torch-dist")
    for text in (b"", b"3", b"\xff\xfe", b"30abc", b"../iter_0000030"):
        (run / "latest_checkpointed_iteration.txt").write_bytes(text)
        done = ckpt("latest", run)
        assert done.stdout.strip() == str(run / "iter_0000030")
        assert "Megatron's tracker" in done.stderr, text
        ckpt("list", run)


def test_release_is_not_a_step(tmp_path: Path) -> None:
    run = copy_run(tmp_path, "megatron", "release")
    assert ckpt_json("list", run) == [] or all(
        r["name"] != "release" for r in ckpt_json("list", run)
    )
    ckpt("latest", run, code=1)
    age(run, 30)
    ckpt("prune", run, "--keep-last", "1", "--yes")
    assert (run / "release" / ".metadata").is_file()
