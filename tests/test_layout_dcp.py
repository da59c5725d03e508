"""PyTorch DCP's layout, on folders the real `torch.distributed.checkpoint` wrote, named as
TorchTitan names them (tests/fixtures/dcp, by `make fixtures`: torch 2.14.1, CPU, one process;
FIXTURES.json says how). The torn saves were SIGKILLed while step-30 was being committed."""

from __future__ import annotations

from pathlib import Path

from ckpt_cli import Checkpoint

from .fixture_runs import age, ckpt, ckpt_json, copy_run, statuses


def test_a_torchtitan_run(tmp_path: Path) -> None:
    run = copy_run(tmp_path, "dcp", "complete", "checkpoint")
    rows = ckpt_json("list", run)
    assert [(r["name"], r["global_step"], r["layout"]) for r in rows] == [
        (f"step-{s}", s, "dcp") for s in (0, 10, 20, 30, 35)
    ]
    done = ckpt("latest", run)
    assert done.stdout.strip() == str(run / "step-35") and done.stderr == ""
    assert Checkpoint.find_latest(run).global_step == 35
    assert ckpt("verify", run).returncode == 0


def test_rank_local_and_hf_storage_folders(tmp_path: Path) -> None:
    assert set(statuses(copy_run(tmp_path, "dcp", "rank-local", "checkpoint")).values()) == {
        "valid"
    }
    run = copy_run(tmp_path, "dcp", "hf-storage", "checkpoint")
    assert statuses(run) == {"step-10": "valid", "step-20": "valid"}


def test_torn_commits_are_incomplete_and_kept(tmp_path: Path) -> None:
    for scenario in ("torn-before-metadata", "torn-metadata-tmp"):
        run = copy_run(tmp_path, "dcp", scenario, "checkpoint")
        assert statuses(run)["step-30"] == "incomplete"
        assert ckpt("latest", run).stdout.strip() == str(run / "step-20")
        age(run, 30)
        ckpt("prune", run, "--keep-last", "1", "--yes")
        assert (run / "step-30").is_dir() and (run / "step-20").is_dir()
        assert not (run / "step-0").exists()
        ckpt("verify", run / "step-30", code=3)


def test_a_data_file_that_metadata_names_is_checked(tmp_path: Path) -> None:
    run = copy_run(tmp_path, "dcp", "complete", "checkpoint")
    data = sorted((run / "step-30").glob("*.distcp"))[0]
    data.unlink()
    done = ckpt("verify", run / "step-30", code=3)
    assert f"{data.name}, named by .metadata, is missing" in done.stderr
    assert ckpt("latest", run).stdout.strip() == str(run / "step-35")
