"""`prune` on real run directories: what is never touched, stale leftovers, several directories
and globs, the terminal prompt, the lock between save and prune, and a prune killed mid-delete."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ckpt_cli import Checkpoint

from .conftest import CKPT_BIN, invoke, make_checkpoint
from .ptyrun import run_in_pty

DAY = 86400.0


def names(run_dir: Path) -> list[str]:
    return sorted(p.name for p in run_dir.iterdir() if p.name != ".ckpt.lock")


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def plan(run_dir: Path, *rules: str) -> dict[str, tuple[str, list[str]]]:
    result = invoke("prune", str(run_dir), *rules, "--dry-run", "--json")
    assert result.exit_code == 0, result.stderr
    entries = json.loads(result.stdout)["runs"][0]["entries"]
    return {e["name"]: (e["decision"], e["reasons"]) for e in entries}


def test_reasons_name_every_rule_that_keeps(run_dir: Path) -> None:
    for step, loss in ((1000, 0.9), (2000, 0.2), (3000, 0.5), (4000, 0.6)):
        make_checkpoint(run_dir, step, best_loss=loss, loss=loss)
    decisions = plan(run_dir, "--keep-last", "1", "--keep-best", "1", "--keep-every", "2000")
    assert decisions["checkpoint-1000"] == ("delete", ["no rule keeps it"])
    assert decisions["checkpoint-2000"][0] == "keep"
    assert set(decisions["checkpoint-2000"][1]) == {"best 1", "every 2000"}
    assert decisions["checkpoint-3000"] == ("delete", ["no rule keeps it"])
    assert decisions["checkpoint-4000"][0] == "keep"
    assert {"last 1", "every 2000", "latest", "newest save"} == set(decisions["checkpoint-4000"][1])


def test_never_touched_names_symlinks_and_fresh_incomplete(run_dir: Path, tmp_path: Path) -> None:
    for step in (1, 2, 3):
        make_checkpoint(run_dir, step)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.bin").write_text("keep me")
    (run_dir / "checkpoint-0").symlink_to(outside)  # a link with a checkpoint's name
    (run_dir / "best").symlink_to(run_dir / "checkpoint-1")  # a link to a checkpoint
    (run_dir / "notes.txt").write_text("mine")
    (run_dir / "checkpoint-final").mkdir()
    (run_dir / "checkpoint-4").mkdir()  # fresh incomplete: a framework may be writing
    (run_dir / ".checkpoint-5.staging-abc123").mkdir()  # fresh staging: a save in progress
    result = invoke("prune", str(run_dir), "--keep-last", "1", "--yes")
    assert result.exit_code == 0, result.stderr
    assert names(run_dir) == [
        ".checkpoint-5.staging-abc123",
        "best",
        "checkpoint-0",
        "checkpoint-3",
        "checkpoint-4",
        "checkpoint-final",
        "notes.txt",
    ]
    assert (outside / "precious.bin").read_text() == "keep me"
    assert os.path.islink(run_dir / "best")


KEPT = "never deleted without --delete-incomplete (then once older than 1d)"


def test_stale_leftovers_are_removed_and_reported_apart(run_dir: Path) -> None:
    for step in (1, 2):
        make_checkpoint(run_dir, step)
    stale_staging = run_dir / ".checkpoint-9.staging-deadbeef"
    stale_staging.mkdir()
    (stale_staging / "half.bin").write_bytes(b"x" * 10)
    trash = run_dir / ".checkpoint-0.deleting-0123ab"
    trash.mkdir()
    age(stale_staging, 2 * DAY)
    decisions = plan(run_dir, "--keep-last", "5")
    assert decisions[stale_staging.name] == ("delete", ["stale staging"])
    assert decisions[trash.name] == ("delete", ["interrupted deletion"])
    result = invoke("prune", str(run_dir), "--keep-last", "5", "--yes", "--json")
    doc = json.loads(result.stdout)
    assert doc["totals"]["deleted"] == 0 and doc["totals"]["stale_removed"] == 2
    assert names(run_dir) == ["checkpoint-1", "checkpoint-2"]


def test_an_incomplete_folder_is_kept_whatever_its_age(run_dir: Path) -> None:
    """ckpt never deletes what it cannot read: a month-old checkpoint folder without a marker
    may be a framework's; prune keeps it and says how to reclaim it."""
    for step in (1, 2):
        make_checkpoint(run_dir, step)
    foreign = run_dir / "checkpoint-7"
    foreign.mkdir()
    (foreign / "weights.bin").write_bytes(b"w" * 100)
    age(foreign, 30 * DAY)
    assert plan(run_dir, "--keep-last", "1")["checkpoint-7"] == ("keep", ["incomplete", KEPT])
    result = invoke("prune", str(run_dir), "--keep-last", "1", "--yes")
    assert result.exit_code == 0, result.stderr
    assert f"kept {foreign} (incomplete, {KEPT})" in result.stdout.splitlines()
    assert names(run_dir) == ["checkpoint-2", "checkpoint-7"]
    assert (foreign / "weights.bin").read_bytes() == b"w" * 100


def test_delete_incomplete_removes_it_once_stale(run_dir: Path) -> None:
    for step in (1, 2):
        make_checkpoint(run_dir, step)
    old, young = run_dir / "checkpoint-7", run_dir / "checkpoint-8"
    for folder, seconds in ((old, 2 * DAY), (young, 3 * 3600)):
        folder.mkdir()
        (folder / "part.bin").write_bytes(b"p")
        age(folder, seconds)
    rules = ("--keep-last", "5", "--delete-incomplete")
    decisions = plan(run_dir, *rules)
    assert decisions["checkpoint-7"] == ("delete", ["stale incomplete"])
    assert decisions["checkpoint-8"] == ("keep", ["incomplete", "not older than 1d yet"])
    # a shorter --stale-after reaches younger ones; --dry-run showed exactly what goes
    assert plan(run_dir, *rules, "--stale-after", "2h")["checkpoint-8"] == (
        "delete",
        ["stale incomplete"],
    )
    dry = invoke("prune", str(run_dir), *rules, "--dry-run")
    assert f"would delete stale {old} (stale incomplete; 1 B)" in dry.stdout
    assert names(run_dir) == ["checkpoint-1", "checkpoint-2", "checkpoint-7", "checkpoint-8"]
    result = invoke("prune", str(run_dir), *rules, "--yes", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["totals"]["stale_removed"] == 1
    assert names(run_dir) == ["checkpoint-1", "checkpoint-2", "checkpoint-8"]


def test_corrupt_is_kept_unless_delete_incomplete(run_dir: Path) -> None:
    for step in (1, 2, 3):
        make_checkpoint(run_dir, step)
    (run_dir / "checkpoint-2" / "metadata.json").write_text("{ broken")
    assert plan(run_dir, "--keep-last", "1")["checkpoint-2"] == ("keep", ["corrupt", KEPT])
    age(run_dir / "checkpoint-2", 2 * DAY)
    assert plan(run_dir, "--keep-last", "1")["checkpoint-2"] == ("keep", ["corrupt", KEPT])
    assert plan(run_dir, "--keep-last", "1", "--delete-incomplete")["checkpoint-2"] == (
        "delete",
        ["stale corrupt"],
    )


def test_min_age_protects_young_checkpoints(run_dir: Path) -> None:
    for step in (1, 2, 3):
        make_checkpoint(run_dir, step)
    decisions = plan(run_dir, "--keep-last", "1", "--min-age", "2h")
    assert decisions["checkpoint-1"] == ("keep", ["younger than min-age"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--keep-last", "-1"],
            "Invalid value for '--keep-last': Input should be greater than or equal to 0",
        ),
        (
            ["--keep-every", "0"],
            "Invalid value for '--keep-every': Input should be greater than or equal to 1",
        ),
        (["--keep-within", "2 hours"], "--keep-within: invalid duration '2 hours'"),
        (["--keep-last", "1", "--min-age", "soon"], "--min-age: invalid duration 'soon'"),
        (["--keep-last", "1", "--stale-after", "-1h"], "--stale-after: invalid duration '-1h'"),
        (["--min-age", "2h"], "no retention rule given"),
    ],
)
def test_bad_rules_exit_2_and_delete_nothing(run_dir: Path, args: list[str], message: str) -> None:
    for step in (1, 2, 3):
        make_checkpoint(run_dir, step)
    result = invoke("prune", str(run_dir), *args, "--yes")
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("ckpt: error: ") and message in result.stderr
    assert len(names(run_dir)) == 3


def test_globs_several_dirs_and_a_missing_one(tmp_path: Path) -> None:
    runs = [tmp_path / "runs" / name / "checkpoints" for name in ("a", "b")]
    for run in runs:
        run.mkdir(parents=True)
        for step in (1, 2, 3):
            make_checkpoint(run, step)
    missing = tmp_path / "nope"
    result = invoke(
        "prune",
        str(tmp_path / "runs" / "*" / "checkpoints"),
        str(missing),
        "--keep-last",
        "1",
        "--yes",
    )
    assert result.exit_code == 4
    assert f"ckpt: error: {missing}: no such run directory" in result.stderr
    for run in runs:
        assert names(run) == ["checkpoint-3"]
    nothing = invoke("prune", str(tmp_path / "zzz*"), "--keep-last", "1", "--yes")
    assert nothing.exit_code == 4
    assert f"{tmp_path / 'zzz*'}: no run directory matches" in nothing.stderr


def test_recursive_finds_run_dirs(tmp_path: Path) -> None:
    deep = tmp_path / "root" / "team" / "exp1" / "checkpoints"
    deep.mkdir(parents=True)
    for step in (1, 2, 3):
        make_checkpoint(deep, step)
    result = invoke("prune", str(tmp_path / "root"), "--recursive", "--keep-last", "2", "--yes")
    assert result.exit_code == 0, result.stderr
    assert names(deep) == ["checkpoint-2", "checkpoint-3"]


def test_terminal_prompt_yes_and_no(run_dir: Path) -> None:
    for step in (1, 2, 3):
        make_checkpoint(run_dir, step)
    code, screen = run_in_pty([str(CKPT_BIN), "prune", str(run_dir), "--keep-last", "2"], b"n\n")
    assert code != 0 and "Delete 1 folder(s)?" in screen
    assert len(names(run_dir)) == 3
    code, screen = run_in_pty([str(CKPT_BIN), "prune", str(run_dir), "--keep-last", "2"], b"y\n")
    assert code == 0, screen
    assert names(run_dir) == ["checkpoint-2", "checkpoint-3"]


def test_no_terminal_refuses_without_yes(run_dir: Path) -> None:
    for step in (1, 2):
        make_checkpoint(run_dir, step)
    done = subprocess.run(
        [str(CKPT_BIN), "prune", str(run_dir), "--keep-last", "1"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert done.stderr == (
        "ckpt: error: refusing to delete without --yes when not on a terminal "
        "(use --dry-run to see the plan)\n"
    )
    assert len(names(run_dir)) == 2


HOLD_LOCK = """
import sys, time
from pathlib import Path
from ckpt_cli.storage.locking import run_lock
with run_lock(Path(sys.argv[1]), None):
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
print("released", time.time(), flush=True)
"""


def _hold_lock(run_dir: Path, seconds: float) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(run_dir), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
    return holder


def test_lock_timeout_exits_5(run_dir: Path) -> None:
    make_checkpoint(run_dir, 1)
    holder = _hold_lock(run_dir, 30)
    try:
        for args in (
            ["prune", str(run_dir), "--keep-last", "1", "--yes", "--lock-timeout", "0.3"],
            ["save", str(run_dir), "--step", "2", "--loss", "1", "--lock-timeout", "0.3"],
        ):
            done = subprocess.run([str(CKPT_BIN), *args], capture_output=True, text=True)
            assert done.returncode == 5, done.stderr
            assert done.stderr == (
                f"ckpt: error: {run_dir}: another ckpt save or prune held the lock "
                "for more than 0.3s\n"
            )
        assert not (run_dir / "checkpoint-2").exists()
    finally:
        holder.kill()
        holder.communicate()


def test_save_and_prune_exclude_each_other(run_dir: Path) -> None:
    """A save that arrives while a prune holds the lock waits for it, and vice versa."""
    for step in (1, 2, 3):
        make_checkpoint(run_dir, step)
    holder = _hold_lock(run_dir, 1.5)
    save = subprocess.Popen(
        [str(CKPT_BIN), "save", str(run_dir), "--step", "4", "--loss", "1", "--keep-last", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    save.communicate(timeout=60)
    assert save.returncode == 0
    finished = time.time()
    assert holder.stdout is not None
    released = float(holder.stdout.readline().split()[1])
    holder.communicate()
    assert finished >= released  # the save could only commit once the holder let go
    assert names(run_dir) == ["checkpoint-4"]


def test_prune_killed_mid_delete_leaves_no_fake_checkpoint(run_dir: Path) -> None:
    for step in range(1, 7):
        folder = make_checkpoint(run_dir, step)
        (folder / "weights.bin").write_bytes(os.urandom(4096))
    env = dict(os.environ, CKPT_FAULT_AT="delete:after-rename:2")
    done = subprocess.run(
        [str(CKPT_BIN), "prune", str(run_dir), "--keep-last", "2", "--yes"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == -9
    for name in names(run_dir):
        if name.startswith("checkpoint-"):
            Checkpoint.load(run_dir / name)  # every visible checkpoint is whole
    leftovers = [n for n in names(run_dir) if n.startswith(".checkpoint-")]
    assert len(leftovers) == 1 and ".deleting-" in leftovers[0]
    again = invoke("prune", str(run_dir), "--keep-last", "2", "--yes", "--json")
    assert again.exit_code == 0
    assert names(run_dir) == ["checkpoint-5", "checkpoint-6"]
    reasons = [e["reasons"] for e in json.loads(again.stdout)["runs"][0]["entries"]]
    assert ["interrupted deletion"] in reasons


def _build_run(run_dir: Path, layout: list[tuple[int, str, float, float]], now: float) -> None:
    """Make a run directory on disk: (step, kind, loss, age in hours) per entry."""
    for step, kind, loss, hours in layout:
        name = f"checkpoint-{step}"
        if kind == "valid":
            folder = make_checkpoint(run_dir, step, best_loss=loss, loss=loss)
            meta = folder / "metadata.json"
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(now - hours * 3600))
            doc = json.loads(meta.read_text())
            doc["ckpt"]["saved_at"] = stamp
            meta.write_text(json.dumps(doc, indent=2))
        elif kind == "incomplete":
            folder = run_dir / name
            folder.mkdir(exist_ok=True)
        else:
            folder = run_dir / f".checkpoint-{step}.staging-{step:06x}"
            folder.mkdir()
        then = now - hours * 3600
        os.utime(folder, (then, then))


entries = st.lists(
    st.tuples(
        st.integers(0, 60).map(lambda s: s * 100),
        st.sampled_from(["valid", "valid", "valid", "incomplete", "staging"]),
        st.floats(0.01, 5.0),
        st.floats(0, 24 * 21),
    ),
    max_size=14,
    unique_by=lambda e: e[0],
)
rules = st.fixed_dictionaries(
    {},
    optional={
        "keep_last": st.integers(0, 5),
        "keep_best": st.integers(0, 3),
        "keep_every": st.integers(1, 1000),
        "keep_within": st.floats(0, 24 * 3600 * 7),
        "keep_daily": st.integers(0, 5),
        "keep_weekly": st.integers(0, 3),
        "min_age": st.floats(0, 24 * 3600 * 3),
    },
).filter(lambda d: any(k.startswith("keep") for k in d))


@settings(max_examples=40, deadline=None)
@given(layout=entries, policy_args=rules)
def test_dry_run_plan_is_exactly_what_a_real_run_deletes(
    tmp_path_factory: pytest.TempPathFactory,
    layout: list[tuple[int, str, float, float]],
    policy_args: dict[str, float],
) -> None:
    from ckpt_cli.core.retention import RetentionPolicy
    from ckpt_cli.ops.prune import prune_run_dir

    run_dir = tmp_path_factory.mktemp("run")
    now = time.time()
    _build_run(run_dir, layout, now)
    policy = RetentionPolicy(**policy_args, stale_after=3 * 24 * 3600)  # type: ignore[arg-type]
    planned = prune_run_dir(run_dir, policy, dry_run=True, now=now)
    before = set(names(run_dir))
    real = prune_run_dir(run_dir, policy, now=now)
    after = set(names(run_dir))
    assert [e.record.name for e in planned.plan.entries] == [
        e.record.name for e in real.plan.entries
    ]
    assert [e.decision for e in planned.plan.entries] == [e.decision for e in real.plan.entries]
    assert {e.record.name for e in planned.deleted} == before - after
    assert not real.failed
    # what stays is whole: every visible checkpoint name loads or is knowingly incomplete
    valid_left = [
        n for n in after if n.startswith("checkpoint-") and (run_dir / n / "metadata.json").exists()
    ]
    for name in valid_left:
        Checkpoint.load(run_dir / name)
    # the latest valid checkpoint survives any policy
    valid_steps = [s for s, kind, _, _ in layout if kind == "valid"]
    if valid_steps:
        assert f"checkpoint-{max(valid_steps)}" in after


def test_save_keep_rules_prune_after_the_commit(run_dir: Path) -> None:
    losses = {100: 0.9, 200: 0.3, 300: 0.5, 400: 0.6, 500: 0.7}
    for step, loss in losses.items():
        result = invoke(
            "save",
            str(run_dir),
            "--step",
            str(step),
            "--loss",
            str(loss),
            "--keep-last",
            "1",
            "--keep-best",
            "1",
            "--keep-every",
            "400",
        )
        assert result.exit_code == 0, result.stderr
    assert names(run_dir) == ["checkpoint-200", "checkpoint-400", "checkpoint-500"]
    assert result.stderr.endswith("kept 3, deleted 0, stale removed 0, skipped 0, freed 0 B\n")
    assert result.stdout == f"{run_dir / 'checkpoint-500'}\n"  # stdout stays the path alone


def test_remove_tree_counts_regular_files_and_never_follows_links(tmp_path: Path) -> None:
    """atomic.remove_tree removes everything below the folder in one pass and returns the bytes
    of its regular files: links are unlinked (not counted, not followed), FIFOs removed."""
    from ckpt_cli.storage import atomic

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.bin").write_bytes(b"k" * 1000)
    trash = tmp_path / ".checkpoint-1.deleting-abc"
    (trash / "a" / "b" / "c").mkdir(parents=True)
    (trash / "model.bin").write_bytes(b"m" * 100)
    (trash / "a" / "shard.bin").write_bytes(b"s" * 20)
    (trash / "a" / "b" / "c" / "deep.bin").write_bytes(b"d" * 3)
    (trash / "a" / "empty").mkdir()
    (trash / "a" / "link-to-outside").symlink_to(outside, target_is_directory=True)
    (trash / "file-link").symlink_to(outside / "keep.bin")
    os.mkfifo(trash / "a" / "fifo")
    assert atomic.remove_tree(trash) == 123
    assert not trash.exists() and not trash.is_symlink()
    assert (outside / "keep.bin").read_bytes() == b"k" * 1000
