"""Disk full and write failures, for real: a file-size limit (RLIMIT_FSIZE, `ulimit -f`) that
makes write() fail with EFBIG, a small tmpfs that fills up (ENOSPC), a file system remounted
read-only (EROFS), and the free-space check that refuses early.

Each time `save` exits 4 with one clear line, leaves no visible checkpoint and nothing hidden
behind, and the earlier checkpoints are untouched. (SIGXFSZ must be ignored, as a shell's
`trap '' XFSZ` does, or the limit kills the process instead of failing the write.)
"""

from __future__ import annotations

import os
import random
import resource
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from ckpt_cli import Checkpoint
from ckpt_cli.core.errors import CkptFileSystemError

from .conftest import CKPT_BIN
from .faults import leftovers, run_child, snapshot, valid

LIMIT_KB = 1024  # `ulimit -f` counts 1024-byte blocks


def limited(*args: object) -> subprocess.CompletedProcess[str]:
    """`ckpt ARGS` under `ulimit -f 1024` with SIGXFSZ ignored, as a shell script would."""
    script = f'ulimit -f {LIMIT_KB}; trap "" XFSZ; exec "$0" "$@"'
    return subprocess.run(
        ["bash", "-c", script, str(CKPT_BIN), *map(str, args)], capture_output=True, text=True
    )


def random_file(path: Path, size: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(random.Random(size).randbytes(size))
    return path


@pytest.fixture
def run(tmp_path: Path) -> Path:
    """A run with two whole checkpoints (rng_state 1 and 2), each with a small payload."""
    run = tmp_path / "run"
    small = random_file(tmp_path / "small.bin", 10_000)
    for step in (1, 2):
        Checkpoint(epoch=0, global_step=step, best_loss=0.5, rng_state=step).save(
            run / f"checkpoint-{step}", payloads=[small]
        )
    return run


EARLIER = {"checkpoint-1": valid(1), "checkpoint-2": valid(2)}


def assert_clean_failure(done: subprocess.CompletedProcess[str], run: Path, says: str) -> None:
    assert done.returncode == 4, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ckpt: error: ") and says in lines[0], lines
    assert done.stdout == ""


@pytest.mark.parametrize("payload", ["a file", "a folder", "a 100k-float state"])
def test_new_save_that_hits_the_file_size_limit(run: Path, tmp_path: Path, payload: str) -> None:
    big = random_file(tmp_path / "payload" / "model.bin", 3 * LIMIT_KB * 1024)
    args: list[object] = ["save", run, "--step", 5, "--loss", 0.1, "--rng-state", 5]
    if payload == "a file":
        args.append(big)
    elif payload == "a folder":
        args.append(big.parent)
    else:
        state = tmp_path / "state.json"
        state.write_bytes(orjson.dumps([random.random() for _ in range(100_000)]))
        args += ["--optimizer-state", state]
    done = limited(*args)
    assert_clean_failure(
        done, run, f"disk full while saving: {run / 'checkpoint-5'}: File too large"
    )
    assert snapshot(run) == EARLIER
    assert leftovers(run) == []
    # the same save without the limit works
    assert subprocess.run([str(CKPT_BIN), *map(str, args)], capture_output=True).returncode == 0
    assert snapshot(run) == {**EARLIER, "checkpoint-5": valid(5)}


def test_replace_that_hits_the_file_size_limit_keeps_the_old_checkpoint(
    run: Path, tmp_path: Path
) -> None:
    big = random_file(tmp_path / "model.bin", 3 * LIMIT_KB * 1024)
    done = limited("save", run, "--step", 2, "--force", "--loss", 0.1, "--rng-state", 22, big)
    assert_clean_failure(done, run, "disk full while saving")
    assert snapshot(run) == EARLIER
    assert leftovers(run) == []


def test_seal_that_hits_the_file_size_limit_leaves_the_framework_folder_as_it_was(
    run: Path, tmp_path: Path
) -> None:
    folder = run / "checkpoint-5"
    weights = random_file(folder / "weights.bin", 200_000)
    before = weights.read_bytes()
    big = random_file(tmp_path / "extra.bin", 3 * LIMIT_KB * 1024)
    done = limited("save", run, "--step", 5, "--loss", 0.1, "--rng-state", 5, big)
    assert_clean_failure(done, run, "disk full while saving")
    assert sorted(p.name for p in folder.iterdir()) == ["weights.bin"]
    assert weights.read_bytes() == before
    assert snapshot(run) == {**EARLIER, "checkpoint-5": ("incomplete",)}


def test_python_api_raises_a_file_system_error(run: Path, tmp_path: Path) -> None:
    big = random_file(tmp_path / "model.bin", 3 * LIMIT_KB * 1024)

    def save_under_limit() -> int:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT_KB * 1024, LIMIT_KB * 1024))
        try:
            Checkpoint(epoch=0, global_step=5, best_loss=0.5).save(
                run / "checkpoint-5", payloads=[big]
            )
        except CkptFileSystemError as exc:
            print(exc)
            return 4
        return 0

    ended = run_child(save_under_limit)
    assert ended.status == 4, ended.stderr
    assert ended.stdout.startswith("disk full while saving:"), ended.stdout
    assert snapshot(run) == EARLIER and leftovers(run) == []


def test_a_payload_that_cannot_fit_is_refused_before_anything_is_written(
    run: Path, tmp_path: Path
) -> None:
    """A sparse file that claims more bytes than the disk has free: refused by the check
    before the copy starts (no staging folder is ever made)."""
    free = shutil.disk_usage(run).free
    sparse = tmp_path / "huge.bin"
    with open(sparse, "wb") as handle:
        handle.truncate(free + 2**30)
    done = subprocess.run(
        [str(CKPT_BIN), "save", str(run), "--step", "5", "--loss", "0.1", str(sparse)],
        capture_output=True,
        text=True,
    )
    assert_clean_failure(done, run, f"{run}: not enough space: the checkpoint needs")
    assert snapshot(run) == EARLIER and leftovers(run) == []


# ---- a real, small file system -----------------------------------------------------------------


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs, where the machine lets us mount one (root, and mounting permitted)."""
    where = tmp_path / "small-fs"
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(where)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


def test_a_full_file_system(tmpfs: Path, tmp_path: Path) -> None:
    run = tmpfs / "run"
    Checkpoint(epoch=0, global_step=1, best_loss=0.5, rng_state=1).save(
        run / "checkpoint-1", payloads=[random_file(tmp_path / "small.bin", 10_000)]
    )
    # 700 one-byte files: 700 bytes by their sizes, so the early check lets them through,
    # but each takes a 4 KB page of the 2 MB
    shards = tmp_path / "shards"
    shards.mkdir()
    for i in range(700):
        (shards / f"{i:04}.bin").write_bytes(b"x")
    done = subprocess.run(
        [str(CKPT_BIN), "save", str(run), "--step", "5", "--loss", "0.1", str(shards)],
        capture_output=True,
        text=True,
    )
    assert_clean_failure(done, run, "disk full while saving")
    assert "No space left on device" in done.stderr
    assert snapshot(run) == {"checkpoint-1": valid(1)} and leftovers(run) == []
    # reading still works on the full disk, and a save that fits goes through
    latest = subprocess.run([str(CKPT_BIN), "latest", str(run)], capture_output=True, text=True)
    assert latest.returncode == 0 and latest.stdout == f"{run / 'checkpoint-1'}\n"
    fits = subprocess.run(
        [str(CKPT_BIN), "save", str(run), "--step", "5", "--loss", "0.1", "--rng-state", "5"],
        capture_output=True,
        text=True,
    )
    assert fits.returncode == 0, fits.stderr
    assert snapshot(run) == {"checkpoint-1": valid(1), "checkpoint-5": valid(5)}


def test_a_read_only_file_system(tmpfs: Path) -> None:
    run = tmpfs / "run"
    Checkpoint(epoch=0, global_step=1, best_loss=0.5, rng_state=1).save(run / "checkpoint-1")
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    for args in (
        ["save", run, "--step", 5, "--loss", 0.1],
        ["prune", run, "--keep-last", 1, "--yes"],
    ):
        done = subprocess.run([str(CKPT_BIN), *map(str, args)], capture_output=True, text=True)
        assert_clean_failure(done, run, "Read-only file system")
    for args in (["latest", run], ["list", run], ["verify", run], ["load", run / "checkpoint-1"]):
        done = subprocess.run([str(CKPT_BIN), *map(str, args)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    assert snapshot(run) == {"checkpoint-1": valid(1)}
    assert sorted(os.listdir(run)) == [
        ".ckpt.lock",
        "checkpoint-1",
    ]
