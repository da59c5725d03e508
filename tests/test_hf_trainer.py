"""The Hugging Face Trainer's layout, on folders the real Trainer wrote (tests/fixtures/hf_trainer,
made by `make fixtures`: transformers 5.23.0, torch 2.14.1, CPU; FIXTURES.json says how).

The values asserted are the ones those files hold: eval loss by step 10 -> 0.3796, 20 -> 0.2736
(the best), 30 -> 0.3924, 40 -> 0.4736, 50 -> 0.4983, 60 -> 0.5059; epoch 1.25 per 10 steps;
`best_model_checkpoint` "complete/checkpoint-20", relative to the training's working directory.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from ckpt_cli import Checkpoint, CheckpointConfig

from .conftest import CKPT_BIN, REPO, make_checkpoint

FIXTURES = REPO / "tests" / "fixtures" / "hf_trainer"
EVAL = {10: 0.3796265125274658, 20: 0.2736125588417053, 30: 0.3924441635608673}
DAY = 86400.0


def ckpt(*args: str | Path, code: int = 0) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(CKPT_BIN), *map(str, args)], capture_output=True, text=True)
    assert done.returncode == code, (done.stdout, done.stderr)
    return done


def ckpt_json(*args: str | Path, code: int = 0) -> Any:
    return json.loads(ckpt(*args, "--json", code=code).stdout)


def age(run: Path, days: float) -> None:
    """Every folder and file a month old, as a run a cron job finds (git gave them today's)."""
    then = time.time() - days * DAY
    for current, dirs, files in os.walk(run):
        for name in [*dirs, *files]:
            os.utime(Path(current) / name, (then, then))


@pytest.fixture
def trainer_run(tmp_path: Path) -> Path:
    """The complete run, as `out/` with the Trainer's files exactly as it wrote them."""
    run = tmp_path / "complete"
    shutil.copytree(FIXTURES / "complete", run)
    return run


def copy(tmp_path: Path, scenario: str) -> Path:
    run = tmp_path / scenario
    shutil.copytree(FIXTURES / scenario, run)
    return run


def test_the_fixtures_are_what_the_real_trainer_wrote() -> None:
    facts = json.loads((FIXTURES / "FIXTURES.json").read_text())
    assert facts["versions"]["transformers"] == "5.23.0"
    for entry in facts["files"]:
        path = FIXTURES / entry["path"]
        assert path.stat().st_size == entry["size"], entry["path"]


def test_list_reads_each_trainer_checkpoint(trainer_run: Path) -> None:
    rows = {r["global_step"]: r for r in ckpt_json("list", trainer_run)}
    assert sorted(rows) == [10, 20, 30, 40, 50, 60]
    assert {r["status"] for r in rows.values()} == {"valid"}
    assert {r["layout"] for r in rows.values()} == {"hf-trainer"}
    assert (rows[10]["epoch"], rows[10]["epoch_exact"]) == (1, 1.25)
    assert (rows[60]["epoch"], rows[60]["epoch_exact"]) == (7, 7.5)
    for step, loss in EVAL.items():
        assert rows[step]["loss"] == pytest.approx(loss)
    # the running best is the lowest eval loss so far, never a training loss
    assert [rows[s]["best_loss"] for s in (10, 20, 30, 60)] == pytest.approx(
        [EVAL[10], EVAL[20], EVAL[20], EVAL[20]]
    )
    assert rows[20]["markers"] == ["best"] and rows[60]["markers"] == ["latest"]
    mtime = (trainer_run / "checkpoint-60" / "trainer_state.json").stat().st_mtime
    saved = time.mktime(time.strptime(rows[60]["saved_at"][:19], "%Y-%m-%dT%H:%M:%S"))
    assert abs(saved - time.timezone - mtime) < 2  # the mtime of what the Trainer wrote last
    plain = ckpt("list", trainer_run).stdout.splitlines()
    assert plain[0].split()[-1] == "layout" and plain[1].split()[1] == "1.25"


def test_latest_load_and_the_python_api(trainer_run: Path) -> None:
    assert ckpt("latest", trainer_run).stdout == f"{trainer_run / 'checkpoint-60'}\n"
    doc = ckpt_json("load", trainer_run / "checkpoint-20")
    assert (doc["global_step"], doc["epoch"], doc["epoch_exact"]) == (20, 2, 2.5)
    assert doc["loss"] == pytest.approx(EVAL[20]) and doc["layout"] == "hf-trainer"
    assert doc["best_model_checkpoint"] == "complete/checkpoint-20"
    assert doc["best_global_step"] == 20
    latest = Checkpoint.find_latest(trainer_run)
    assert (latest.global_step, latest.epoch) == (60, 7)
    assert latest.extra["layout"] == "hf-trainer"
    assert Checkpoint.load(trainer_run / "checkpoint-10").loss == pytest.approx(EVAL[10])
    report = ckpt_json("verify", trainer_run / "checkpoint-60")
    assert (report["ok"], report["layout"], report["status"]) == (True, "hf-trainer", "valid")


def test_prune_keeps_the_trainers_best_and_says_why(trainer_run: Path) -> None:
    age(trainer_run, 30)
    plan = ckpt_json("prune", trainer_run, "--keep-last", "2", "--dry-run")
    entries = plan["runs"][0]["entries"]
    decisions = {e["global_step"]: (e["decision"], e["reasons"]) for e in entries}
    assert decisions[20] == ("keep", ["Trainer's best"])
    assert decisions[50] == ("keep", ["last 2"])
    assert decisions[60][0] == "keep" and "latest" in decisions[60][1]
    assert [s for s, (d, _) in decisions.items() if d == "delete"] == [10, 30, 40]
    ckpt("prune", trainer_run, "--keep-last", "2", "--yes")
    assert sorted(p.name for p in trainer_run.iterdir() if not p.name.startswith(".")) == [
        "checkpoint-20",
        "checkpoint-50",
        "checkpoint-60",
    ]
    # what stays is the Trainer's own, untouched
    for name in ("checkpoint-20", "checkpoint-60"):
        original = FIXTURES / "complete" / name
        assert sorted(p.name for p in (trainer_run / name).iterdir()) == sorted(
            p.name for p in original.iterdir()
        )


def test_keep_best_ranks_by_eval_loss(trainer_run: Path) -> None:
    plan = ckpt_json("prune", trainer_run, "--keep-best", "2", "--dry-run")
    kept = [e["global_step"] for e in plan["runs"][0]["entries"] if e["decision"] == "keep"]
    assert kept == [10, 20, 60]  # best 2 by eval loss: 20 and 10; 60 is the latest


def test_the_final_save_names_the_best_too(tmp_path: Path) -> None:
    run = copy(tmp_path, "final-save")
    plan = ckpt_json("prune", run, "--keep-last", "1", "--dry-run")
    entries = {e["name"]: e for e in plan["runs"][0]["entries"]}
    assert entries["checkpoint-20"]["reasons"] == ["Trainer's best"]
    assert entries["trainer_state.json"]["decision"] == "skip"  # the run's own files: never
    assert entries["model.safetensors"]["decision"] == "skip"


def test_a_best_outside_the_run_protects_nothing(trainer_run: Path) -> None:
    for folder in trainer_run.iterdir():
        state = folder / "trainer_state.json"
        doc = json.loads(state.read_text())
        doc["best_model_checkpoint"] = "elsewhere/checkpoint-20"
        doc["best_global_step"] = None
        state.write_text(json.dumps(doc, indent=2, sort_keys=True))
    plan = ckpt_json("prune", trainer_run, "--keep-last", "1", "--dry-run")
    decisions = {e["global_step"]: e["decision"] for e in plan["runs"][0]["entries"]}
    assert decisions[20] == "delete"


@pytest.mark.parametrize(
    ("scenario", "status"),
    [
        ("torn-after-config", "incomplete"),
        ("torn-mid-weights", "incomplete"),
        ("torn-after-weights", "incomplete"),
        ("torn-mid-optimizer", "incomplete"),
        ("torn-after-optimizer", "incomplete"),
        ("torn-after-rng", "incomplete"),
        ("torn-mid-trainer-state", "corrupt"),
    ],
)
def test_a_torn_save_is_never_latest_and_never_deleted(
    tmp_path: Path, scenario: str, status: str
) -> None:
    run = copy(tmp_path, scenario)
    rows = {r["global_step"]: r["status"] for r in ckpt_json("list", run)}
    assert rows == {10: "valid", 20: "valid", 30: status}
    done = ckpt("latest", run)
    assert done.stdout == f"{run / 'checkpoint-20'}\n"
    assert str(run / "checkpoint-30") in done.stderr or status == "incomplete"
    age(run, 30)
    ckpt("prune", run, "--keep-last", "1", "--yes")
    assert (run / "checkpoint-30").is_dir()  # ckpt never deletes what it cannot read
    # sealing what the Trainer did not finish is refused, where its files say so
    started = (run / "checkpoint-30" / "training_args.bin").exists()
    done = ckpt("save", run, "--step", "30", code=3 if started else 0)
    assert ("cannot seal" in done.stderr) == started
    assert (run / "checkpoint-30" / "metadata.json").exists() != started
    if started:  # said so: sealed all the same
        ckpt("save", run, "--step", "30", "--force")
        assert (run / "checkpoint-30" / "metadata.json").exists()


def test_a_missing_rank_is_incomplete(tmp_path: Path) -> None:
    run = copy(tmp_path, "multirank")
    assert {r["status"] for r in ckpt_json("list", run)} == {"valid"}
    # a gap in the ranks' files: rank 0 died before writing its own
    (run / "checkpoint-20" / "rng_state_0.pth").unlink()
    rows = {r["global_step"]: r for r in ckpt_json("list", run)}
    assert rows[20]["status"] == "incomplete"
    assert "rng_state_0.pth missing" in (rows[20]["error"] or "")
    assert ckpt("latest", run).stdout == f"{run / 'checkpoint-10'}\n"
    assert ckpt_json("verify", run / "checkpoint-20", code=3)["status"] == "incomplete"


def test_nan_and_infinity_are_read(tmp_path: Path) -> None:
    run = copy(tmp_path, "nan")
    rows = ckpt_json("list", run)
    assert [r["status"] for r in rows] == ["valid", "valid"]
    doc = ckpt_json("load", run / "checkpoint-20")
    assert doc["best_metric"] is None  # Infinity: JSON has no spelling for it
    assert "Infinity" in ckpt("load", run / "checkpoint-20").stdout


def test_a_mismatched_global_step_is_corrupt(trainer_run: Path) -> None:
    state = trainer_run / "checkpoint-40" / "trainer_state.json"
    state.write_text(state.read_text().replace('"global_step": 40', '"global_step": 41'))
    rows = {r["global_step"]: r for r in ckpt_json("list", trainer_run)}
    assert rows[40]["status"] == "corrupt"
    assert "folder name says step 40 but trainer_state.json says 41" in rows[40]["error"]


def test_seal_takes_the_trainers_values_and_changes_none_of_its_files(trainer_run: Path) -> None:
    before = {p.name: p.read_bytes() for p in (trainer_run / "checkpoint-20").iterdir()}
    out = ckpt_json("save", trainer_run, "--step", "20")
    assert out["outcome"] == "sealed" and out["best_loss"] == pytest.approx(EVAL[20])
    folder = trainer_run / "checkpoint-20"
    after = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert after.pop("metadata.json") and after == before
    meta = json.loads((folder / "metadata.json").read_text())
    assert (meta["epoch"], meta["global_step"]) == (2, 20)
    assert meta["ckpt"]["loss"] == pytest.approx(EVAL[20])
    manifest = {m["path"]: m["size"] for m in meta["ckpt"]["manifest"]}
    assert manifest == {name: len(data) for name, data in before.items()}
    assert ckpt_json("verify", folder)["ok"] is True
    rows = {r["global_step"]: r for r in ckpt_json("list", trainer_run)}
    assert rows[20]["layout"] == "ckpt+hf-trainer"
    (folder / "optimizer.pt").write_bytes(b"changed")
    assert ckpt_json("verify", folder, code=3)["ok"] is False
    # given values win over the Trainer's
    out = ckpt_json("save", trainer_run, "--step", "30", "--epoch", "9", "--best-loss", "0.1")
    meta = json.loads((trainer_run / "checkpoint-30" / "metadata.json").read_text())
    assert (meta["epoch"], meta["best_loss"]) == (9, 0.1)


def test_a_mixed_run_and_save_keep_rules(trainer_run: Path) -> None:
    make_checkpoint(trainer_run, 70, best_loss=0.2, loss=0.2)
    rows = {r["global_step"]: r["layout"] for r in ckpt_json("list", trainer_run)}
    assert rows[70] == "ckpt" and rows[60] == "hf-trainer"
    assert ckpt("latest", trainer_run).stdout == f"{trainer_run / 'checkpoint-70'}\n"
    age(trainer_run, 3)
    ckpt("save", trainer_run, "--step", "80", "--loss", "0.3", "--keep-last", "1")
    names = sorted(p.name for p in trainer_run.iterdir() if not p.name.startswith("."))
    assert names == ["checkpoint-20", "checkpoint-80"]  # 20: the Trainer's best


def test_cleanup_old_on_a_trainer_run(trainer_run: Path) -> None:
    deleted = Checkpoint.cleanup_old(CheckpointConfig(output_dir=trainer_run, max_checkpoints=1))
    assert sorted(p.name for p in deleted) == [
        "checkpoint-10",
        "checkpoint-30",
        "checkpoint-40",
        "checkpoint-50",
    ]


def test_a_trainer_temporary_folder_is_removed_once_stale(trainer_run: Path) -> None:
    temporary = trainer_run / "tmp-checkpoint-70"
    shutil.copytree(FIXTURES / "torn-after-weights" / "checkpoint-30", temporary)
    assert {r["name"]: r["status"] for r in ckpt_json("list", trainer_run)}[
        "tmp-checkpoint-70"
    ] == "staging"
    plan = ckpt_json("prune", trainer_run, "--keep-last", "9", "--dry-run")
    decisions = {e["name"]: e["decision"] for e in plan["runs"][0]["entries"]}
    assert decisions["tmp-checkpoint-70"] == "skip"  # fresh: the Trainer may be writing it
    age(trainer_run, 2)
    ckpt("prune", trainer_run, "--keep-last", "9", "--yes")
    assert not temporary.exists()


def _long_run(run: Path, saves: int, every: int = 200, restart_at: int | None = None) -> None:
    """A long run's states, written the Trainer's way (json.dumps, indent=2, sort_keys), big
    enough (> 64 KiB) that list reads their heads and the ends of their histories."""
    run.mkdir(parents=True)
    history: list[dict[str, Any]] = []
    for step in range(1, saves * every + 1):
        history.append({"epoch": step / 500, "loss": 2.0 / (1 + step / 100) + (step % 7) / 50,
                        "grad_norm": 1.0, "learning_rate": 5e-5, "step": step})  # fmt: skip
        if step % 100 == 0:
            history.append({"epoch": step / 500, "eval_loss": 1.0 - step / 1e4, "step": step})
        if step % every == 0:
            if restart_at == step:  # another run's state: its history does not continue
                history = [dict(e, loss=e.get("loss", 0) + 1) for e in history]
            doc = {"best_global_step": None, "best_metric": None, "epoch": step / 500,
                   "global_step": step, "log_history": history, "logging_steps": 1,
                   "max_steps": saves * every, "trial_params": None}  # fmt: skip
            folder = run / f"checkpoint-{step}"
            folder.mkdir()
            (folder / "trainer_state.json").write_text(json.dumps(doc, indent=2, sort_keys=True))


@pytest.mark.parametrize("restart_at", [None, 600])
def test_list_reading_the_ends_agrees_with_a_full_read(
    tmp_path: Path, restart_at: int | None
) -> None:
    from ckpt_cli.layouts.hf_trainer import LAYOUT
    from ckpt_cli.storage.local import LocalBackend

    run = tmp_path / "long"
    _long_run(run, 6, restart_at=restart_at)
    assert (run / "checkpoint-600" / "trainer_state.json").stat().st_size > 64 * 1024
    rows = {r["global_step"]: r for r in ckpt_json("list", run)}
    for step, row in rows.items():
        full = LAYOUT.load(LocalBackend(), run / f"checkpoint-{step}")
        assert (row["loss"], row["best_loss"]) == (full.loss, full.best_loss), step
    assert rows[1200]["best_loss"] == pytest.approx(0.88)


def test_latest_warns_when_a_lower_step_was_saved_later(trainer_run: Path) -> None:
    """A run restarted from step 20 wrote checkpoint-20 again, after 30..60 of the first run."""
    age(trainer_run, 2)
    now = time.time()
    os.utime(trainer_run / "checkpoint-20" / "trainer_state.json", (now, now))
    os.utime(trainer_run, (now, now))
    done = ckpt("latest", trainer_run)
    assert done.stdout == f"{trainer_run / 'checkpoint-60'}\n"
    assert "checkpoint-20 was saved after checkpoint-60, which has a higher step" in done.stderr
