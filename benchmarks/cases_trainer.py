"""`make bench` cases for runs that the Hugging Face Trainer wrote (run.py calls them).

- 6: `list --json` over 100 Trainer checkpoints of a long run (logging every step, eval
  every 100, a save every 200: the last trainer_state.json holds 20,000+ history entries,
  about 4 MB), against an orjson loop over the same files.
- 8: `latest` on a Trainer run of 100,000 folders: how many trainer_state.json it reads.

The states are written the Trainer's way (`json.dumps(..., indent=2, sort_keys=True)`, as
`TrainerState.save_to_json` does), from a synthetic history.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

STATE_FLOOR = """import os, sys, orjson
run = sys.argv[1]
for name in os.listdir(run):
    with open(os.path.join(run, name, "trainer_state.json"), "rb") as handle:
        orjson.loads(handle.read())
"""


def trainer_state(step: int, history: list[dict[str, Any]], best: int) -> bytes:
    doc = {
        "best_global_step": best,
        "best_metric": 0.25,
        "best_model_checkpoint": f"out/checkpoint-{best}",
        "epoch": step / 500,
        "eval_steps": 100,
        "global_step": step,
        "is_hyper_param_search": False,
        "is_local_process_zero": True,
        "is_world_process_zero": True,
        "log_history": history,
        "logging_steps": 1,
        "max_steps": 20_000,
        "num_input_tokens_seen": 0,
        "num_train_epochs": 40,
        "save_steps": 200,
        "stateful_callbacks": {},
        "total_flos": 0.0,
        "train_batch_size": 8,
        "trial_name": None,
        "trial_params": None,
    }
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


def build_trainer_run(run: Path, saves: int, *, every: int = 200) -> int:
    """`saves` checkpoints of one long run; returns the size of the largest state."""
    run.mkdir(parents=True)
    history: list[dict[str, Any]] = []
    largest = 0
    for step in range(1, saves * every + 1):
        history.append(
            {
                "epoch": step / 500,
                "grad_norm": 1.0 / step,
                "learning_rate": 5e-5,
                "loss": 2.0 / (1 + step / 1000),
                "step": step,
            }
        )
        if step % 100 == 0:
            history.append({"epoch": step / 500, "eval_loss": 1.0 + step / 1e5, "step": step})
        if step % every == 0:
            folder = run / f"checkpoint-{step}"
            folder.mkdir()
            data = trainer_state(step, history, best=every)
            (folder / "trainer_state.json").write_bytes(data)
            (folder / "model.safetensors").write_bytes(b"w" * 64)
            largest = max(largest, len(data))
    return largest


def build_sparse_trainer_run(run: Path, count: int) -> None:
    """`count` small Trainer checkpoints (latest at 100,000 reads one: it lists, then reads)."""
    run.mkdir(parents=True)
    for index in range(count):
        step = (index + 1) * 10
        folder = f"{run}/checkpoint-{step}"
        os.mkdir(folder)
        with open(f"{folder}/trainer_state.json", "wb") as handle:
            handle.write(trainer_state(step, [{"loss": 0.5, "step": step}], best=10))


def trainer_cases(
    tmp: Path,
    py: str,
    ckpt: str,
    repeats: int,
    interleaved: Callable[..., Any],
    process_job: Callable[..., Any],
    result: Callable[..., Any],
    med: Callable[[Any], str],
    mib: Callable[[int], str],
    quick: bool,
    count_opens: str,
) -> list[Any]:
    """Cases 6 and 8; `count_opens` is run.py's script that counts the metadata.json files
    `ckpt` opens, here made to count trainer_state.json."""
    run = tmp / "trainer"
    saves = 10 if quick else 100
    largest = build_trainer_run(run, saves)
    floor = tmp / "state_floor.py"
    floor.write_text(STATE_FLOOR)
    samples = interleaved(
        {
            "floor: python loop, orjson.loads of every trainer_state.json": process_job(
                [py, str(floor), str(run)]
            ),
            "ckpt list --json": process_job([ckpt, "list", "--json", str(run)]),
        },
        repeats,
    )
    floor_s, ours = samples.values()
    ratio = ours.median / floor_s.median
    total = sum(p.stat().st_size for p in run.glob("*/trainer_state.json"))
    listed = [(name, med(s), mib(s.peak)) for name, s in samples.items()]
    list_case = result(
        f"6. list --json, {saves} Trainer checkpoints",
        listed,
        ratio,
        "≤ 0.25×",
        ratio <= 0.25,
        [
            f"The largest trainer_state.json is {largest / 1e6:.1f} MB; all {saves} hold "
            f"{total / 1e6:.0f} MB. list reads each one's head and the end of its history "
            "since the checkpoint before it; the lowest step's whole.",
        ],
    )
    sparse = tmp / "trainer-100k"
    count = 1000 if quick else 100_000
    build_sparse_trainer_run(sparse, count)
    counter = tmp / "count_state_reads.py"
    counter.write_text(count_opens.replace('"metadata.json"', '"trainer_state.json"'))
    done = subprocess.run(
        [py, str(counter), "latest", str(sparse)], capture_output=True, text=True, check=False
    )
    opened = int(done.stderr.rsplit("OPENED ", 1)[1].split()[0])
    latest_case = result(
        f"8. latest on a Trainer run of {count:,} folders",
        [("trainer_state.json files opened", str(opened), "-")],
        float(opened),
        "≤ 3 files read",
        opened <= 3 and done.stdout.strip().endswith(f"checkpoint-{count * 10}"),
        [f"It printed {done.stdout.strip().rsplit('/', 1)[-1]}."],
    )
    return [list_case, latest_case]
