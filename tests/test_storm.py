"""A storm on one run directory: processes saving with --keep-last (one through the Python API),
processes pruning, and readers running latest, load and list in a loop, all at once.

Zero tracebacks; every save and prune succeeds; a reader never reads a half-made or mixed
checkpoint (what load returns is exactly what was saved at that step), never gets "nothing
found" once a save has finished, and gets "no such checkpoint" only for one that a prune
deleted after latest named it; at the end the highest saved step is there and is latest,
every checkpoint is whole, nothing hidden is left, and the retention rule holds (a dry run
plans no deletion).

`make test` runs it for a few seconds; `make stress` (CKPT_STRESS=1) for minutes. It is bounded
by time and by a number of operations, and stops by itself.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from ckpt_cli import Checkpoint, CheckpointConfig

from .faults import ckpt_in_process, folder_state, join, leftovers, snapshot, spawn
from .test_faults import STRESS

SECONDS = float(os.environ.get("CKPT_STORM_SECONDS", "150" if STRESS else "3"))
MAX_OPS = 100_000 if STRESS else 400  # per worker: a bound besides the time
SAVERS = 3


def state_for(step: int) -> list[float]:
    """The optimizer state saved at `step`: a reader can tell a mixed or torn one."""
    return [step + i / 8 for i in range(64)]


def payload_for(step: int) -> bytes:
    return step.to_bytes(8, "little") * 2048


class Log:
    """One JSON line per operation: what ran, when (CLOCK_MONOTONIC, shared by all processes),
    and how it ended."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, op: str, args: list[Any], run: Callable[[], tuple[int, str, str]]) -> int:
        start = time.monotonic()
        code, out, err = run()
        entry = {
            "op": op,
            "args": [str(a) for a in args],
            "code": code,
            "out": out[-4000:],
            "err": err[-4000:],
            "start": start,
            "end": time.monotonic(),
            "pid": os.getpid(),
        }
        with open(self.path, "a") as handle:
            handle.write(json.dumps(entry) + "\n")
        return code

    def entries(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.path.read_text().splitlines()]


def saver(
    run: Path, work: Path, log: Log, index: int, deadline: float, keep: int
) -> Callable[[], None]:
    def loop() -> None:
        rng = random.Random(index)
        work.mkdir(parents=True, exist_ok=True)
        step, done = index + 1, []
        for count in range(MAX_OPS):
            if time.monotonic() > deadline:
                break
            target = step
            extra: list[object] = []
            if done and count % 5 == 4:  # now and then, save an earlier step again
                target = rng.choice(done)
                extra = ["--force"]
            payload = work / f"w-{target}.bin"
            payload.write_bytes(payload_for(target))
            state = work / f"state-{target}.json"
            state.write_bytes(orjson.dumps(state_for(target)))
            args: list[object] = [
                "save",
                run,
                "--step",
                target,
                "--loss",
                1.0 / (1 + target),
                "--rng-state",
                target,
                "--optimizer-state",
                state,
                "--keep-last",
                keep,
                "--lock-timeout",
                60,
                *extra,
                payload,
            ]
            if log("save", args, lambda a=args: ckpt_in_process(*a)) == 0 and not extra:
                done.append(step)
            if not extra:
                step += SAVERS + 1

    return loop


def api_saver(run: Path, log: Log, deadline: float, keep: int) -> Callable[[], None]:
    """Checkpoint.save and Checkpoint.cleanup_old, as a training loop would call them."""

    def loop() -> None:
        step = SAVERS + 1
        for _ in range(MAX_OPS):
            if time.monotonic() > deadline:
                break

            def save(step: int = step) -> tuple[int, str, str]:
                Checkpoint(
                    epoch=0,
                    global_step=step,
                    best_loss=1.0 / (1 + step),
                    optimizer_state=state_for(step),
                    rng_state=step,
                    loss=1.0 / (1 + step),
                ).save(run / f"checkpoint-{step}", lock_timeout=60)
                Checkpoint.cleanup_old(CheckpointConfig(output_dir=run, max_checkpoints=keep))
                return 0, "", ""

            log("save", ["api", "--step", step], save)
            step += SAVERS + 1

    return loop


def pruner(run: Path, log: Log, deadline: float, keep: int) -> Callable[[], None]:
    def loop() -> None:
        for _ in range(MAX_OPS):
            if time.monotonic() > deadline:
                break
            args: list[object] = ["prune", run, "--keep-last", keep, "--yes", "--lock-timeout", 60]
            log("prune", args, lambda args=args: ckpt_in_process(*args))

    return loop


def reader(run: Path, log: Log, deadline: float) -> Callable[[], None]:
    def loop() -> None:
        for count in range(MAX_OPS):
            if time.monotonic() > deadline:
                break
            if count % 4 == 3:
                log("list", ["list", run, "--json"], lambda: ckpt_in_process("list", run, "--json"))
                continue
            latest: list[str] = []

            def find(latest: list[str] = latest) -> tuple[int, str, str]:
                result = ckpt_in_process("latest", run)
                latest.append(result[1].strip())
                return result

            if log("latest", ["latest", run], find) == 0:
                path = latest[0]
                log(
                    "load",
                    ["load", path, "--json"],
                    lambda path=path: ckpt_in_process("load", path, "--json"),
                )

    return loop


def check_log(entries: list[dict[str, Any]]) -> list[str]:
    """Every way the logged operations went wrong."""
    problems = []
    saved = [e for e in entries if e["op"] == "save" and e["code"] == 0]
    first_saved = min((e["end"] for e in saved), default=float("inf"))
    for e in entries:
        where = f"{e['op']} {' '.join(e['args'][1:])} (pid {e['pid']})"
        if "Traceback" in e["err"] or "internal error" in e["err"]:
            problems.append(f"{where}: {e['err']}")
        elif e["op"] in ("save", "prune") and e["code"] != 0:
            problems.append(f"{where}: exit {e['code']}: {e['err']}")
        elif e["op"] == "latest" and e["code"] != 0:
            if not (e["code"] == 1 and e["start"] < first_saved):
                problems.append(f"{where}: exit {e['code']} after a save had finished: {e['err']}")
        elif e["op"] == "load":
            problems += check_load(where, e)
        elif e["op"] == "list":
            if e["code"] != 0:
                problems.append(f"{where}: exit {e['code']}: {e['err']}")
            else:
                for item in json.loads(e["out"]):
                    if item["status"] not in ("valid", "staging"):
                        problems.append(f"{where}: {item['name']} listed as {item['status']}")
    return problems


def check_load(where: str, e: dict[str, Any]) -> list[str]:
    if e["code"] == 4 and "no such checkpoint folder" in e["err"]:
        return []  # pruned after latest named it: a clean miss, not a bad read
    if e["code"] != 0:
        return [f"{where}: exit {e['code']}: {e['err']}"]
    doc = json.loads(e["out"])
    step = int(Path(doc["path"]).name.removeprefix("checkpoint-"))
    if (doc["global_step"], doc["rng_state"], doc["optimizer_state"]) != (
        step,
        step,
        state_for(step),
    ):
        return [f"{where}: read a checkpoint-{step} that is not what was saved: {doc}"]
    return []


@pytest.mark.timeout(SECONDS * 3 + 120)
@pytest.mark.parametrize("keep", [1, 3])
def test_storm(tmp_path: Path, keep: int) -> None:
    run = tmp_path / "run"
    run.mkdir()
    log = Log(tmp_path / "log.jsonl")
    deadline = time.monotonic() + SECONDS
    workers = [saver(run, tmp_path / f"saver-{i}", log, i, deadline, keep) for i in range(SAVERS)]
    workers.append(api_saver(run, log, deadline, keep))
    workers += [pruner(run, log, deadline, keep) for _ in range(2)]
    workers += [reader(run, log, deadline) for _ in range(2)]
    pids = [spawn(work) for work in workers]
    codes = [join(pid, SECONDS * 3 + 60) for pid in pids]
    assert codes == [0] * len(codes)

    entries = log.entries()
    problems = check_log(entries)
    assert not problems, "\n".join(problems[:20])
    counts = {
        op: sum(1 for e in entries if e["op"] == op)
        for op in ("save", "prune", "latest", "load", "list")
    }
    assert counts["save"] >= 8 and counts["prune"] >= 2 and counts["load"] >= 2, counts

    saved_steps = [
        int(e["args"][e["args"].index("--step") + 1])
        for e in entries
        if e["op"] == "save" and e["code"] == 0
    ]
    highest = max(saved_steps)
    states = snapshot(run)
    assert states[f"checkpoint-{highest}"] == ("valid", highest)
    assert all(state[0] == "valid" for state in states.values()), states
    assert leftovers(run) == []
    code, out, _ = ckpt_in_process("latest", run)
    assert (code, out) == (0, f"{run / f'checkpoint-{highest}'}\n")
    code, out, err = ckpt_in_process("prune", run, "--keep-last", keep, "--dry-run", "--json")
    assert code == 0, err
    assert (
        json.loads(out)["totals"]["deleted"] == 0
        and json.loads(out)["totals"]["stale_removed"] == 0
    )
    assert len(states) <= keep + 1  # the last keep steps, and the newest save if it is older
    for name in states:
        assert folder_state(run / name)[0] == "valid"


# ---- the two races the storm found, pinned down ------------------------------------------------


def test_latest_lists_again_when_a_listed_folder_is_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """latest listed checkpoint-4; a save of 6 and its --keep-last 1 prune ran before it read
    it. The listing is stale: latest must list again and find 6, not report nothing found."""
    from ckpt_cli.ops.latest import find_latest
    from ckpt_cli.storage.local import LocalBackend

    run = tmp_path / "run"
    for step in (5, 6):
        Checkpoint(epoch=0, global_step=step, best_loss=0.5).save(run / f"checkpoint-{step}")
    real = LocalBackend.names
    listings: list[list[str]] = []

    def stale_first(backend: LocalBackend, run_dir: Path) -> list[str]:
        listings.append(["checkpoint-4"] if not listings else real(backend, run_dir))
        return listings[-1]

    monkeypatch.setattr(LocalBackend, "names", stale_first)
    warnings: list[str] = []
    folder, meta = find_latest(run, warnings.append)
    assert (folder.name, meta.global_step, warnings) == ("checkpoint-6", 6, [])
    assert len(listings) == 2


def test_list_leaves_out_a_folder_deleted_while_it_lists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ckpt_cli.layouts.ckpt import CkptLayout
    from ckpt_cli.ops.scan import scan

    run = tmp_path / "run"
    for step in (5, 6):
        Checkpoint(epoch=0, global_step=step, best_loss=0.5).save(run / f"checkpoint-{step}")
    real = CkptLayout.summary

    def pruned_meanwhile(layout: CkptLayout, backend: Any, folder: Path, entry: Any) -> object:
        if folder.name == "checkpoint-5":
            shutil.rmtree(folder)
        return real(layout, backend, folder, entry)

    monkeypatch.setattr(CkptLayout, "summary", pruned_meanwhile)
    assert [(r.name, r.status) for r in scan(run)] == [("checkpoint-6", "valid")]


def test_a_path_argument_is_not_prechecked_by_the_command_line_parser(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Typer checked a path with stat, then access: a checkpoint pruned in between (the storm
    hit it after minutes) was a usage error, 'path ... is not readable', exit 2. Here access
    says no, as it does for a folder deleted after the stat: the core must decide alone."""
    run = tmp_path / "run"
    folder = Checkpoint(epoch=0, global_step=5, best_loss=0.5).save(run / "checkpoint-5")
    monkeypatch.setattr(os, "access", lambda *args, **kwargs: False)
    for args in (["load", folder], ["verify", folder], ["latest", run], ["list", run]):
        code, _, err = ckpt_in_process(*args)
        assert code == 0, (args, err)
