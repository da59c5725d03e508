"""Every command on an object store behaves as on a local folder, against a real SeaweedFS.

Most tests run twice, on a local run directory and on `s3://<fresh bucket>/runs/exp7`, with
the same assertions: that is the contract (DESIGN.md, "Beyond one machine"). The rest are about
what only an object store has: the commit protocol without rename under kill -9, the lock
object, credentials and endpoints, the optional extra, and the cost in requests.
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ckpt_cli import Checkpoint, CheckpointConfig, LockTimeoutError
from ckpt_cli.core.paths import ObjectPath

from .conftest import CKPT_BIN, S3Bucket, invoke
from .seaweed import SeaweedServer


class Place:
    """A run directory, local or on S3, with the few raw operations the tests need to set up
    what a crash or a framework would leave behind."""

    def __init__(self, url: str, fs: Any = None, root: Path | None = None) -> None:
        self.url = url
        self.fs = fs
        self.root = root

    def __str__(self) -> str:
        return self.url

    def sub(self, relative: str) -> str:
        return f"{self.url}/{relative}"

    def write(self, relative: str, data: bytes) -> None:
        if self.root is not None:
            path = self.root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        else:
            self.fs.pipe_file(self.sub(relative), data)

    def read(self, relative: str) -> bytes:
        if self.root is not None:
            return (self.root / relative).read_bytes()
        return bytes(self.fs.cat_file(self.sub(relative)))

    def exists(self, relative: str) -> bool:
        if self.root is not None:
            return (self.root / relative).exists()
        return bool(self.fs.exists(self.sub(relative)))

    def names(self) -> list[str]:
        """Top-level entries, hidden ones (the lock) left out."""
        if self.root is not None:
            found = [p.name for p in self.root.iterdir()]
        else:
            try:
                found = [p.rstrip("/").rsplit("/", 1)[-1] for p in self.fs.ls(self.url)]
            except FileNotFoundError:
                found = []
        return sorted(n for n in found if not n.startswith("."))

    def hidden(self) -> list[str]:
        if self.root is not None:
            return sorted(p.name for p in self.root.iterdir() if p.name.startswith("."))
        found = [p.rstrip("/").rsplit("/", 1)[-1] for p in self.fs.ls(self.url)]
        return sorted(n for n in found if n.startswith("."))


@pytest.fixture(params=["local", "s3"])
def place(request: pytest.FixtureRequest, tmp_path: Path) -> Place:
    if request.param == "local":
        root = tmp_path / "run"
        return Place(str(root), root=root)
    bucket: S3Bucket = request.getfixturevalue("s3_bucket")
    return Place(f"{bucket.url}/runs/exp7", fs=request.getfixturevalue("s3_admin"))


@pytest.fixture
def s3_place(s3_bucket: S3Bucket, s3_admin: Any) -> Place:
    return Place(f"{s3_bucket.url}/runs/exp7", fs=s3_admin)


def ok(*args: str) -> str:
    result = invoke(*args)
    assert result.exit_code == 0, result.stderr
    return result.stdout


def error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def payload(tmp_path: Path, name: str = "model.bin", data: bytes = b"w" * 3000) -> Path:
    path = tmp_path / "payload" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# ---- the same behaviour, local and on S3 -----------------------------------------------------


def test_save_latest_list_load_verify(place: Place, tmp_path: Path) -> None:
    weights = payload(tmp_path)
    shards = tmp_path / "payload" / "shards"
    shards.mkdir()
    (shards / "0.bin").write_bytes(b"a" * 10)
    (shards / "1.bin").write_bytes(b"b" * 20)
    out = ok("save", place.url, "--step", "10", "--loss", "0.5", str(weights), str(shards))
    assert out == f"{place.sub('checkpoint-10')}\n"
    ok("save", place.url, "--step", "20", "--loss", "0.3", "--epoch", "1", str(weights))
    ok("save", place.url, "--step", "30", "--loss", "0.4", "--rng-state", "7")

    assert place.read("checkpoint-10/model.bin") == weights.read_bytes()
    assert place.read("checkpoint-10/shards/1.bin") == b"b" * 20
    assert ok("latest", place.url) == f"{place.sub('checkpoint-30')}\n"
    assert ok("latest", place.url, "--field", "best_loss") == "0.3\n"
    assert ok("load", place.sub("checkpoint-30"), "--field", "epoch") == "1\n"
    assert ok("load", place.sub("checkpoint-30/metadata.json"), "--field", "rng_state") == "7\n"
    manifest = json.loads(ok("load", place.sub("checkpoint-10"), "--field", "manifest"))
    assert [(m["path"], m["size"]) for m in manifest] == [
        ("model.bin", 3000),
        ("shards/0.bin", 10),
        ("shards/1.bin", 20),
    ]
    assert all(len(m["sha256"]) == 64 for m in manifest)

    listed = json.loads(ok("list", place.url, "--json"))
    assert [(e["name"], e["status"], e["markers"]) for e in listed] == [
        ("checkpoint-10", "valid", []),
        ("checkpoint-20", "valid", ["best"]),
        ("checkpoint-30", "valid", ["latest"]),
    ]
    assert listed[0]["path"] == place.sub("checkpoint-10")
    assert listed[0]["size"] > 3030 and listed[2]["size"] < 1000
    plain = ok("list", place.url).splitlines()
    assert plain[0].split() == ["step", "epoch", "loss", "best_loss", "size", "age", "status",
                                "markers", "name", "layout"]  # fmt: skip
    assert ok("verify", place.url).splitlines() == [
        f"ok      {place.sub(f'checkpoint-{step}')}" for step in (10, 20, 30)
    ]
    loaded = Checkpoint.load(place.sub("checkpoint-20"))
    assert (loaded.epoch, loaded.global_step, loaded.loss) == (1, 20, 0.3)
    assert str(loaded.path) == place.sub("checkpoint-20")
    assert place.hidden() in ([], [".ckpt.lock"])  # locally the lock file stays, on S3 it goes


def test_incomplete_and_corrupt_are_skipped(place: Place) -> None:
    ok("save", place.url, "--step", "10", "--loss", "0.5")
    ok("save", place.url, "--step", "20", "--loss", "0.4")
    place.write("checkpoint-30/model.bin", b"half a save")  # no marker: incomplete
    place.write("checkpoint-40/metadata.json", b"{")  # a corrupt marker
    place.write("notes.txt", b"not a checkpoint")

    result = invoke("latest", place.url)
    assert result.exit_code == 0
    assert result.stdout == f"{place.sub('checkpoint-20')}\n"
    assert result.stderr.splitlines() == [
        f"ckpt: warning: skipping invalid metadata in {place.sub('checkpoint-40/metadata.json')}: "
        "not valid JSON (unexpected end of data: line 1 column 2 (char 1))",
        f"ckpt: warning: skipping {place.sub('checkpoint-30')}: incomplete checkpoint, "
        "no metadata.json (a save in progress or a crash)",
    ]
    listed = json.loads(ok("list", place.url, "--json"))
    assert [(e["name"], e["status"]) for e in listed] == [
        ("checkpoint-10", "valid"),
        ("checkpoint-20", "valid"),
        ("checkpoint-30", "incomplete"),
        ("checkpoint-40", "corrupt"),
    ]
    result = invoke("load", place.sub("checkpoint-30"))
    assert result.exit_code == 3
    assert error_line(result.stderr) == (
        f"ckpt: error: {place.sub('checkpoint-30')}: incomplete checkpoint, no metadata.json "
        "(a save in progress or a crash)"
    )
    result = invoke("load", place.sub("checkpoint-40"))
    assert result.exit_code == 3
    assert "not valid JSON" in error_line(result.stderr)
    result = invoke("load", place.sub("checkpoint-99"))
    assert result.exit_code == 4
    assert error_line(result.stderr) == (
        f"ckpt: error: {place.sub('checkpoint-99')}: no such checkpoint folder"
    )
    result = invoke("verify", place.url)
    assert result.exit_code == 3
    assert error_line(result.stderr) == "ckpt: error: 2 of 4 checkpoints failed verification"


def test_the_prune_plan_and_its_result(place: Place) -> None:
    for step, loss in ((1000, 0.9), (2000, 0.2), (3000, 0.5), (4000, 0.6), (5000, 0.7)):
        ok("save", place.url, "--step", str(step), "--loss", str(loss))
    place.write("checkpoint-6000/model.bin", b"abandoned")  # an incomplete leftover
    place.write("notes.txt", b"mine")

    rules = ["--keep-last", "1", "--keep-best", "1", "--keep-every", "3000"]
    plan = json.loads(ok("prune", place.url, *rules, "--dry-run", "--json"))
    decisions = {
        e["name"]: (e["decision"], sorted(e["reasons"])) for e in plan["runs"][0]["entries"]
    }
    assert decisions == {
        "checkpoint-1000": ("delete", ["no rule keeps it"]),
        "checkpoint-2000": ("keep", ["best 1"]),
        "checkpoint-3000": ("keep", ["every 3000"]),
        "checkpoint-4000": ("delete", ["no rule keeps it"]),
        "checkpoint-5000": ("keep", ["last 1", "latest", "newest save"]),
        "checkpoint-6000": (
            "keep",
            ["incomplete", "never deleted without --delete-incomplete (then once older than 1d)"],
        ),
        "notes.txt": ("skip", ["not a checkpoint"]),
    }
    assert plan["runs"][0]["run_dir"] == place.url
    assert place.names() == [f"checkpoint-{s}" for s in range(1000, 7000, 1000)] + ["notes.txt"]

    # however stale, a folder ckpt cannot read stays without --delete-incomplete
    result = invoke("prune", place.url, *rules, "--stale-after", "0s", "--yes", "--json")
    assert result.exit_code == 0, result.stderr
    done = json.loads(result.stdout)
    assert done["totals"]["deleted"] == 2 and done["totals"]["stale_removed"] == 0
    assert done["totals"]["bytes_freed"] > 0
    assert place.names() == [
        "checkpoint-2000",
        "checkpoint-3000",
        "checkpoint-5000",
        "checkpoint-6000",
        "notes.txt",
    ]
    forced = [*rules, "--stale-after", "0s", "--delete-incomplete", "--yes", "--json"]
    done = json.loads(ok("prune", place.url, *forced))
    assert done["totals"]["deleted"] == 0 and done["totals"]["stale_removed"] == 1
    assert place.names() == ["checkpoint-2000", "checkpoint-3000", "checkpoint-5000", "notes.txt"]
    assert ok("latest", place.url) == f"{place.sub('checkpoint-5000')}\n"


def test_seal_force_and_keep_rules_on_save(place: Place, tmp_path: Path) -> None:
    place.write("checkpoint-50/weights.bin", b"framework wrote this")
    result = invoke("save", place.url, "--step", "50", "--loss", "0.5", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["outcome"] == "sealed"
    manifest = Checkpoint.load(place.sub("checkpoint-50")).manifest
    assert manifest is not None and [m.path for m in manifest] == ["weights.bin"]

    result = invoke("save", place.url, "--step", "50", "--loss", "0.1")
    assert result.exit_code == 2
    assert error_line(result.stderr) == (
        f"ckpt: error: {place.sub('checkpoint-50')}: a checkpoint already exists at this step "
        "(use --force to replace it)"
    )
    new = payload(tmp_path, "extra.bin", b"new")
    result = invoke(
        "save", place.url, "--step", "50", "--loss", "0.1", "--force", "--json", str(new)
    )
    assert json.loads(result.stdout)["outcome"] == "replaced"
    replaced = Checkpoint.load(place.sub("checkpoint-50"))
    assert replaced.loss == 0.1
    assert replaced.manifest is not None
    assert [m.path for m in replaced.manifest] == ["extra.bin", "weights.bin"]

    for step in (60, 70):
        ok("save", place.url, "--step", str(step), "--loss", "0.2", "--keep-last", "2")
    assert place.names() == ["checkpoint-60", "checkpoint-70"]


def test_verify_finds_a_changed_payload(place: Place, tmp_path: Path) -> None:
    ok("save", place.url, "--step", "1", "--loss", "0.5", str(payload(tmp_path)))
    place.write("checkpoint-1/model.bin", b"x" * 3000)  # same size, other bytes
    place.write("checkpoint-1/stray.bin", b"?")
    result = invoke("verify", place.sub("checkpoint-1"))
    assert result.exit_code == 3
    assert result.stdout.splitlines() == [
        f"FAILED  {place.sub('checkpoint-1')}: model.bin: content changed (sha256 differs)",
        f"FAILED  {place.sub('checkpoint-1')}: stray.bin: extra (not in the manifest)",
    ]
    assert error_line(result.stderr) == (
        f"ckpt: error: {place.sub('checkpoint-1')}: model.bin: content changed (sha256 differs)"
    )


def test_missing_run_and_empty_run(place: Place) -> None:
    for command in ("latest", "list"):
        result = invoke(command, place.sub("nothing-here"))
        assert result.exit_code == 4
        assert error_line(result.stderr).startswith(
            f"ckpt: error: {place.sub('nothing-here')}: no such run directory"
        )
    place.write("notes.txt", b"not a checkpoint")
    result = invoke("latest", place.url)
    assert result.exit_code == 1
    assert error_line(result.stderr) == f"ckpt: error: {place.url}: no valid checkpoint"


def test_python_api(place: Place) -> None:
    config = CheckpointConfig(output_dir=place.url, max_checkpoints=2)
    for step in (100, 200, 300):
        Checkpoint(epoch=1, global_step=step, best_loss=0.5, optimizer_state=[0.1, 0.2],
                   rng_state=12345).save(config.checkpoint_path(step))  # fmt: skip
    latest = Checkpoint.find_latest(place.url)
    assert (latest.global_step, latest.optimizer_state, latest.rng_state) == (
        300,
        [0.1, 0.2],
        12345,
    )
    assert str(latest.path) == place.sub("checkpoint-300")
    assert str(config.checkpoint_path(7)) == place.sub("checkpoint-7")
    place.write("checkpoint-50/weights.bin", b"another tool wrote this")  # no marker
    deleted = Checkpoint.cleanup_old(config)
    assert [str(p) for p in deleted] == [place.sub("checkpoint-100")]
    # what ckpt cannot read is kept, and never counts toward max_checkpoints
    assert place.names() == ["checkpoint-200", "checkpoint-300", "checkpoint-50"]


def test_a_trainer_run_on_the_store(place: Place) -> None:
    """The Hugging Face Trainer's folders (the real fixture's files) read, protected and sealed
    by the same code on an object store as on a disk."""
    fixture = Path(__file__).parent / "fixtures" / "hf_trainer" / "complete"
    for path in sorted(fixture.rglob("*")):
        if path.is_file():
            place.write(path.relative_to(fixture).as_posix(), path.read_bytes())
    place.write("checkpoint-70/config.json", b"{}")  # a torn save: no trainer_state.json
    rows = {r["global_step"]: r for r in json.loads(ok("list", place.url, "--json"))}
    assert [rows[s]["layout"] for s in (10, 60)] == ["hf-trainer", "hf-trainer"]
    assert rows[70]["status"] == "incomplete"
    assert rows[20]["loss"] == pytest.approx(0.2736125588417053)
    assert rows[60]["best_loss"] == pytest.approx(0.2736125588417053)
    assert ok("latest", place.url) == f"{place.sub('checkpoint-60')}\n"
    doc = json.loads(ok("load", place.sub("checkpoint-20"), "--json"))
    assert (doc["epoch_exact"], doc["best_global_step"]) == (2.5, 20)
    plan = json.loads(ok("prune", place.url, "--keep-last", "1", "--dry-run", "--json"))
    decisions = {e["name"]: (e["decision"], e["reasons"]) for e in plan["runs"][0]["entries"]}
    assert decisions["checkpoint-20"] == ("keep", ["Trainer's best"])
    assert decisions["checkpoint-70"][0] == "keep"  # what ckpt cannot read stays
    assert [n for n, (d, _) in decisions.items() if d == "delete"] == [
        "checkpoint-10",
        "checkpoint-30",
        "checkpoint-40",
        "checkpoint-50",
    ]
    sealed = json.loads(ok("save", place.url, "--step", "20", "--json"))
    assert (sealed["outcome"], sealed["best_loss"]) == ("sealed", pytest.approx(0.2736125588417053))
    assert json.loads(ok("verify", place.sub("checkpoint-20"), "--json"))["ok"] is True
    assert (
        place.read("checkpoint-20/trainer_state.json")
        == (fixture / "checkpoint-20" / "trainer_state.json").read_bytes()
    )


# ---- a URL is never a local path ---------------------------------------------------------------


def test_no_local_folder_is_ever_created_for_a_url(
    s3_bucket: S3Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    run = f"{s3_bucket.url}/runs/exp7"
    ok("save", run, "--step", "1", "--loss", "0.5")
    for args in (
        ["latest", run],
        ["list", run],
        ["load", f"{run}/checkpoint-1"],
        ["verify", run],
        ["prune", run, "--keep-last", "1", "--yes"],
        ["prune", f"{s3_bucket.url}/runs/*", "--keep-last", "1", "--dry-run"],
    ):
        assert invoke(*args).exit_code == 0, args
    Checkpoint(epoch=0, global_step=2, best_loss=0.1).save(f"{run}/checkpoint-2")
    result = invoke("latest", "s3:/bucket/run")  # a slash missing
    assert result.exit_code == 2
    assert error_line(result.stderr) == (
        "ckpt: error: s3:/bucket/run: looks like a URL with a slash missing (write s3://...)"
    )
    result = invoke("save", run, "--step", "3", "--loss", "1", f"{s3_bucket.url}/model.bin")
    assert result.exit_code == 2
    assert error_line(result.stderr) == (
        f"ckpt: error: {s3_bucket.url}/model.bin: a payload must be a local file or folder, "
        "not a URL"
    )
    assert os.listdir(work) == []
    assert not Path("s3:").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["latest", "s3://b/run"],
        ["list", "s3://b/run"],
        ["load", "s3://b/run/checkpoint-1"],
        ["verify", "s3://b/run"],
        ["prune", "s3://b/run", "--keep-last", "1", "--yes"],
        ["save", "s3://b/run", "--step", "1", "--loss", "0.5"],
    ],
)
def test_without_the_extra_a_url_says_what_to_install(
    args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "fsspec", None)  # as if not installed: import fails
    monkeypatch.setitem(sys.modules, "s3fs", None)
    result = invoke(*args)
    assert result.exit_code == 2
    url = args[1]
    assert error_line(result.stderr) == (
        f"ckpt: error: {url}: object-store URLs need the s3 extra: pip install 'ckpt-cli[s3]'"
    )
    assert os.listdir(tmp_path) == []


def test_memory_protocol_in_process(tmp_path: Path) -> None:
    """Any fsspec protocol, not only S3: memory:// (one process) through the CLI and the API."""
    run = "memory://ckpt-tests/" + os.urandom(4).hex()
    ok("save", run, "--step", "5", "--loss", "0.5", str(payload(tmp_path)))
    ok("save", run, "--step", "6", "--loss", "0.4")
    assert ok("latest", run) == f"{run}/checkpoint-6\n"
    assert ok("verify", f"{run}/checkpoint-5") == f"ok      {run}/checkpoint-5\n"
    ok("prune", run, "--keep-last", "1", "--yes")
    assert [e["name"] for e in json.loads(ok("list", run, "--json"))] == ["checkpoint-6"]
    assert Checkpoint.find_latest(run).global_step == 6


def test_file_urls_are_local_paths(tmp_path: Path) -> None:
    run = tmp_path / "run"
    ok("save", f"file://{run}", "--step", "1", "--loss", "0.5")
    assert (run / "checkpoint-1" / "metadata.json").is_file()
    assert ok("latest", f"file://{run}") == f"{run / 'checkpoint-1'}\n"


# ---- kill -9 mid-save, mid-replace, mid-prune --------------------------------------------------


def ckpt(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CKPT_BIN), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


@pytest.mark.parametrize("fault", ["remote:payload-uploaded:2", "remote:before-metadata"])
def test_kill_9_mid_save_leaves_latest_whole(s3_place: Place, tmp_path: Path, fault: str) -> None:
    run = s3_place.url
    ok("save", run, "--step", "10", "--loss", "0.5")
    files = [str(payload(tmp_path, f"shard-{i}.bin", bytes([i]) * 100)) for i in range(3)]
    killed = ckpt("save", run, "--step", "20", "--loss", "0.4", *files,
                  env={"CKPT_FAULT_AT": fault})  # fmt: skip
    assert killed.returncode == -9, killed.stderr
    assert s3_place.exists("checkpoint-20/shard-0.bin")  # payload went up, the marker did not
    assert not s3_place.exists("checkpoint-20/metadata.json")
    assert ok("latest", run) == f"{run}/checkpoint-10\n"
    statuses = [(e["name"], e["status"]) for e in json.loads(ok("list", run, "--json"))]
    assert statuses == [("checkpoint-10", "valid"), ("checkpoint-20", "incomplete")]
    assert s3_place.hidden() == [".ckpt.lock"]  # the killed save's lock: abandoned, not released

    # the next save would take the abandoned lock over after its TTL (see
    # test_an_abandoned_lock_is_taken_over); the test does not wait a minute for it
    s3_place.fs.rm_file(s3_place.sub(".ckpt.lock"))
    ok("save", run, "--step", "20", "--loss", "0.4", *files)  # seals what was left, completes it
    assert ok("latest", run) == f"{run}/checkpoint-20\n"
    assert ok("verify", f"{run}/checkpoint-20") == f"ok      {run}/checkpoint-20\n"


def test_kill_9_mid_replace_never_leaves_a_mixed_checkpoint(
    s3_place: Place, tmp_path: Path
) -> None:
    run = s3_place.url
    ok("save", run, "--step", "10", "--loss", "0.5")
    ok("save", run, "--step", "20", "--loss", "0.4", str(payload(tmp_path, "a.bin", b"old")))
    new = payload(tmp_path, "a.bin", b"new!")
    killed = ckpt("save", run, "--step", "20", "--loss", "0.3", "--force", str(new),
                  env={"CKPT_FAULT_AT": "remote:payload-uploaded"})  # fmt: skip
    assert killed.returncode == -9
    # the old marker went first: step 20 is incomplete, never old metadata over new payload
    assert not s3_place.exists("checkpoint-20/metadata.json")
    assert ok("latest", run) == f"{run}/checkpoint-10\n"


def test_kill_9_mid_prune_leaves_no_half_deleted_checkpoint(
    s3_place: Place, tmp_path: Path
) -> None:
    run = s3_place.url
    for step in (1, 2, 3):
        ok("save", run, "--step", str(step), "--loss", "0.5", str(payload(tmp_path)))
    killed = ckpt("prune", run, "--keep-last", "1", "--yes",
                  env={"CKPT_FAULT_AT": "remote:delete:after-marker"})  # fmt: skip
    assert killed.returncode == -9
    assert not s3_place.exists("checkpoint-1/metadata.json")
    assert s3_place.exists("checkpoint-1/model.bin")  # half deleted: no marker, so not valid
    assert s3_place.exists("checkpoint-1/.ckpt-deleting")  # and condemned before the marker went
    statuses = [(e["name"], e["status"]) for e in json.loads(ok("list", run, "--json"))]
    assert statuses == [("checkpoint-2", "valid"), ("checkpoint-3", "valid")]
    assert ok("latest", run) == f"{run}/checkpoint-3\n"
    s3_place.fs.rm_file(s3_place.sub(".ckpt.lock"))  # the killed prune's lock
    # an interrupted deletion is finished by the next prune, whatever its age
    plan = json.loads(ok("prune", run, "--keep-last", "1", "--dry-run", "--json"))
    decisions = {e["name"]: (e["decision"], e["reasons"]) for e in plan["runs"][0]["entries"]}
    assert decisions["checkpoint-1"] == ("delete", ["interrupted deletion"])
    result = invoke("prune", run, "--keep-last", "1", "--yes")
    assert result.exit_code == 0, result.stderr
    assert s3_place.names() == ["checkpoint-3"]


def test_kill_9_right_after_condemning_and_a_save_over_a_condemned_folder(
    s3_place: Place, tmp_path: Path
) -> None:
    run = s3_place.url
    for step in (1, 2):
        ok("save", run, "--step", str(step), "--loss", "0.5", str(payload(tmp_path)))
    killed = ckpt("prune", run, "--keep-last", "1", "--yes",
                  env={"CKPT_FAULT_AT": "remote:delete:after-tombstone"})  # fmt: skip
    assert killed.returncode == -9
    assert s3_place.exists("checkpoint-1/metadata.json")  # the marker has not gone yet
    assert ok("latest", run) == f"{run}/checkpoint-2\n"
    s3_place.fs.rm_file(s3_place.sub(".ckpt.lock"))
    # a save of that step finishes the deletion first: nothing old is sealed into the new one
    new = payload(tmp_path, "other.bin", b"n" * 10)
    doc = json.loads(ok("save", run, "--step", "1", "--loss", "0.4", str(new), "--json"))
    assert doc["outcome"] == "saved"
    loaded = json.loads(ok("load", s3_place.sub("checkpoint-1"), "--json"))
    assert [m["path"] for m in loaded["manifest"]] == ["other.bin"]
    assert not s3_place.exists("checkpoint-1/.ckpt-deleting")
    assert not s3_place.exists("checkpoint-1/model.bin")


# ---- the lock object ---------------------------------------------------------------------------

HOLD = """
import sys, time
from ckpt_cli.storage.objects import ObjectStoreBackend
from ckpt_cli.core.paths import ObjectPath
run = ObjectPath.parse(sys.argv[1])
with ObjectStoreBackend(run).lock(run, timeout=30):
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def test_lock_timeout_exits_5_and_a_released_lock_is_gone(s3_place: Place) -> None:
    run = s3_place.url
    ok("save", run, "--step", "1", "--loss", "0.5")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, run, "2.5"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        started = time.monotonic()
        result = invoke("prune", run, "--keep-last", "1", "--yes", "--lock-timeout", "0.5")
        assert result.exit_code == 5
        line = error_line(result.stderr)
        assert line.startswith(f"ckpt: error: {run}: another ckpt save or prune (")
        assert line.endswith(") held the lock for more than 0.5s")
        assert time.monotonic() - started < 2.5
        # waits for the holder, then saves
        assert ok("save", run, "--step", "2", "--loss", "0.4", "--lock-timeout", "30")
    finally:
        holder.communicate(timeout=30)
    assert holder.returncode == 0
    assert s3_place.hidden() == []  # released by delete
    assert ok("latest", run) == f"{run}/checkpoint-2\n"


CONTEND = """
import sys, time
from ckpt_cli.storage.objects import ObjectStoreBackend
from ckpt_cli.core.paths import ObjectPath
run = ObjectPath.parse(sys.argv[1])
for _ in range(3):
    with ObjectStoreBackend(run).lock(run, timeout=60):
        start = time.time()
        time.sleep(0.2)
        print(f"{start} {time.time()}", flush=True)
"""


def test_the_lock_excludes_concurrent_processes(s3_place: Place) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CONTEND, s3_place.url], stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    spans = []
    for proc in procs:
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0
        spans += [tuple(map(float, line.split())) for line in out.splitlines()]
    assert len(spans) == 6
    spans.sort()
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert start >= end, "two holders at once"


def test_an_abandoned_lock_is_taken_over(s3_place: Place) -> None:
    from ckpt_cli.storage.objects import ObjectStoreBackend

    run = ObjectPath.parse(s3_place.url)
    expired = {"owner": "gone:1:x", "acquired_at": 0, "expires_at": time.time() - 3600}
    s3_place.write(".ckpt.lock", json.dumps(expired).encode())
    with ObjectStoreBackend(run).lock(run, timeout=5):  # expired long ago: taken over at once
        held = json.loads(s3_place.read(".ckpt.lock"))
        assert held["owner"] != "gone:1:x"
        with pytest.raises(LockTimeoutError):
            with ObjectStoreBackend(run).lock(run, timeout=0.5):
                pass
    # a holder killed a moment ago: its lock still looks fresh; taken over after the TTL
    fresh = {"owner": "killed:2:y", "acquired_at": time.time(), "expires_at": time.time() + 1}
    s3_place.write(".ckpt.lock", json.dumps(fresh).encode())
    started = time.monotonic()
    with ObjectStoreBackend(run).lock(run, timeout=10, ttl=1.0):
        assert json.loads(s3_place.read(".ckpt.lock"))["owner"] != "killed:2:y"
    assert 0.9 < time.monotonic() - started < 5
    assert s3_place.hidden() == []


def test_a_held_lock_is_renewed(s3_place: Place) -> None:
    from ckpt_cli.storage.objects import ObjectStoreBackend

    run = ObjectPath.parse(s3_place.url)
    with ObjectStoreBackend(run).lock(run, timeout=5, ttl=0.6):
        first = json.loads(s3_place.read(".ckpt.lock"))["expires_at"]
        time.sleep(1.0)
        assert json.loads(s3_place.read(".ckpt.lock"))["expires_at"] > first
        with pytest.raises(LockTimeoutError):  # renewed: never looks abandoned to a waiter
            with ObjectStoreBackend(run).lock(run, timeout=1.5, ttl=0.6):
                pass


# ---- credentials, buckets, endpoints -----------------------------------------------------------

COMMANDS = [
    ["latest", "{run}"],
    ["list", "{run}"],
    ["load", "{run}/checkpoint-1"],
    ["verify", "{run}"],
    ["prune", "{run}", "--keep-last", "1", "--yes"],
    ["save", "{run}", "--step", "2", "--loss", "0.5"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_wrong_credentials_exit_4_in_one_line(
    command: list[str], s3_place: Place, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok("save", s3_place.url, "--step", "1", "--loss", "0.5")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    result = invoke(*[a.format(run=s3_place.url) for a in command])
    assert result.exit_code == 4, result.stderr
    line = error_line(result.stderr)
    assert line.startswith("ckpt: error: ") and s3_place.url in line
    assert "access denied" in line and "signature we calculated does not match" in line
    assert line.endswith("(check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)")


def test_missing_bucket_exits_4(s3_bucket: S3Bucket) -> None:
    for args in (["latest", "s3://no-such-bucket-ckpt/run"], ["list", "s3://no-such-bucket-ckpt/run"],
                 ["load", "s3://no-such-bucket-ckpt/run/checkpoint-1"]):  # fmt: skip
        result = invoke(*args)
        assert result.exit_code == 4
        assert error_line(result.stderr) == f"ckpt: error: {args[1]}: no such bucket"


def test_unreachable_endpoint_exits_4_within_a_minute(
    s3_bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed when the block ends: connections are refused
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    started = time.monotonic()
    result = invoke("latest", f"{s3_bucket.url}/run")
    elapsed = time.monotonic() - started
    assert result.exit_code == 4
    assert result.stderr.startswith(
        f"ckpt: error: {s3_bucket.url}/run: cannot reach the object store "
        f'(Could not connect to the endpoint URL: "http://127.0.0.1:{port}/'
    )
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert elapsed < 60


def test_a_profile_instead_of_keys(
    seaweed: SeaweedServer, tmp_path: Path, s3_bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AWS_PROFILE with a credentials file, and no AWS_ACCESS_KEY_ID in sight."""
    creds = tmp_path / "credentials"
    creds.write_text(
        f"[ckpt-test]\naws_access_key_id = {seaweed.access_key}\n"
        f"aws_secret_access_key = {seaweed.secret_key}\n"
    )
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_PROFILE", "ckpt-test")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    run = f"{s3_bucket.url}/runs/profile"
    assert ok("save", run, "--step", "3", "--loss", "0.2") == f"{run}/checkpoint-3\n"
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    result = invoke("latest", run)
    assert result.exit_code == 4
    assert error_line(result.stderr).startswith(f"ckpt: error: {run}: ")


# ---- globs and several run prefixes ----------------------------------------------------------


def test_prune_globs_and_recursive_on_s3(s3_bucket: S3Bucket) -> None:
    base = f"{s3_bucket.url}/runs"
    for run in ("a", "b"):
        for step in (1, 2, 3):
            ok("save", f"{base}/{run}/checkpoints", "--step", str(step), "--loss", "0.5")
    plan = json.loads(ok("prune", f"{base}/*/checkpoints", "--keep-last", "1", "--dry-run",
                         "--json"))  # fmt: skip
    assert [r["run_dir"] for r in plan["runs"]] == [
        f"{base}/a/checkpoints",
        f"{base}/b/checkpoints",
    ]
    assert plan["totals"]["deleted"] == 4
    done = json.loads(ok("prune", base, "--recursive", "--keep-last", "2", "--yes", "--json"))
    assert [r["run_dir"] for r in done["runs"]] == [
        f"{base}/a/checkpoints",
        f"{base}/b/checkpoints",
    ]
    assert done["totals"]["deleted"] == 2
    result = invoke("prune", f"{base}/*/nothing", "--keep-last", "1", "--yes")
    assert result.exit_code == 4
    assert error_line(result.stderr) == f"ckpt: error: {base}/*/nothing: no run directory matches"


# ---- cost: requests at 1,000 checkpoints -------------------------------------------------------


@pytest.fixture
def requests_sent(monkeypatch: pytest.MonkeyPatch) -> Iterator[collections.Counter[str]]:
    """Counts every HTTP request the commands send, by S3 operation (a botocore event hook on
    each filesystem ckpt creates)."""
    from ckpt_cli.storage import fsspec_support, object_store

    sent: collections.Counter[str] = collections.Counter()

    def count(event_name: str, **_: Any) -> None:
        sent[event_name.rsplit(".", 1)[-1]] += 1

    hooked: set[int] = set()

    def counting_filesystem(target: ObjectPath) -> Any:
        fs = fsspec_support.filesystem(target)
        if id(fs) not in hooked:  # filesystems are reused within a process
            fs.connect()
            fs.s3.meta.events.register("before-send.s3", count)
            hooked.add(id(fs))
        return fs

    monkeypatch.setattr(object_store, "filesystem", counting_filesystem)
    yield sent


def seed_checkpoints(place: Place, count: int) -> None:
    """`count` valid checkpoints, written straight to the store (one PUT each)."""
    doc = textwrap.dedent("""\
        {{"epoch": 0, "global_step": {step}, "best_loss": 0.5, "optimizer_state": [],
          "rng_state": null, "ckpt": {{"format": 1, "saved_at": "2026-01-01T00:00:00Z"}}}}""")
    place.fs.pipe({place.sub(f"checkpoint-{s}/metadata.json"): doc.format(step=s).encode()
                   for s in range(count)})  # fmt: skip


def test_requests_per_command(s3_place: Place, requests_sent: collections.Counter[str]) -> None:
    """What each command costs in requests (benchmarks/s3_requests.py: the same at 1,000)."""
    n = 60
    seed_checkpoints(s3_place, n)

    def cost(*args: str) -> dict[str, int]:
        requests_sent.clear()
        ok(*args)
        return dict(requests_sent)

    # never one request per checkpoint to find out what exists: one listing, one read
    assert cost("latest", s3_place.url) == {"ListObjectsV2": 1, "GetObject": 1}
    assert cost("load", s3_place.sub("checkpoint-50")) == {"GetObject": 1}
    # list reads every marker, as it reads every metadata.json locally
    assert cost("list", s3_place.url, "--json") == {"ListObjectsV2": 1, "GetObject": n}
    assert cost("prune", s3_place.url, "--keep-last", "50", "--dry-run") == {
        "ListObjectsV2": 1,
        "GetObject": n,
    }
    # an existence check, the lock (create, release), one listing, every marker, then per
    # deleted checkpoint its tombstone and its marker, then the tombstones in one bulk delete
    # and the emptied folders in another
    assert cost("prune", s3_place.url, "--keep-last", "50", "--yes") == {
        "ListObjectsV2": 2,
        "PutObject": 1 + 10,
        "GetObject": n,
        "DeleteObject": 10 + 1,
        "DeleteObjects": 2,
    }
    assert len(json.loads(ok("list", s3_place.url, "--json"))) == 50
    # a save: lock, latest (list + read), what is at the step (list), payload, marker, release
    assert cost("save", s3_place.url, "--step", "100", "--loss", "0.1") == {
        "PutObject": 2,
        "ListObjectsV2": 2,
        "GetObject": 1,
        "DeleteObject": 1,
    }


def test_a_holder_whose_lock_was_taken_over_stops(s3_place: Place) -> None:
    from ckpt_cli.storage.object_lock import LockLostError
    from ckpt_cli.storage.objects import ObjectStoreBackend

    run = ObjectPath.parse(s3_place.url)
    with ObjectStoreBackend(run).lock(run, timeout=5, ttl=0.6) as lock:
        # another process took it over (as after a stall longer than the TTL)
        thief = {"owner": "thief:3:z", "acquired_at": time.time(), "expires_at": time.time() + 60}
        s3_place.write(".ckpt.lock", json.dumps(thief).encode())
        time.sleep(0.5)  # the next renewal finds an ETag that is not its own
        with pytest.raises(LockLostError, match="lost the run lock"):
            lock.check()
    # released without deleting the new holder's lock
    assert json.loads(s3_place.read(".ckpt.lock"))["owner"] == "thief:3:z"


def test_move_uploads_then_removes_the_local_payload(s3_place: Place, tmp_path: Path) -> None:
    weights = payload(tmp_path)
    ok("save", s3_place.url, "--step", "1", "--loss", "0.5", "--move", str(weights))
    assert not weights.exists()
    assert s3_place.read("checkpoint-1/model.bin") == b"w" * 3000


def test_list_on_a_terminal_draws_the_table_for_a_url(s3_place: Place) -> None:
    from .ptyrun import run_in_pty

    for step, loss in ((1, 0.5), (2, 0.3)):
        ok("save", s3_place.url, "--step", str(step), "--loss", str(loss))
    code, shown = run_in_pty([str(CKPT_BIN), "list", s3_place.url], env={"NO_COLOR": "1"})
    assert code == 0, shown
    assert s3_place.url in shown
    assert "┃" in shown or "│" in shown  # rich's table, not the pipe's plain columns
    assert "latest" in shown and "best" in shown


def _upload(place: Place, fixture: Path) -> None:
    for path in sorted(fixture.rglob("*")):
        if path.is_file() and not path.is_symlink():
            place.write(path.relative_to(fixture).as_posix(), path.read_bytes())


def test_orbax_runs_on_the_store_by_the_object_store_rule(s3_place: Place) -> None:
    """Orbax writes in place on an object store with commit_success.txt last: the real torn
    commit-file save, valid on a local disk (tests/test_layout_orbax.py), is incomplete here
    and kept."""
    place = s3_place
    fixtures = Path(__file__).parent / "fixtures" / "orbax"
    _upload(place, fixtures / "torn-commit-file")
    rows = {r["name"]: r for r in json.loads(ok("list", place.url, "--json"))}
    assert {n: r["status"] for n, r in rows.items()} == {
        "10": "valid",
        "20": "valid",
        "30": "incomplete",
    }
    assert rows["20"]["layout"] == "orbax" and rows["20"]["loss"] == pytest.approx(1.18501, 1e-4)
    assert ok("latest", place.url) == f"{place.sub('20')}\n"
    plan = json.loads(ok("prune", place.url, "--keep-last", "1", "--dry-run", "--json"))
    decisions = {e["name"]: e["decision"] for e in plan["runs"][0]["entries"]}
    assert decisions == {"10": "delete", "20": "keep", "30": "keep"}


def test_lightning_files_on_the_store(place: Place) -> None:
    """Checkpoints that are objects, not prefixes: listed, found latest and deleted."""
    fixture = Path(__file__).parent / "fixtures" / "lightning" / "metric-names" / "checkpoints"
    _upload(place, fixture)
    rows = json.loads(ok("list", place.url, "--json"))
    assert [(r["global_step"], r["layout"]) for r in rows] == [
        (s, "lightning") for s in (8, 16, 24, 32)
    ]
    latest = "epoch=3-step=32-val_loss=0.2417.ckpt"
    assert ok("latest", place.url) == f"{place.sub(latest)}\n"
    assert json.loads(ok("verify", place.sub(latest), "--json"))["ok"] is True
    ok("prune", place.url, "--keep-last", "2", "--yes")
    assert place.names() == ["epoch=2-step=24-val_loss=0.2588.ckpt", latest]


def test_a_dcp_run_on_the_store(place: Place) -> None:
    fixture = Path(__file__).parent / "fixtures" / "dcp" / "torn-metadata-tmp" / "checkpoint"
    _upload(place, fixture)
    rows = {r["name"]: r["status"] for r in json.loads(ok("list", place.url, "--json"))}
    assert rows == {
        "step-0": "valid",
        "step-10": "valid",
        "step-20": "valid",
        "step-30": "incomplete",
    }
    assert ok("latest", place.url) == f"{place.sub('step-20')}\n"
    assert json.loads(ok("verify", place.sub("step-20"), "--json"))["ok"] is True
