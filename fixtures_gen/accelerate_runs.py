"""Record checkpoint folders written by the real Hugging Face Accelerate ``Accelerator.save_state``.

Run as ``.venv-fixtures/bin/python fixtures_gen/accelerate_runs.py --out
tests/fixtures/accelerate`` inside ``.venv-fixtures/``, whose pinned versions are in
``fixtures_gen/requirements-accelerate.txt``.
Nothing here is imported by the ckpt test suite; the suite only reads what this script leaves in
``tests/fixtures/accelerate/``.

Every scenario trains the same tiny model for real (``torch`` on the CPU, ``Accelerator(cpu=True,
gradient_accumulation_steps=2)``, AdamW, ``LinearLR``, a shuffled ``DataLoader`` of 8 batches per
epoch) with the usual loop (``with accelerator.accumulate(model): ... accelerator.backward(loss)
...``) and calls ``accelerator.save_state`` every 2 optimizer steps (5 saves in 10 optimizer steps,
i.e. 20 batches, 2.5 epochs). Nothing in the scenario folders is written, edited or faked by this
script: the only interference is in the torn scenarios, where the process is killed with SIGKILL
part-way through the 4th save, and in ``torn-mid-model`` the model file is first left half-written.

A ``TrainingProgress`` object (``state_dict()`` = ``{"global_step", "epoch", "last_loss"}``) is
registered with ``accelerator.register_for_checkpointing`` in every scenario; Accelerate saves it
as ``custom_checkpoint_0.pkl``.

The order of writes, read from the installed accelerate (1.15.0) source:
``Accelerator.save_state`` (accelerate/accelerator.py) with ``automatic_checkpoint_naming``:
``os.makedirs(<project_dir>/checkpoints)``; rotation, on the main process, BEFORE the new save: if
``len(os.listdir(checkpoints)) + 1 > total_limit``, every entry of ``checkpoints/`` (files too) is
sorted by the first integer of its name (``re.findall(r"[\\/]?([0-9]+)(?=[^\\/]*$)", path)[0]``,
an IndexError for a name without digits) and the first ``len + 1 - total_limit`` are removed with
``shutil.rmtree``; then ``checkpoint_<iteration>`` (a save counter, not the training step) must not
exist (ValueError otherwise); ``wait_for_everyone()``; ``os.makedirs(output_dir)``. Then
``save_accelerator_state`` (accelerate/checkpointing.py) writes, in this order:

1. ``model.safetensors`` (``model_<i>.safetensors`` for more models): ``accelerate.utils.save``
   -> ``safetensors.torch.save_file`` (``safe_save_file``, metadata ``{"format": "pt"}``), main
   process;
2. ``optimizer.bin`` (``optimizer_<i>.bin``): ``accelerate.utils.save`` -> ``torch.save``, main
   process;
3. ``scheduler.bin`` (``scheduler_<i>.bin``): the same;
4. ``sampler.bin`` only for an ``IterableDatasetShard`` with a ``SeedableRandomSampler``, and
   ``dl_state_dict.bin`` only with ``use_stateful_dataloader`` (neither here);
5. ``scaler.pt`` only with a GradScaler (not here);
6. ``random_states_<process_index>.pkl``: ``torch.save`` called directly, by EVERY process (a torch
   zip archive despite the name: ``step``, ``random_state``, ``numpy_random_seed``,
   ``torch_manual_seed``);

then, back in ``save_state``, ``custom_checkpoint_<i>.pkl`` for each registered object
(``save_custom_state`` -> ``accelerate.utils.save`` -> ``torch.save`` of ``obj.state_dict()``),
and ``project_configuration.iteration += 1``. Every file is written in place under its final name:
no temporary file, no rename, no fsync, no marker.

Scenarios
---------
``auto-naming/``
    ``ProjectConfiguration(project_dir="auto-naming", automatic_checkpoint_naming=True,
    total_limit=3)``: saves ``checkpoints/checkpoint_0`` ... ``checkpoint_4``; the rotation deleted
    checkpoint_0 (before the 4th save) and checkpoint_1 (before the 5th): 2, 3, 4 remain.
``manual-naming/``
    ``ProjectConfiguration(project_dir="manual-naming")`` and
    ``save_state(output_dir=f"manual-naming/checkpoint-{global_step}")`` as the diffusers training
    examples do (``checkpoints_total_limit`` left at its default None, so no rotation):
    ``checkpoint-2`` ... ``checkpoint-10``.
``torn-before-random-states/``
    The ``auto-naming`` run, SIGKILLed during the 4th save (``checkpoint_3``) as ``torch.save`` is
    called for ``random_states_0.pkl``: checkpoint_0 was already deleted by the rotation,
    checkpoint_1 and checkpoint_2 are complete, checkpoint_3 has model.safetensors, optimizer.bin
    and scheduler.bin only.
``torn-mid-model/``
    The same run; during the 4th save the real ``safe_save_file`` writes model.safetensors, the
    file is cut to its first half (``os.truncate``) and the process killed: checkpoint_3 holds a
    truncated model.safetensors (a prefix of the real file) and nothing else.

Demonstrations (recorded in FIXTURES.json under ``demonstrations``, no folder kept): after three
saves, this script puts a foreign entry into ``checkpoints/`` and saves again, to show how the
rotation treats it: ``.ckpt.lock`` (a file without digits: IndexError, nothing saved),
``.checkpoint-3.deleting-ab12`` (a directory: counted, sorted by its first integer 3, deleted in
its turn, and a real checkpoint is deleted earlier because of it) and ``.ckpt-0.lock`` (a file with
a digit: sorted first, ``shutil.rmtree`` on a file raises NotADirectoryError).

The model and the data: ``Tiny`` is one ``nn.Linear(8, 4)`` (36 float32 parameters), MSE loss;
64 rows ``y = x @ W + b`` made from a fixed seed, batches of 8, shuffled by a seeded sampler.
No network is used. After the runs, ``FIXTURES.json`` records the versions, the date, each
scenario's arguments, child exit code and kill moment, and the size and sha256 of every file;
``README.md`` says how to regenerate.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import importlib.metadata
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SEED = 1234
IN_DIM, OUT_DIM = 8, 4
N_ROWS, BATCH = 64, 8
LR = 0.05
GRAD_ACCUM = 2
SAVE_EVERY = 2  # optimizer steps
MAX_STEPS = 10  # optimizer steps: 5 saves
TOTAL_LIMIT = 3
TORN_SAVE = 3  # the 4th save: checkpoint_3

TORN_MOMENTS: dict[str, str] = {
    "before-random-states": f"checkpoint_{TORN_SAVE} (the 4th save): killed as torch.save is "
    "called for random_states_0.pkl, after model.safetensors, optimizer.bin and scheduler.bin",
    "mid-model": f"checkpoint_{TORN_SAVE} (the 4th save): model.safetensors half written (the "
    "real safe_save_file output cut to its first half), then killed",
}

AUTO = {
    "automatic_checkpoint_naming": True,
    "total_limit": TOTAL_LIMIT,
}

SCENARIOS: dict[str, dict] = {
    "auto-naming": {
        "description": "automatic_checkpoint_naming=True, total_limit=3: five saves "
        "checkpoint_0..checkpoint_4 (every 2 optimizer steps), the rotation deletes checkpoint_0 "
        "and checkpoint_1 before the 4th and 5th saves; a registered custom object.",
        "project": AUTO,
    },
    "manual-naming": {
        "description": "save_state(output_dir=f'{project_dir}/checkpoint-{global_step}') as the "
        "diffusers training examples do (no checkpoints_total_limit): checkpoint-2 .. "
        "checkpoint-10.",
        "project": {},
        "manual": True,
    },
    **{
        f"torn-{m}": {
            "description": "The 'auto-naming' run, SIGKILLed during the 4th save (" + why + ").",
            "project": AUTO,
            "kill": m,
        }
        for m, why in TORN_MOMENTS.items()
    },
}

# Demonstrations: no folder is kept; what happened is recorded in FIXTURES.json.
DEMOS: dict[str, dict] = {
    "rotation-lock-file-no-digit": {
        "description": "After 3 saves (checkpoint_0..2), a FILE named .ckpt.lock is put into "
        "checkpoints/ and save_state() is called again (total_limit=3).",
        "entry": ".ckpt.lock",
        "kind": "file",
        "more_saves": 1,
    },
    "rotation-dir-with-digits": {
        "description": "After 3 saves, a DIRECTORY named .checkpoint-3.deleting-ab12 (holding one "
        "file) is put into checkpoints/ and save_state() is called 3 more times (total_limit=3).",
        "entry": ".checkpoint-3.deleting-ab12",
        "kind": "dir",
        "more_saves": 3,
    },
    "rotation-file-with-digit": {
        "description": "After 3 saves, a FILE named .ckpt-0.lock is put into checkpoints/ and "
        "save_state() is called again (total_limit=3).",
        "entry": ".ckpt-0.lock",
        "kind": "file",
        "more_saves": 1,
    },
}


# --------------------------------------------------------------------------------------------
# Child side: one training run.
# --------------------------------------------------------------------------------------------


def _say(msg: str) -> None:
    print(f"\n[accelerate child pid={os.getpid()}] {msg}", file=sys.stderr, flush=True)


def _die(msg: str) -> None:
    _say("SIGKILL: " + msg)
    os.kill(os.getpid(), signal.SIGKILL)


def _in_torn_checkpoint(path: object) -> bool:
    return isinstance(path, (str, os.PathLike)) and f"checkpoint_{TORN_SAVE}" in Path(path).parts


def install_kill_hook(moment: str) -> None:
    """Wrap the real function Accelerate calls for a file so that the process dies at ``moment``."""
    import accelerate.utils.other as acc_other
    import torch

    real_torch_save = torch.save
    real_safe_save_file = acc_other.safe_save_file

    def torch_save(obj, f, *args, **kwargs):
        if (
            moment == "before-random-states"
            and _in_torn_checkpoint(f)
            and Path(f).name.startswith("random_states_")
        ):
            _die(f"as torch.save({f}) is called")
        return real_torch_save(obj, f, *args, **kwargs)

    def safe_save_file(tensors, filename, metadata=None):
        result = real_safe_save_file(tensors, filename, metadata=metadata)
        if moment == "mid-model" and _in_torn_checkpoint(filename):
            size = os.path.getsize(filename)
            os.truncate(filename, size // 2)
            _die(f"{filename} cut to its first {size // 2} of {size} bytes")
        return result

    # checkpointing.py calls torch.save through the torch module; accelerate.utils.save calls
    # torch.save and safe_save_file through accelerate.utils.other's globals.
    torch.save = torch_save
    acc_other.safe_save_file = safe_save_file


def _listing_of(path: str) -> list[str]:
    out = []
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for d in dirs:
            out.append(os.path.relpath(os.path.join(root, d), path) + "/")
        for f in sorted(files):
            out.append(os.path.relpath(os.path.join(root, f), path))
    return sorted(out)


def run_child(name: str, demo: bool) -> None:
    spec = DEMOS[name] if demo else SCENARIOS[name]
    import torch
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration, set_seed
    from torch import nn

    torch.set_num_threads(1)
    set_seed(SEED)

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(IN_DIM, OUT_DIM)

        def forward(self, x):
            return self.linear(x)

    class TrainingProgress:
        """A user object registered with accelerator.register_for_checkpointing."""

        def __init__(self):
            self.global_step = 0
            self.epoch = 0
            self.last_loss = float("nan")

        def state_dict(self):
            return {
                "global_step": self.global_step,
                "epoch": self.epoch,
                "last_loss": self.last_loss,
            }

        def load_state_dict(self, state_dict):
            self.global_step = state_dict["global_step"]
            self.epoch = state_dict["epoch"]
            self.last_loss = state_dict["last_loss"]

    g = torch.Generator().manual_seed(SEED)
    w = torch.randn(IN_DIM, OUT_DIM, generator=g)
    b = torch.randn(OUT_DIM, generator=g)
    x_all = torch.randn(N_ROWS, IN_DIM, generator=g)
    dataset = torch.utils.data.TensorDataset(x_all, x_all @ w + b)

    project = AUTO if demo else spec["project"]
    accelerator = Accelerator(
        project_config=ProjectConfiguration(project_dir=name, **project),
        cpu=True,
        gradient_accumulation_steps=GRAD_ACCUM,
    )
    model = Tiny()
    nn.init.normal_(model.linear.weight, std=0.1)
    nn.init.zeros_(model.linear.bias)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LinearLR(
        optimizer, start_factor=1.0, end_factor=0.1, total_iters=MAX_STEPS
    )
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=BATCH, shuffle=True, generator=torch.Generator().manual_seed(SEED)
    )
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    progress = TrainingProgress()
    accelerator.register_for_checkpointing(progress)
    if not demo and spec.get("kill"):
        install_kill_hook(spec["kill"])

    saves = []
    done = False
    max_saves = 3 if demo else None
    epoch = 0
    while not done:
        for x, y in loader:
            with accelerator.accumulate(model):
                loss = nn.functional.mse_loss(model(x), y)
                accelerator.backward(loss)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            if accelerator.sync_gradients:
                progress.global_step += 1
                progress.epoch = epoch
                progress.last_loss = round(loss.item(), 6)
                if progress.global_step % SAVE_EVERY == 0:
                    if spec.get("manual"):
                        # diffusers/examples/*/train_*.py
                        save_path = os.path.join(name, f"checkpoint-{progress.global_step}")
                        where = accelerator.save_state(save_path)
                    else:
                        where = accelerator.save_state()
                    saves.append(
                        f"save {len(saves)} -> {os.path.relpath(str(where))}: "
                        f"global_step={progress.global_step} epoch={epoch} "
                        f"accelerator.step={accelerator.step} loss={progress.last_loss}"
                    )
                    _say(saves[-1])
                if progress.global_step >= MAX_STEPS or (max_saves and len(saves) >= max_saves):
                    done = True
                    break
        epoch += 1
    if not demo:
        folders = [p for p in _listing_of(name) if p.endswith("/")]
        _say(f"done: {len(saves)} saves; folders left: {folders}")
        return

    # Demonstration: a foreign entry in checkpoints/, then more saves.
    ckdir = os.path.join(name, "checkpoints")
    entry = os.path.join(ckdir, spec["entry"])
    if spec["kind"] == "dir":
        os.makedirs(entry)
        Path(entry, "model.safetensors").write_bytes(b"")
    else:
        Path(entry).write_bytes(b"")
    result = {"before": sorted(os.listdir(ckdir)), "saves": []}
    for _ in range(spec["more_saves"]):
        try:
            where = accelerator.save_state()
            result["saves"].append(
                {"saved": os.path.relpath(str(where)), "after": sorted(os.listdir(ckdir))}
            )
        except Exception as e:  # the point of the demonstration
            import traceback

            tb = traceback.format_exc().rstrip().splitlines()
            result["saves"].append(
                {
                    "exception": f"{type(e).__name__}: {e}",
                    "traceback_last_lines": [
                        re.sub(r'"/\S*/python3\.\d+/(site-packages/)?', '"', t) for t in tb[-6:]
                    ],
                    "after": sorted(os.listdir(ckdir)),
                }
            )
            break
    print("DEMO-RESULT " + json.dumps(result), flush=True)


# --------------------------------------------------------------------------------------------
# Parent side.
# --------------------------------------------------------------------------------------------


def _child_env() -> dict:
    env = dict(os.environ)
    env.update(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        CUDA_VISIBLE_DEVICES="",
        ACCELERATE_USE_CPU="1",
        PYTHONHASHSEED="0",
        OMP_NUM_THREADS="1",
    )
    return env


def _run_child(name: str, work: Path, demo: bool) -> tuple[subprocess.CompletedProcess, str, float]:
    script = str(Path(__file__).resolve())
    cmd = [sys.executable, script, "--demo" if demo else "--child", name]
    t0 = time.monotonic()
    with open(work / "child.log", "w") as log:
        proc = subprocess.run(
            cmd, cwd=work, env=_child_env(), stdout=log, stderr=subprocess.STDOUT, timeout=600
        )
    return proc, (work / "child.log").read_text(), round(time.monotonic() - t0, 1)


def _notes(log_text: str) -> list[str]:
    return [
        re.sub(r"pid=\d+", "pid=N", n) for n in re.findall(r"\[accelerate child[^\n]*", log_text)
    ]


def run_scenario(name: str, scratch: Path, dest: Path) -> dict:
    spec = SCENARIOS[name]
    work = scratch / name
    work.mkdir(parents=True)
    proc, log_text, seconds = _run_child(name, work, demo=False)
    kill = spec.get("kill")
    expected = -signal.SIGKILL if kill else 0
    if proc.returncode != expected:
        sys.stderr.write(log_text[-6000:])
        raise SystemExit(f"scenario {name}: child exited {proc.returncode}, expected {expected}")
    out = work / name
    if not out.is_dir():
        raise SystemExit(f"scenario {name}: the run left no {name}/")
    extra = sorted(p.name for p in work.iterdir() if p.name not in (name, "child.log"))
    shutil.move(str(out), str(dest / name))
    notes = _notes(log_text)
    print(
        f"  {name}: exit {proc.returncode} in {seconds}s; {notes[-1] if notes else ''}", flush=True
    )
    rec = {
        "description": spec["description"],
        "command": f"python fixtures_gen/accelerate_runs.py --child {name}",
        "cwd": "<scratch folder>; project_dir is the relative path " + json.dumps(name),
        "accelerator": {
            "cpu": True,
            "gradient_accumulation_steps": GRAD_ACCUM,
            "project_config": {"project_dir": name, **spec["project"]},
        },
        "save_call": f"accelerator.save_state(output_dir=os.path.join({name!r}, "
        "f'checkpoint-{global_step}'))"
        if spec.get("manual")
        else "accelerator.save_state()",
        "save_every_optimizer_steps": SAVE_EVERY,
        "optimizer_steps": MAX_STEPS,
        "child_exit_code": proc.returncode,
        "child_seconds": seconds,
        "child_notes": notes,
        "rotation_warnings": re.findall(r"Deleting \d+ checkpoints[^\n]*", log_text),
        "other_files_left_in_cwd": extra,
    }
    if kill:
        rec["kill_moment"] = kill
        rec["kill_moment_description"] = TORN_MOMENTS[kill]
        rec["killed_while_saving"] = f"checkpoints/checkpoint_{TORN_SAVE}"
    return rec


def run_demo(name: str, scratch: Path) -> dict:
    spec = DEMOS[name]
    work = scratch / ("demo-" + name)
    work.mkdir(parents=True)
    proc, log_text, seconds = _run_child(name, work, demo=True)
    found = re.findall(r"^DEMO-RESULT (.*)$", log_text, flags=re.M)
    if proc.returncode != 0 or not found:
        sys.stderr.write(log_text[-6000:])
        raise SystemExit(f"demonstration {name}: child exited {proc.returncode}")
    result = json.loads(found[-1])
    print(f"  demo {name}: {json.dumps(result)[:300]}", flush=True)
    return {
        "description": spec["description"],
        "command": f"python fixtures_gen/accelerate_runs.py --demo {name}",
        "entry_put_by_this_script": spec["entry"] + ("/" if spec["kind"] == "dir" else ""),
        "child_seconds": seconds,
        "child_notes": _notes(log_text),
        "rotation_warnings": re.findall(r"Deleting \d+ checkpoints[^\n]*", log_text),
        **result,
    }


def _versions() -> dict:
    v = {"python": platform.python_version()}
    for pkg in ("torch", "accelerate", "safetensors", "numpy", "huggingface-hub"):
        v[pkg] = importlib.metadata.version(pkg)
    v["platform"] = platform.platform()
    v["machine"] = platform.machine()
    return v


def _listing(root: Path) -> list[dict]:
    files = []
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name != "FIXTURES.json":
            files.append(
                {
                    "path": p.relative_to(root).as_posix(),
                    "size": p.stat().st_size,
                    "sha256": hashlib.sha256(p.read_bytes()).hexdigest(),
                }
            )
    return files


README = """\
# Checkpoint folders written by the real Hugging Face Accelerate `save_state`

Every folder here is the `project_dir` of a real `accelerate.Accelerator` run (real `torch`, CPU,
a 36-parameter `nn.Linear(8, 4)`, synthetic data, fixed seeds), exactly as Accelerate left it:
`auto-naming/checkpoints/checkpoint_<i>/` (i is a save counter, not the training step) with
`total_limit=3`, or `manual-naming/checkpoint-<global_step>/` (diffusers-style `output_dir`).
The torn scenarios are the auto-naming run SIGKILLed part-way through its 4th save
(`checkpoint_3`, after the rotation already deleted `checkpoint_0`). `FIXTURES.json` says which
versions wrote them, what each scenario is, the kill moment of each torn one, the size and
sha256 of every file, and the results of the rotation demonstrations (foreign entries in
`checkpoints/`). The module docstring of `fixtures_gen/accelerate_runs.py` describes every
scenario and the order in which this accelerate version writes a checkpoint's files.

`random_states_0.pkl`, `optimizer.bin`, `scheduler.bin` and `custom_checkpoint_0.pkl` are torch
zip archives (`torch.save`); `model.safetensors` is safetensors.

The files are generated: do not edit them by hand. To regenerate:

    .venv-fixtures/bin/python fixtures_gen/accelerate_runs.py --out tests/fixtures/accelerate

with `.venv-fixtures/` holding `fixtures_gen/requirements-accelerate.txt`. The runs are
deterministic: the same files come out each time.
"""


def run_parent(out: Path, only: list[str] | None) -> None:
    names = only or list(SCENARIOS)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    started = _dt.datetime.now(_dt.timezone.utc)
    t0 = time.monotonic()
    records = {}
    demos = {}
    with tempfile.TemporaryDirectory(prefix="ckpt-accelerate-fixtures-") as tmp:
        for name in names:
            records[name] = run_scenario(name, Path(tmp), out)
        if not only:
            for name in DEMOS:
                demos[name] = run_demo(name, Path(tmp))
    (out / "README.md").write_text(README)
    meta = {
        "generator": "fixtures_gen/accelerate_runs.py (python fixtures_gen/accelerate_runs.py "
        "--out tests/fixtures/accelerate)",
        "generated_at": started.isoformat(timespec="seconds"),
        "generation_seconds": round(time.monotonic() - t0, 1),
        "versions": _versions(),
        "model": "Tiny(nn.Module): one nn.Linear(8, 4), 36 float32 parameters, MSE loss; AdamW "
        f"lr {LR}, LinearLR 1.0 -> 0.1 over {MAX_STEPS} steps",
        "data": f"synthetic, seed {SEED}: {N_ROWS} rows y = x@W + b, batch {BATCH}, shuffled "
        f"(seeded generator), gradient_accumulation_steps={GRAD_ACCUM}: "
        f"{N_ROWS // BATCH // GRAD_ACCUM} optimizer steps per epoch",
        "custom_object": "TrainingProgress registered with register_for_checkpointing: "
        "state_dict() = {'global_step': optimizer steps, 'epoch': 0-based epoch, 'last_loss': "
        "float}",
        "checkpoint_write_order": [
            "rotation (auto naming, main process, before the save): shutil.rmtree of the oldest "
            "entries of checkpoints/ (Accelerator.save_state)",
            "checkpoint folder: os.makedirs (Accelerator.save_state)",
            "model.safetensors (save_accelerator_state -> accelerate.utils.save -> "
            "safetensors.torch.save_file, main process)",
            "optimizer.bin (save_accelerator_state -> accelerate.utils.save -> torch.save, main "
            "process)",
            "scheduler.bin (save_accelerator_state -> accelerate.utils.save -> torch.save, main "
            "process)",
            "random_states_<process_index>.pkl (save_accelerator_state -> torch.save, every "
            "process)",
            "custom_checkpoint_<i>.pkl (Accelerator.save_state -> save_custom_state -> "
            "accelerate.utils.save -> torch.save, main process)",
        ],
        "where_values_are": {
            "random_states_0.pkl": "a torch zip archive (torch.save), not a plain pickle: "
            "random_states_0/data.pkl is a protocol-2 pickle of a dict with 'step' (BININT1), "
            "'random_state', 'numpy_random_seed', 'torch_manual_seed' (tensor storage in "
            "random_states_0/data/0). 'step' is Accelerator.step: batches seen since the last "
            "end of the dataloader (reset to 0 on an epoch's last batch), NOT the optimizer step",
            "custom_checkpoint_0.pkl": "a torch zip archive: custom_checkpoint_0/data.pkl pickles "
            "the registered object's state_dict(): global_step, epoch, last_loss",
            "scheduler.bin": "a torch zip archive: scheduler/data.pkl, LinearLR.state_dict(): "
            "last_epoch = optimizer steps, _step_count = last_epoch + 1",
            "optimizer.bin": "a torch zip archive: optimizer/data.pkl, state[i]['step'] is a "
            "float32 tensor in optimizer/data/<n> (10.0 after 10 optimizer steps)",
            "model.safetensors": "safetensors, header metadata {'format': 'pt'}",
            "folder name": "checkpoint_<i> (auto naming) is the save counter "
            "ProjectConfiguration.iteration; checkpoint-<global_step> (manual) is whatever the "
            "training script passes",
        },
        "scenarios": records,
        "demonstrations": demos,
        "files": _listing(out),
    }
    (out / "FIXTURES.json").write_text(json.dumps(meta, indent=2, allow_nan=False) + "\n")
    print(f"wrote {out} in {meta['generation_seconds']}s", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, help="where to write the fixtures (deleted first)")
    ap.add_argument("--only", nargs="*", choices=list(SCENARIOS), help="run only these scenarios")
    ap.add_argument("--child", choices=list(SCENARIOS), help=argparse.SUPPRESS)
    ap.add_argument("--demo", choices=list(DEMOS), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        run_child(a.child, demo=False)
    elif a.demo:
        run_child(a.demo, demo=True)
    elif a.out:
        run_parent(a.out.resolve(), a.only)
    else:
        ap.error("--out is required")


if __name__ == "__main__":
    main()
