"""DeepSpeed's layout, on folders the real DeepSpeed wrote (tests/fixtures/deepspeed, by
`make fixtures`: deepspeed 0.19.8, torch 2.14.1, CPU, a gloo group of one; FIXTURES.json).

ZeRO-0 and ZeRO-2 runs save global_step2, 4 and 6; the torn ones were SIGKILLed during the
save of global_step6: after its model states, mid optimizer shard, and before `latest`.
"""

from __future__ import annotations

from pathlib import Path

from ckpt_cli import Checkpoint

from .fixture_runs import age, ckpt, ckpt_json, copy_run, statuses


def test_zero0_and_zero2_runs(tmp_path: Path) -> None:
    for scenario in ("zero0", "zero2"):
        run = copy_run(tmp_path, "deepspeed", scenario)
        rows = ckpt_json("list", run)
        assert [(r["name"], r["global_step"], r["layout"], r["status"]) for r in rows] == [
            (f"global_step{s}", s, "deepspeed", "valid") for s in (2, 4, 6)
        ]
        done = ckpt("latest", run)
        assert done.stdout.strip() == str(run / "global_step6") and done.stderr == ""
        assert ckpt("verify", run).returncode == 0
        assert Checkpoint.find_latest(run).global_step == 6


def test_torn_saves_are_incomplete_never_latest_and_kept(tmp_path: Path) -> None:
    for scenario in ("torn-after-model-states", "torn-mid-optim"):
        run = copy_run(tmp_path, "deepspeed", scenario)
        assert statuses(run)["global_step6"] == "incomplete"
        done = ckpt("latest", run)
        assert done.stdout.strip() == str(run / "global_step4")
        assert "global_step6" in done.stderr  # skipped, with a warning
        age(run, 30)
        ckpt("prune", run, "--keep-last", "1", "--yes")
        assert sorted(p.name for p in run.glob("global_step*")) == ["global_step4", "global_step6"]
        ckpt("verify", run / "global_step6", code=3)


def test_a_latest_file_that_names_a_lower_tag_is_a_hint(tmp_path: Path) -> None:
    """Killed before `latest` was rewritten: the highest complete tag is returned, with a
    warning, and the tag `latest` names is kept by retention whatever the rules say."""
    run = copy_run(tmp_path, "deepspeed", "torn-before-latest")
    assert (run / "latest").read_text() == "global_step4"
    done = ckpt("latest", run)
    assert done.stdout.strip() == str(run / "global_step6")
    assert "names global_step4, not global_step6" in done.stderr
    age(run, 30)
    plan = ckpt_json("prune", run, "--keep-last", "1", "--dry-run")["runs"][0]["entries"]
    reasons = {e["name"]: (e["decision"], e["reasons"]) for e in plan}
    assert reasons["global_step4"][0] == "keep"
    assert any("DeepSpeed's latest" in r for r in reasons["global_step4"][1])
    assert reasons["global_step2"][0] == "delete"
    assert reasons["latest"][0] == "skip"  # the pointer file itself is never touched


def test_a_latest_that_leads_outside_the_run_is_never_followed(tmp_path: Path) -> None:
    run = copy_run(tmp_path, "deepspeed", "zero2")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    for text in ("../elsewhere", "/etc", ""):
        (run / "latest").write_text(text)
        done = ckpt("latest", run)
        assert done.stdout.strip() == str(run / "global_step6")
        assert "DeepSpeed's latest" in done.stderr
    (run / "latest").write_text("../elsewhere")
    age(run, 30)
    ckpt("prune", run, "--keep-last", "1", "--yes")
    assert outside.is_dir() and (run / "latest").is_file()


def test_a_custom_tag_is_not_a_step(tmp_path: Path) -> None:
    run = copy_run(tmp_path, "deepspeed", "custom-tag")
    assert set(statuses(run)) >= {"global_step2", "global_step4"}
    assert "mytag" not in {r["name"] for r in ckpt_json("list", run)}
    done = ckpt("latest", run)
    assert done.stdout.strip() == str(run / "global_step4")
    assert "names mytag" in done.stderr


def test_nested_in_trainer_checkpoints(tmp_path: Path) -> None:
    run = copy_run(tmp_path, "deepspeed", "nested-trainer")
    rows = ckpt_json("list", run)
    assert [(r["name"], r["layout"], r["status"]) for r in rows] == [
        (f"checkpoint-{s}", "hf-trainer", "valid") for s in (2, 4, 6)
    ]
    # a nested tag that lost its optimizer shard makes its Trainer checkpoint incomplete
    (run / "checkpoint-6" / "global_step6" / "zero_pp_rank_0_mp_rank_00_optim_states.pt").unlink()
    assert statuses(run)["checkpoint-6"] == "incomplete"
    done = ckpt("latest", run)
    assert done.stdout.strip() == str(run / "checkpoint-4")
    assert "DeepSpeed tag global_step6" in done.stderr


def test_a_nested_tag_of_another_step_is_warned_about(tmp_path: Path) -> None:
    """DeepSpeed counts its own steps (#7405): `checkpoint-4/global_step3`. Made here by
    renaming the real tag and rewriting `latest` as DeepSpeed would have written it."""
    run = copy_run(tmp_path, "deepspeed", "nested-trainer")
    folder = run / "checkpoint-4"
    (folder / "global_step4").rename(folder / "global_step3")
    (folder / "latest").write_text("global_step3")
    row = next(r for r in ckpt_json("list", run) if r["name"] == "checkpoint-4")
    assert row["status"] == "valid"
    assert "global_step3 in a folder of step 4" in row["error"]
    assert "global_step3 in a folder of step 4" in ckpt("load", folder).stdout


def test_list_and_prune_say_what_a_pointer_cannot_be_used_for(tmp_path: Path) -> None:
    run = copy_run(tmp_path, "deepspeed", "zero2")
    (run / "latest").write_text("../elsewhere")
    done = ckpt("list", run)
    assert "DeepSpeed's latest leads outside the run directory" in done.stderr
    assert "global_step6" in done.stdout
    done = ckpt("prune", run, "--keep-last", "5", "--dry-run")
    assert "DeepSpeed's latest leads outside the run directory" in done.stderr


def test_layout_forces_one_reading(tmp_path: Path) -> None:
    run = copy_run(tmp_path, "deepspeed", "zero2")
    assert set(statuses(run, "--layout", "deepspeed").values()) == {"valid"}
    # read as DCP folders, DeepSpeed's tags have no signature: incomplete, never latest
    assert set(statuses(run, "--layout", "dcp").values()) == {"incomplete"}
    done = ckpt("latest", run, "--layout", "dcp", code=1)
    assert "no DCP .metadata" in done.stderr
    ckpt("load", run / "global_step6", "--layout", "deepspeed")
    ckpt("load", run / "global_step6", "--layout", "orbax", code=3)
    ckpt("verify", run, "--layout", "deepspeed")
    age(run, 30)
    plan = ckpt_json("prune", run, "--keep-last", "1", "--layout", "dcp", "--dry-run")
    assert {e["decision"] for e in plan["runs"][0]["entries"] if e["kind"] == "checkpoint"} == {
        "keep"
    }
    done = ckpt("list", run, "--layout", "nope", code=2)
    assert "no layout 'nope'; one of: ckpt, hf-trainer, deepspeed" in done.stderr
