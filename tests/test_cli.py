"""Every command's happy path and its error paths: exit code and the exact one-line error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ckpt_cli import Checkpoint

from .conftest import invoke, make_checkpoint


def error_line(result_stderr: str) -> str:
    lines = result_stderr.strip().splitlines()
    assert len(lines) == 1, result_stderr
    return lines[0]


# ---- save ----------------------------------------------------------------------------------


def test_save_prints_the_path_and_writes_a_valid_checkpoint(run_dir: Path) -> None:
    result = invoke(
        "save", str(run_dir), "--step", "1500", "--epoch", "3", "--loss", "0.41", "--rng-state", "7"
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"{run_dir / 'checkpoint-1500'}\n"
    loaded = Checkpoint.load(run_dir / "checkpoint-1500")
    assert (loaded.epoch, loaded.global_step, loaded.best_loss, loaded.loss, loaded.rng_state) == (
        3,
        1500,
        0.41,
        0.41,
        7,
    )


def test_save_loss_keeps_best_loss_as_running_minimum(run_dir: Path) -> None:
    assert invoke("save", str(run_dir), "--step", "1", "--loss", "0.5").exit_code == 0
    assert invoke("save", str(run_dir), "--step", "2", "--loss", "0.7").exit_code == 0
    assert invoke("save", str(run_dir), "--step", "3", "--loss", "0.3").exit_code == 0
    assert invoke("save", str(run_dir), "--step", "4").exit_code == 0  # carries best forward
    best = [Checkpoint.load(run_dir / f"checkpoint-{s}").best_loss for s in (1, 2, 3, 4)]
    assert best == [0.5, 0.5, 0.3, 0.3]
    assert Checkpoint.load(run_dir / "checkpoint-2").loss == 0.7
    assert Checkpoint.load(run_dir / "checkpoint-4").loss is None


def test_save_best_loss_sets_it_outright(run_dir: Path) -> None:
    invoke("save", str(run_dir), "--step", "1", "--loss", "0.2")
    assert invoke("save", str(run_dir), "--step", "2", "--best-loss", "0.9").exit_code == 0
    assert Checkpoint.load(run_dir / "checkpoint-2").best_loss == 0.9


def test_save_without_any_loss_and_no_earlier_checkpoint_is_a_usage_error(run_dir: Path) -> None:
    result = invoke("save", str(run_dir), "--step", "1")
    assert result.exit_code == 2
    assert error_line(result.stderr) == (
        f"ckpt: error: {run_dir}: no earlier checkpoint to take best_loss from; "
        "give --loss or --best-loss"
    )
    assert not (run_dir / "checkpoint-1").exists()


def test_save_over_an_existing_checkpoint_needs_force(run_dir: Path) -> None:
    invoke("save", str(run_dir), "--step", "5", "--loss", "0.5")
    result = invoke("save", str(run_dir), "--step", "5", "--loss", "0.1")
    assert result.exit_code == 2
    assert error_line(result.stderr) == (
        f"ckpt: error: {run_dir / 'checkpoint-5'}: a checkpoint already exists at this step "
        "(use --force to replace it)"
    )
    assert Checkpoint.load(run_dir / "checkpoint-5").loss == 0.5
    result = invoke("save", str(run_dir), "--step", "5", "--loss", "0.1", "--force")
    assert result.exit_code == 0
    assert Checkpoint.load(run_dir / "checkpoint-5").loss == 0.1


def test_save_seals_a_framework_folder_and_copies_payload(run_dir: Path, tmp_path: Path) -> None:
    folder = run_dir / "checkpoint-100"
    folder.mkdir()
    (folder / "model.bin").write_bytes(b"m" * 10)
    extra = tmp_path / "tokenizer.json"
    extra.write_text("{}")
    result = invoke("save", str(run_dir), "--step", "100", "--loss", "1.0", str(extra))
    assert result.exit_code == 0, result.stderr
    loaded = Checkpoint.load(folder)
    assert loaded.manifest is not None
    assert [m.path for m in loaded.manifest] == ["model.bin", "tokenizer.json"]
    assert extra.exists()


def test_save_moves_payload_with_move(run_dir: Path, tmp_path: Path) -> None:
    payload = tmp_path / "weights.bin"
    payload.write_bytes(b"w")
    assert (
        invoke("save", str(run_dir), "--step", "1", "--loss", "1", "--move", str(payload)).exit_code
        == 0
    )
    assert not payload.exists() and (run_dir / "checkpoint-1" / "weights.bin").exists()


def test_save_optimizer_state_from_file_and_stdin(run_dir: Path, tmp_path: Path) -> None:
    state = tmp_path / "opt.json"
    state.write_text("[0.5, 1, 2.5]")
    assert (
        invoke(
            "save", str(run_dir), "--step", "1", "--loss", "1", "--optimizer-state", str(state)
        ).exit_code
        == 0
    )
    assert Checkpoint.load(run_dir / "checkpoint-1").optimizer_state == [0.5, 1.0, 2.5]
    result = invoke(
        "save", str(run_dir), "--step", "2", "--loss", "1", "--optimizer-state", "-", input="[3.0]"
    )
    assert result.exit_code == 0
    assert Checkpoint.load(run_dir / "checkpoint-2").optimizer_state == [3.0]


def test_save_bad_optimizer_state_is_a_usage_error(run_dir: Path) -> None:
    result = invoke(
        "save", str(run_dir), "--step", "1", "--loss", "1", "--optimizer-state", "-", input='["a"]'
    )
    assert result.exit_code == 2
    assert error_line(result.stderr) == (
        "ckpt: error: --optimizer-state stdin: expected a JSON array of numbers "
        "(optimizer_state[0] must be a number, got string)"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--step", "-1", "--loss", "1"],
            "Invalid value for '--step': Input should be greater than or equal to 0",
        ),
        (["--step", "x"], "Invalid value for '--step': Input should be a valid integer"),
        (
            ["--step", "18446744073709551616", "--loss", "1"],
            "--step must be an integer in 0..2^64-1, got 18446744073709551616",
        ),
        (
            ["--step", "1", "--loss", "nan"],
            "--loss must be a finite number (JSON has no nan), got nan",
        ),
        (
            ["--step", "1", "--best-loss", "inf"],
            "--best-loss must be a finite number (JSON has no inf), got inf",
        ),
        (
            ["--step", "1", "--loss", "1", "--keep-last", "-2"],
            "Invalid value for '--keep-last': Input should be greater than or equal to 0",
        ),
        (
            ["--step", "1", "--loss", "1", "--keep-within", "2x"],
            "--keep-within: invalid duration '2x'",
        ),
    ],
)
def test_save_bad_values_exit_2(run_dir: Path, args: list[str], message: str) -> None:
    result = invoke("save", str(run_dir), *args)
    assert result.exit_code == 2
    assert error_line(result.stderr).startswith("ckpt: error: ")
    assert message in result.stderr
    assert not list(run_dir.glob("checkpoint-*"))


def test_save_missing_payload_exits_4(run_dir: Path, tmp_path: Path) -> None:
    result = invoke("save", str(run_dir), "--step", "1", "--loss", "1", str(tmp_path / "nope.bin"))
    assert result.exit_code == 4
    assert (
        error_line(result.stderr) == f"ckpt: error: {tmp_path / 'nope.bin'}: no such payload file"
    )


def test_save_into_a_file_exits_4(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = invoke("save", str(blocker), "--step", "1", "--loss", "1")
    assert result.exit_code == 4
    assert error_line(result.stderr) == f"ckpt: error: {blocker}: not a directory"


def test_save_keep_last_prunes_after_commit(run_dir: Path) -> None:
    for step in range(1, 6):
        result = invoke(
            "save", str(run_dir), "--step", str(step), "--loss", "1", "--keep-last", "2"
        )
        assert result.exit_code == 0
    assert sorted(p.name for p in run_dir.glob("checkpoint-*")) == ["checkpoint-4", "checkpoint-5"]


# ---- latest --------------------------------------------------------------------------------


def test_latest_prints_the_path(run_dir: Path) -> None:
    for step in (50, 100, 150):
        make_checkpoint(run_dir, step)
    result = invoke("latest", str(run_dir))
    assert result.exit_code == 0
    assert result.stdout == f"{run_dir / 'checkpoint-150'}\n"
    assert result.stderr == ""


def test_latest_field_and_json(run_dir: Path) -> None:
    make_checkpoint(run_dir, 1500, epoch=3, best_loss=0.41)
    assert invoke("latest", str(run_dir), "--field", "global_step").stdout == "1500\n"
    assert invoke("latest", str(run_dir), "--field", "best_loss").stdout == "0.41\n"
    assert (
        invoke("latest", str(run_dir), "--field", "path").stdout
        == f"{run_dir / 'checkpoint-1500'}\n"
    )
    doc = json.loads(invoke("latest", str(run_dir), "--json").stdout)
    assert doc["global_step"] == 1500 and doc["path"] == str(run_dir / "checkpoint-1500")


def test_latest_unknown_field_exits_2(run_dir: Path) -> None:
    make_checkpoint(run_dir, 1)
    result = invoke("latest", str(run_dir), "--field", "nope")
    assert result.exit_code == 2
    assert error_line(result.stderr).startswith(
        "ckpt: error: --field: unknown field 'nope' (known: path, status, epoch"
    )


def test_latest_empty_run_exits_1(run_dir: Path) -> None:
    result = invoke("latest", str(run_dir))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert error_line(result.stderr) == f"ckpt: error: {run_dir}: no valid checkpoint"


def test_latest_missing_run_dir_exits_4(tmp_path: Path) -> None:
    result = invoke("latest", str(tmp_path / "nope"))
    assert result.exit_code == 4
    assert error_line(result.stderr) == f"ckpt: error: {tmp_path / 'nope'}: no such run directory"


def test_latest_skips_corrupt_with_a_warning(run_dir: Path) -> None:
    make_checkpoint(run_dir, 1)
    (run_dir / "checkpoint-2").mkdir()
    (run_dir / "checkpoint-2" / "metadata.json").write_text("[]")
    result = invoke("latest", str(run_dir))
    assert result.exit_code == 0
    assert result.stdout == f"{run_dir / 'checkpoint-1'}\n"
    assert result.stderr == (
        f"ckpt: warning: skipping invalid metadata in "
        f"{run_dir / 'checkpoint-2' / 'metadata.json'}: expected a JSON object, got array\n"
    )


# ---- load ----------------------------------------------------------------------------------


def test_load_plain_json_and_field(run_dir: Path) -> None:
    folder = make_checkpoint(run_dir, 1500, epoch=3, best_loss=0.41, optimizer_state=[0.5] * 1000)
    plain = invoke("load", str(folder))
    assert plain.exit_code == 0
    assert "global_step      1500" in plain.stdout
    assert "optimizer_state  1000 values: min 0.5, max 0.5, mean 0.5" in plain.stdout
    assert "0.5, 0.5, 0.5, 0.5, 0.5, 0.5" not in plain.stdout  # summarised, never dumped
    doc = json.loads(invoke("load", str(folder / "metadata.json"), "--json").stdout)
    assert doc["optimizer_state"] == [0.5] * 1000
    assert invoke("load", str(folder), "--field", "epoch").stdout == "3\n"
    assert invoke("load", str(folder), "--field", "rng_state").stdout == "12345\n"


def test_load_corrupt_exits_3_naming_file_and_key(run_dir: Path) -> None:
    folder = run_dir / "checkpoint-1"
    folder.mkdir()
    (folder / "metadata.json").write_text(
        '{"epoch": 1, "global_step": -4, "best_loss": 0.1, "optimizer_state": []}'
    )
    result = invoke("load", str(folder))
    assert result.exit_code == 3
    assert error_line(result.stderr) == (
        f"ckpt: error: invalid metadata in {folder / 'metadata.json'}: "
        "key 'global_step' must be an integer in 0..2^64-1, got negative -4"
    )


def test_load_incomplete_exits_3(run_dir: Path) -> None:
    (run_dir / "checkpoint-1").mkdir()
    result = invoke("load", str(run_dir / "checkpoint-1"))
    assert result.exit_code == 3
    assert error_line(result.stderr) == (
        f"ckpt: error: {run_dir / 'checkpoint-1'}: incomplete checkpoint, no metadata.json "
        "(a save in progress or a crash)"
    )


def test_load_missing_exits_4(run_dir: Path) -> None:
    result = invoke("load", str(run_dir / "checkpoint-9"))
    assert result.exit_code == 4
    assert (
        error_line(result.stderr)
        == f"ckpt: error: {run_dir / 'checkpoint-9'}: no such checkpoint folder"
    )


# ---- list ----------------------------------------------------------------------------------


def test_list_plain_json_and_empty(run_dir: Path) -> None:
    assert invoke("list", str(run_dir), "--json").stdout == "[]\n"
    assert invoke("list", str(run_dir)).stdout == ""
    make_checkpoint(run_dir, 9000, best_loss=0.3)
    make_checkpoint(run_dir, 10000, best_loss=0.4)
    (run_dir / "checkpoint-11000").mkdir()
    result = invoke("list", str(run_dir))
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "step",
        "epoch",
        "loss",
        "best_loss",
        "size",
        "age",
        "status",
        "markers",
        "name",
        "layout",
    ]
    assert [line.split()[0] for line in lines[1:]] == ["9000", "10000", "11000"]
    assert lines[1].split()[6:] == ["valid", "best", "checkpoint-9000", "ckpt"]
    assert lines[2].split()[6:] == ["valid", "latest", "checkpoint-10000", "ckpt"]
    assert lines[3].split()[6:] == ["incomplete", "-", "checkpoint-11000", "-"]
    assert "│" not in result.stdout and "\x1b[" not in result.stdout
    docs = json.loads(invoke("list", str(run_dir), "--json").stdout)
    assert [(d["global_step"], d["status"], d["markers"]) for d in docs] == [
        (9000, "valid", ["best"]),
        (10000, "valid", ["latest"]),
        (11000, "incomplete", []),
    ]


def test_list_missing_run_dir_exits_4(tmp_path: Path) -> None:
    result = invoke("list", str(tmp_path / "gone"))
    assert result.exit_code == 4
    assert error_line(result.stderr) == f"ckpt: error: {tmp_path / 'gone'}: no such run directory"


# ---- prune ---------------------------------------------------------------------------------


def test_prune_keep_last_dry_run_then_real(run_dir: Path) -> None:
    for step in (100, 200, 300, 400):
        make_checkpoint(run_dir, step)
    dry = invoke("prune", str(run_dir), "--keep-last", "2", "--dry-run")
    assert dry.exit_code == 0
    assert len(list(run_dir.glob("checkpoint-*"))) == 4
    assert "would delete checkpoint" in dry.stdout and "checkpoint-100" in dry.stdout
    real = invoke("prune", str(run_dir), "--keep-last", "2", "--yes")
    assert real.exit_code == 0
    assert sorted(p.name for p in run_dir.glob("checkpoint-*")) == [
        "checkpoint-300",
        "checkpoint-400",
    ]
    assert real.stdout.splitlines()[-1].startswith(f"{run_dir}: kept 2, deleted 2")


def test_prune_without_rule_is_refused(run_dir: Path) -> None:
    make_checkpoint(run_dir, 1)
    result = invoke("prune", str(run_dir), "--yes")
    assert result.exit_code == 2
    assert error_line(result.stderr) == (
        "ckpt: error: no retention rule given (use --keep-last, --keep-best, --keep-every, "
        "--keep-within, --keep-daily or --keep-weekly); refusing to delete everything"
    )


def test_prune_without_yes_off_a_terminal_is_refused(run_dir: Path) -> None:
    for step in (1, 2, 3):
        make_checkpoint(run_dir, step)
    result = invoke("prune", str(run_dir), "--keep-last", "1")
    assert result.exit_code == 2
    assert error_line(result.stderr) == (
        "ckpt: error: refusing to delete without --yes when not on a terminal "
        "(use --dry-run to see the plan)"
    )
    assert len(list(run_dir.glob("checkpoint-*"))) == 3


def test_prune_json_plan(run_dir: Path) -> None:
    for step in (1, 2, 3):
        make_checkpoint(run_dir, step)
    result = invoke("prune", str(run_dir), "--keep-last", "1", "--dry-run", "--json")
    doc = json.loads(result.stdout)
    assert doc["dry_run"] is True
    entries = doc["runs"][0]["entries"]
    assert [(e["global_step"], e["decision"]) for e in entries] == [
        (1, "delete"),
        (2, "delete"),
        (3, "keep"),
    ]
    assert "last 1" in entries[2]["reasons"]
    assert doc["totals"]["deleted"] == 2


# ---- verify --------------------------------------------------------------------------------


def test_verify_ok_and_changed_payload(run_dir: Path, tmp_path: Path) -> None:
    payload = tmp_path / "model.bin"
    payload.write_bytes(b"a" * 100)
    invoke("save", str(run_dir), "--step", "1", "--loss", "1", str(payload))
    ok = invoke("verify", str(run_dir / "checkpoint-1"))
    assert ok.exit_code == 0 and ok.stdout == f"ok      {run_dir / 'checkpoint-1'}\n"
    (run_dir / "checkpoint-1" / "model.bin").write_bytes(b"b" * 100)
    (run_dir / "checkpoint-1" / "stray.txt").write_text("?")
    bad = invoke("verify", str(run_dir / "checkpoint-1"))
    assert bad.exit_code == 3
    assert bad.stdout.splitlines() == [
        f"FAILED  {run_dir / 'checkpoint-1'}: model.bin: content changed (sha256 differs)",
        f"FAILED  {run_dir / 'checkpoint-1'}: stray.txt: extra (not in the manifest)",
    ]
    assert error_line(bad.stderr) == (
        f"ckpt: error: {run_dir / 'checkpoint-1'}: model.bin: content changed (sha256 differs)"
    )


def test_verify_run_dir_reports_each(run_dir: Path) -> None:
    make_checkpoint(run_dir, 1)
    (run_dir / "checkpoint-2").mkdir()
    result = invoke("verify", str(run_dir), "--json")
    assert result.exit_code == 3
    docs = json.loads(result.stdout)
    assert [(d["path"].rsplit("/", 1)[1], d["ok"]) for d in docs] == [
        ("checkpoint-1", True),
        ("checkpoint-2", False),
    ]
    assert error_line(result.stderr) == "ckpt: error: 1 of 2 checkpoints failed verification"


# ---- the app -------------------------------------------------------------------------------


def test_unknown_option_is_one_line_exit_2(run_dir: Path) -> None:
    result = invoke("latest", str(run_dir), "--bogus")
    assert result.exit_code == 2
    assert (
        error_line(result.stderr)
        == "ckpt: error: No such option: --bogus (see 'ckpt latest --help')"
    )


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0 and result.stdout.startswith("ckpt 0.")


def test_a_bug_is_one_line_and_exit_70_not_1(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash must not look like "no checkpoint" (exit 1) to a job script."""
    import ckpt_cli.ops.latest

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(ckpt_cli.ops.latest, "find_latest", broken)
    result = invoke("latest", str(run_dir))
    assert result.exit_code == 70
    assert (
        error_line(result.stderr)
        == "ckpt: error: internal error: RuntimeError: boom (run with --debug)"
    )
