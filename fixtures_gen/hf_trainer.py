"""Record checkpoint folders written by the real Hugging Face ``transformers`` Trainer.

Run by ``fixtures_gen/make_fixtures.sh`` (``make fixtures``) inside ``.venv-fixtures/``, whose
pinned versions are in ``fixtures_gen/requirements-hf.txt``. Nothing here is imported by the ckpt
test suite; the suite only reads what this script leaves in ``tests/fixtures/hf_trainer/``.

Every scenario trains the same tiny model for real (``torch`` on the CPU, the stock ``Trainer``,
AdamW, the default linear schedule) and keeps the Trainer's ``output_dir`` exactly as the Trainer
left it. Nothing in those folders is written, edited or faked by this script: the only
interference is in the torn scenarios, where the process is killed with SIGKILL part-way through
a checkpoint save, and in three of them ("mid-...") the file being saved at that moment is left
half-written before the kill (see below).

The model and the data
----------------------
``TinyRegressor`` is a ``PreTrainedModel`` with one ``nn.Linear(8, 4)`` (36 parameters), so a
checkpoint saves as ``config.json`` + ``model.safetensors`` like any Hub model. The data are made
here from a fixed seed: 64 training rows whose targets are ``x @ W + b``, and 32 evaluation rows
whose targets are ``EVAL_SCALE * (x @ W + b)`` (EVAL_SCALE = 0.6). Training walks the weights
from their initial values towards ``W, b``; they pass closest to the scaled ones early in the
run, so ``eval_loss`` falls and then rises again, and the best checkpoint by ``eval_loss`` is an
early one (checkpoint-20), not the last. No network is used: HF_HUB_OFFLINE=1 is set, nothing
is downloaded.

Each scenario's training runs in a child process whose working directory is a scratch folder and
whose ``output_dir`` is the RELATIVE path ``<scenario name>``, the way a user types
``--output_dir complete``. The Trainer stores ``best_model_checkpoint`` joined onto that relative
path (e.g. ``"complete/checkpoint-20"``): relative to the directory the training was started in,
i.e. to the parent of the scenario folder, not to the checkpoint or to the output_dir. That is the
real behaviour and it is recorded as such. When the child has ended, the scenario folder is moved
into ``tests/fixtures/hf_trainer/``.

Scenarios
---------
``complete/``
    max_steps=60, save_steps=10, eval_strategy="steps" with eval_steps=10, logging_steps=5,
    load_best_model_at_end=True, metric_for_best_model="eval_loss", no save_total_limit: all six
    checkpoints (checkpoint-10 ... checkpoint-60) stay, the best one is early. The healthy case.

``torn-<moment>/``
    The same run (same arguments, same data), SIGKILLed (``os.kill(os.getpid(), SIGKILL)``)
    while the Trainer is saving checkpoint-30: checkpoint-10 and checkpoint-20 are complete,
    checkpoint-30 is what a crash at that moment leaves. The kill is done by wrapping the real
    function the Trainer calls for that file (below); the wrapper acts only for paths inside
    ``checkpoint-30``. The generator itself survives, the child dies with -9.

    The order of writes, read from the installed transformers (5.23.0) source:
    ``Trainer._save_checkpoint`` (transformers/trainer.py) calls

    1. ``self.save_model(output_dir)`` -> ``Trainer._save`` -> ``PreTrainedModel.save_pretrained``
       (transformers/modeling_utils.py), which writes ``config.json``
       (``config.save_pretrained``; no generation_config.json, this model cannot generate) and then
       ``model.safetensors`` (``safe_save_file``, i.e. ``safetensors.torch.save_file``, imported
       into modeling_utils under that name); back in ``Trainer._save``,
       ``torch.save(self.args, "training_args.bin")``;
    2. ``self._save_optimizer_and_scheduler``: ``torch.save`` of ``optimizer.pt``, then of
       ``scheduler.pt``;
    3. ``self._save_scaler``: nothing here (no mixed precision, no grad scaler);
    4. ``self._save_rng_state``: ``torch.save`` of ``rng_state.pth`` (``rng_state_<rank>.pth``
       when world_size > 1);
    5. ``self.state.save_to_json("trainer_state.json")`` (``TrainerState.save_to_json``,
       transformers/trainer_callback.py: one ``json.dumps`` then a plain ``open(..., "w")`` +
       ``write``, no temporary file, no fsync);
    6. ``rotate_checkpoints`` (a no-op without save_total_limit).

    The folder is created in place as ``checkpoint-<step>`` (``os.makedirs`` in ``Trainer._save``);
    this version has no ``tmp-checkpoint-*`` staging folder and no rename, so a torn save leaves a
    partial ``checkpoint-30`` and nothing else. The trainer_state.json of the checkpoint is the
    LAST file written, after rng_state.pth, so a "killed after trainer_state.json but before
    rng_state" folder cannot happen with this version and is not recorded (an order with
    trainer_state.json before the RNG state is not what 5.23.0 does).

    Kill moments (each scenario folder is named after its moment):

    - ``torn-after-config``: as ``safe_save_file`` is called for model.safetensors, before it
      writes: checkpoint-30 holds only config.json.
    - ``torn-mid-weights``: the real ``safe_save_file`` writes model.safetensors, the file is cut
      to its first half (``os.truncate``) and the process killed: a truncated model.safetensors
      whose bytes are a prefix of the real file.
    - ``torn-after-weights``: right after the real ``safe_save_file`` returns: config.json +
      model.safetensors, no training_args.bin, no optimizer.
    - ``torn-mid-optimizer``: the real ``torch.save`` writes optimizer.pt, the file is cut to its
      first half and the process killed: a truncated zip (a prefix of the real file).
    - ``torn-after-optimizer``: right after the real ``torch.save`` of optimizer.pt returns: no
      scheduler.pt, rng_state.pth or trainer_state.json.
    - ``torn-after-rng``: right after the real ``torch.save`` of rng_state.pth returns: every
      file but trainer_state.json.
    - ``torn-mid-trainer-state``: ``TrainerState.save_to_json`` is replaced by the same code
      (same ``json.dumps`` call, same ``open``) that writes only the first half of the string,
      flushes it to the kernel and is killed: a truncated trainer_state.json, every other file
      present.

``nan/``
    max_steps=20, save_steps=10, eval every 10 steps, load_best_model_at_end=True, with a
    ``compute_metrics`` that returns NaN, +inf and -inf for three metrics and a normal number for
    a fourth, and ``metric_for_best_model="nan_metric"`` (greater_is_better=False). Python's
    ``json.dumps`` writes these as the bare literals ``NaN``, ``Infinity`` and ``-Infinity``
    (not valid strict JSON): in ``log_history`` (eval_nan_metric, eval_inf_metric,
    eval_neg_inf_metric) and, because ``np.less(nan, inf)`` is never true, the Trainer's
    ``best_metric`` stays at its initial ``float("inf")`` and is written as ``Infinity``, with
    ``best_global_step``/``best_model_checkpoint`` null.

``final-save/``
    The ``complete`` run followed by the tail of the Hugging Face example scripts:
    ``trainer.save_model()`` (config.json, model.safetensors, training_args.bin in the output_dir
    itself: the best model, reloaded by load_best_model_at_end), ``trainer.save_metrics("train",
    ...)`` (train_results.json, all_results.json) and ``trainer.save_state()`` (a
    trainer_state.json in the output_dir whose log_history ends with the train summary). Many
    real run folders look like this: checkpoints plus loose files at the top.

``multirank/``
    ``torchrun --nnodes=1 --nproc_per_node=2`` with a c10d rendezvous on 127.0.0.1 (gloo
    backend, CPU), max_steps=20, save_steps=10, eval every 10 steps, load_best_model_at_end with
    eval_loss: rank 0 writes the model, optimizer, scheduler and trainer_state.json, every rank
    writes its own ``rng_state_<rank>.pth``.

After the runs, ``FIXTURES.json`` records the versions, the date, each scenario's arguments,
child exit code and kill moment, and the size and sha256 of every file; ``README.md`` says how to
regenerate. Never edit the fixtures by hand: run ``make fixtures``.
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
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SEED = 1234
IN_DIM, OUT_DIM = 8, 4
N_TRAIN, N_EVAL = 64, 32
EVAL_SCALE = 0.6
LEARNING_RATE = 0.05
TORN_STEP = 30

# Common TrainingArguments of every scenario; each scenario adds or overrides a few.
BASE_ARGS: dict = {
    "per_device_train_batch_size": 8,
    "per_device_eval_batch_size": 32,
    "learning_rate": LEARNING_RATE,
    "seed": SEED,
    "data_seed": SEED,
    "use_cpu": True,
    "report_to": "none",
    "disable_tqdm": True,
    "dataloader_num_workers": 0,
    "save_strategy": "steps",
    "eval_strategy": "steps",
    "logging_strategy": "steps",
}

RUN_60 = {
    "max_steps": 60,
    "save_steps": 10,
    "eval_steps": 10,
    "logging_steps": 5,
    "load_best_model_at_end": True,
    "metric_for_best_model": "eval_loss",
    "greater_is_better": False,
}

TORN_MOMENTS: dict[str, str] = {
    "after-config": "checkpoint-30: config.json written; killed as safe_save_file is called for "
    "model.safetensors, before it writes anything",
    "mid-weights": "checkpoint-30: model.safetensors half written (the real file cut to its first "
    "half), then killed",
    "after-weights": "checkpoint-30: killed right after safe_save_file returned for "
    "model.safetensors, before training_args.bin and optimizer.pt",
    "mid-optimizer": "checkpoint-30: optimizer.pt half written (the real torch.save file cut to "
    "its first half), then killed",
    "after-optimizer": "checkpoint-30: killed right after torch.save returned for optimizer.pt, "
    "before scheduler.pt",
    "after-rng": "checkpoint-30: killed right after torch.save returned for rng_state.pth, before "
    "trainer_state.json",
    "mid-trainer-state": "checkpoint-30: trainer_state.json half written (first half of the real "
    "json text, flushed), then killed",
}

SCENARIOS: dict[str, dict] = {
    "complete": {
        "description": "Healthy run: 60 steps, a checkpoint every 10 steps (six kept), eval "
        "every 10 steps, load_best_model_at_end with eval_loss; the best eval_loss is at an early "
        "checkpoint.",
        "args": RUN_60,
    },
    **{
        f"torn-{m}": {
            "description": "The 'complete' run, SIGKILLed while saving checkpoint-30 ("
            + why
            + ").",
            "args": RUN_60,
            "kill": m,
        }
        for m, why in TORN_MOMENTS.items()
    },
    "nan": {
        "description": "20 steps, checkpoints at 10 and 20; compute_metrics returns NaN, inf and "
        "-inf, and metric_for_best_model is the NaN metric, so trainer_state.json holds NaN / "
        "Infinity / -Infinity literals (log_history and best_metric).",
        "args": {
            "max_steps": 20,
            "save_steps": 10,
            "eval_steps": 10,
            "logging_steps": 5,
            "load_best_model_at_end": True,
            "metric_for_best_model": "nan_metric",
            "greater_is_better": False,
        },
        "compute_metrics": True,
    },
    "final-save": {
        "description": "The 'complete' run followed by what the Hugging Face example scripts do at "
        "the end: trainer.save_model(), trainer.save_metrics('train', ...), "
        "trainer.save_state(), so the output_dir itself also holds the (best, reloaded) model, "
        "train_results.json, all_results.json and a final trainer_state.json.",
        "args": RUN_60,
        "final_save": True,
    },
    "multirank": {
        "description": "torchrun with --nproc_per_node 2, gloo on CPU: 20 steps, checkpoints at 10 "
        "and 20, each with rng_state_0.pth and rng_state_1.pth; load_best_model_at_end with "
        "eval_loss.",
        "args": {
            "max_steps": 20,
            "save_steps": 10,
            "eval_steps": 10,
            "logging_steps": 5,
            "load_best_model_at_end": True,
            "metric_for_best_model": "eval_loss",
            "greater_is_better": False,
        },
        "nproc": 2,
    },
}


# --------------------------------------------------------------------------------------------
# Child side: one training run.
# --------------------------------------------------------------------------------------------


def _say(msg: str) -> None:
    # On a line of its own: a progress bar may have left the cursor mid-line.
    print(f"\n[hf_trainer child pid={os.getpid()}] {msg}", file=sys.stderr, flush=True)


def _die(msg: str) -> None:
    _say("SIGKILL: " + msg)
    os.kill(os.getpid(), signal.SIGKILL)


def _in_torn_checkpoint(path: object) -> bool:
    return isinstance(path, (str, os.PathLike)) and f"checkpoint-{TORN_STEP}" in Path(path).parts


def _truncate_to_half_and_die(path) -> None:
    """Leave only the first half of the real file, as a kill half-way through its write would."""
    size = os.path.getsize(path)
    os.truncate(path, size // 2)
    _die(f"{path} cut to its first {size // 2} of {size} bytes")


def install_kill_hook(moment: str) -> None:
    """Wrap the real function the Trainer calls so that the process dies at ``moment``."""
    import torch
    import transformers.modeling_utils as modeling_utils
    from transformers.trainer_callback import TrainerState

    real_safe_save_file = modeling_utils.safe_save_file
    real_torch_save = torch.save

    def safe_save_file(tensors, filename, metadata=None):
        if _in_torn_checkpoint(filename):
            if moment == "after-config":
                _die(f"before safe_save_file({filename})")
            if moment == "mid-weights":
                real_safe_save_file(tensors, filename, metadata=metadata)
                _truncate_to_half_and_die(filename)
        result = real_safe_save_file(tensors, filename, metadata=metadata)
        if _in_torn_checkpoint(filename) and moment == "after-weights":
            _die(f"after safe_save_file({filename})")
        return result

    def torch_save(obj, f, *args, **kwargs):
        name = Path(f).name if isinstance(f, (str, os.PathLike)) else None
        torn = _in_torn_checkpoint(f)
        if torn and moment == "mid-optimizer" and name == "optimizer.pt":
            real_torch_save(obj, f, *args, **kwargs)
            _truncate_to_half_and_die(f)
        result = real_torch_save(obj, f, *args, **kwargs)
        if torn and (
            (moment == "after-optimizer" and name == "optimizer.pt")
            or (moment == "after-rng" and name is not None and name.startswith("rng_state"))
        ):
            _die(f"after torch.save({f})")
        return result

    real_save_to_json = TrainerState.save_to_json

    def save_to_json(self, json_path):
        if _in_torn_checkpoint(json_path) and moment == "mid-trainer-state":
            import dataclasses

            # The same text TrainerState.save_to_json writes, cut in half.
            json_string = json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True) + "\n"
            with open(json_path, "w", encoding="utf-8") as f:
                f.write(json_string[: len(json_string) // 2])
                f.flush()
                _die(f"after {len(json_string) // 2} of {len(json_string)} chars of {json_path}")
        return real_save_to_json(self, json_path)

    modeling_utils.safe_save_file = safe_save_file
    torch.save = torch_save
    TrainerState.save_to_json = save_to_json


def run_child(name: str) -> None:
    spec = SCENARIOS[name]
    import numpy as np
    import torch
    from torch import nn
    from transformers import PreTrainedConfig, PreTrainedModel, Trainer, TrainingArguments, set_seed
    from transformers.utils import logging as hf_logging

    torch.set_num_threads(1)
    set_seed(SEED)
    hf_logging.disable_progress_bar()

    class TinyConfig(PreTrainedConfig):
        model_type = "ckpt_tiny_regressor"

        def __init__(self, in_dim: int = IN_DIM, out_dim: int = OUT_DIM, **kwargs):
            self.in_dim = in_dim
            self.out_dim = out_dim
            super().__init__(**kwargs)

    class TinyRegressor(PreTrainedModel):
        config_class = TinyConfig
        base_model_prefix = "tiny"

        def __init__(self, config: TinyConfig):
            super().__init__(config)
            self.linear = nn.Linear(config.in_dim, config.out_dim)
            self.post_init()

        def _init_weights(self, module):
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=0.1)
                nn.init.zeros_(module.bias)

        def forward(self, x=None, labels=None):
            logits = self.linear(x)
            if labels is None:
                return {"logits": logits}
            return {"loss": nn.functional.mse_loss(logits, labels), "logits": logits}

    class Rows(torch.utils.data.Dataset):
        def __init__(self, x, y):
            self.x, self.y = x, y

        def __len__(self):
            return len(self.x)

        def __getitem__(self, i):
            return {"x": self.x[i], "labels": self.y[i]}

    g = torch.Generator().manual_seed(SEED)
    w = torch.randn(IN_DIM, OUT_DIM, generator=g)
    b = torch.randn(OUT_DIM, generator=g)
    x_train = torch.randn(N_TRAIN, IN_DIM, generator=g)
    x_eval = torch.randn(N_EVAL, IN_DIM, generator=g)
    train = Rows(x_train, x_train @ w + b)
    evalset = Rows(x_eval, EVAL_SCALE * (x_eval @ w + b))

    compute_metrics = None
    if spec.get("compute_metrics"):

        def compute_metrics(pred):
            mse = float(np.mean((pred.predictions - pred.label_ids) ** 2))
            return {
                "nan_metric": float("nan"),
                "inf_metric": float("inf"),
                "neg_inf_metric": float("-inf"),
                "mse": mse,
            }

    if spec.get("kill"):
        install_kill_hook(spec["kill"])

    args = TrainingArguments(output_dir=name, **BASE_ARGS, **spec["args"])
    model = TinyRegressor(TinyConfig())
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train,
        eval_dataset=evalset,
        compute_metrics=compute_metrics,
    )
    result = trainer.train()
    if spec.get("final_save"):
        # The tail of the Hugging Face example scripts (run_clm.py, run_glue.py, ...).
        trainer.save_model()
        trainer.log_metrics("train", result.metrics)
        trainer.save_metrics("train", result.metrics)
        trainer.save_state()
    if int(os.environ.get("RANK", "0")) == 0:
        evals = [
            (e["step"], round(e["eval_loss"], 5))
            for e in trainer.state.log_history
            if "eval_loss" in e
        ]
        _say(f"done: eval_loss by step {evals}; best {trainer.state.best_model_checkpoint}")


# --------------------------------------------------------------------------------------------
# Parent side: run every scenario in a child, collect, describe.
# --------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _child_env() -> dict:
    env = dict(os.environ)
    env.update(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        CUDA_VISIBLE_DEVICES="",
        PYTHONHASHSEED="0",
        TOKENIZERS_PARALLELISM="false",
        OMP_NUM_THREADS="1",
        GLOO_SOCKET_IFNAME="lo",
        MASTER_ADDR="127.0.0.1",
    )
    return env


def run_scenario(name: str, scratch: Path, dest: Path) -> dict:
    spec = SCENARIOS[name]
    work = scratch / name
    work.mkdir(parents=True)
    script = str(Path(__file__).resolve())
    nproc = spec.get("nproc", 1)
    if nproc > 1:
        torchrun = str(Path(sys.executable).with_name("torchrun"))
        cmd = [
            torchrun,
            "--nnodes=1",
            f"--nproc_per_node={nproc}",
            "--rdzv-backend=c10d",
            f"--rdzv-endpoint=127.0.0.1:{_free_port()}",
            script,
            "--child",
            name,
        ]
        shown = (
            f"torchrun --nnodes=1 --nproc_per_node={nproc} --rdzv-backend=c10d "
            f"--rdzv-endpoint=127.0.0.1:<free port> fixtures_gen/hf_trainer.py --child {name}"
        )
    else:
        cmd = [sys.executable, script, "--child", name]
        shown = f"python fixtures_gen/hf_trainer.py --child {name}"
    t0 = time.monotonic()
    with open(work / "child.log", "w") as log:
        proc = subprocess.run(
            cmd, cwd=work, env=_child_env(), stdout=log, stderr=subprocess.STDOUT, timeout=600
        )
    seconds = round(time.monotonic() - t0, 1)
    log_text = (work / "child.log").read_text()
    kill = spec.get("kill")
    expected = -signal.SIGKILL if kill else 0
    if proc.returncode != expected:
        sys.stderr.write(log_text[-6000:])
        raise SystemExit(f"scenario {name}: child exited {proc.returncode}, expected {expected}")
    out = work / name
    if not out.is_dir():
        raise SystemExit(f"scenario {name}: the Trainer left no {name}/")
    extra = sorted(p.name for p in work.iterdir() if p.name not in (name, "child.log"))
    shutil.move(str(out), str(dest / name))
    notes = [
        re.sub(r"pid=\d+", "pid=N", n) for n in re.findall(r"\[hf_trainer child[^\n]*", log_text)
    ]
    print(
        f"  {name}: exit {proc.returncode} in {seconds}s; {notes[-1] if notes else ''}", flush=True
    )
    rec = {
        "description": spec["description"],
        "command": shown,
        "cwd": "<scratch folder>; output_dir is the relative path " + json.dumps(name),
        "training_args": {"output_dir": name, **BASE_ARGS, **spec["args"]},
        "nproc": nproc,
        "child_exit_code": proc.returncode,
        "child_seconds": seconds,
        "child_notes": notes,
        "other_files_left_in_cwd": extra,
    }
    if spec.get("final_save"):
        rec["after_train"] = (
            "trainer.save_model(); trainer.log_metrics('train', m); "
            "trainer.save_metrics('train', m); trainer.save_state()"
        )
    if spec.get("compute_metrics"):
        rec["compute_metrics"] = (
            "returns {'nan_metric': nan, 'inf_metric': inf, 'neg_inf_metric': -inf, 'mse': <mse>}"
        )
    if kill:
        rec["kill_moment"] = kill
        rec["kill_moment_description"] = TORN_MOMENTS[kill]
        rec["killed_while_saving"] = f"checkpoint-{TORN_STEP}"
    return rec


def _versions() -> dict:
    v = {"python": platform.python_version()}
    for pkg in ("torch", "transformers", "accelerate", "safetensors", "numpy", "huggingface-hub"):
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
# Checkpoint folders written by the real Hugging Face Trainer

Every folder here is the `output_dir` of a real `transformers.Trainer` run (real `torch`, CPU,
a 36-parameter `PreTrainedModel`, synthetic data, fixed seeds), exactly as the Trainer left it.
The torn scenarios are the same run SIGKILLed part-way through saving `checkpoint-30`.
`FIXTURES.json` says which versions wrote them, what each scenario is, the kill moment of each
torn one, and the size and sha256 of every file. The module docstring of
`fixtures_gen/hf_trainer.py` describes every scenario and the order in which this transformers
version writes a checkpoint's files.

`best_model_checkpoint` in `trainer_state.json` is relative to the directory the training ran
in, which was the parent of the scenario folder (e.g. `"complete/checkpoint-20"`).

The files are generated: do not edit them by hand. To regenerate (it builds its own virtual
environment, `.venv-fixtures/`, with torch; `make test` never needs it):

    make fixtures

which runs `bash fixtures_gen/make_fixtures.sh`. The runs are deterministic (the same weights,
optimizer, scheduler and RNG files come out each time, and the torn runs match `complete/` up to
the kill); a regeneration changes the runtimes recorded in trainer_state.json (and so those
files' hashes), not the structure. training_args.bin differs between scenarios only by
`output_dir`.
"""


def run_parent(out: Path, only: list[str] | None) -> None:
    names = only or list(SCENARIOS)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    started = _dt.datetime.now(_dt.timezone.utc)
    t0 = time.monotonic()
    records = {}
    with tempfile.TemporaryDirectory(prefix="ckpt-hf-fixtures-") as tmp:
        for name in names:
            records[name] = run_scenario(name, Path(tmp), out)
    (out / "README.md").write_text(README)
    meta = {
        "generator": "fixtures_gen/hf_trainer.py, run by fixtures_gen/make_fixtures.sh "
        "(`make fixtures`)",
        "generated_at": started.isoformat(timespec="seconds"),
        "generation_seconds": round(time.monotonic() - t0, 1),
        "versions": _versions(),
        "model": "TinyRegressor(PreTrainedModel): one nn.Linear(8, 4), 36 float32 parameters, "
        "MSE loss",
        "data": f"synthetic, seed {SEED}: {N_TRAIN} train rows y = x@W + b, {N_EVAL} eval rows "
        f"y = {EVAL_SCALE} * (x@W + b)",
        "checkpoint_write_order": [
            "config.json (PreTrainedModel.save_pretrained -> config.save_pretrained)",
            "model.safetensors (PreTrainedModel.save_pretrained -> safe_save_file)",
            "training_args.bin (Trainer._save -> torch.save)",
            "optimizer.pt (Trainer._save_optimizer_and_scheduler -> torch.save)",
            "scheduler.pt (Trainer._save_optimizer_and_scheduler -> torch.save)",
            "rng_state.pth / rng_state_<rank>.pth (Trainer._save_rng_state -> torch.save)",
            "trainer_state.json (TrainerState.save_to_json)",
        ],
        "scenarios": records,
        "files": _listing(out),
    }
    # allow_nan stays off: nothing in this file is NaN, and it must be strict JSON.
    (out / "FIXTURES.json").write_text(json.dumps(meta, indent=2, allow_nan=False) + "\n")
    print(f"wrote {out} in {meta['generation_seconds']}s", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, help="where to write the fixtures (deleted first)")
    ap.add_argument("--only", nargs="*", choices=list(SCENARIOS), help="run only these scenarios")
    ap.add_argument("--child", choices=list(SCENARIOS), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        run_child(a.child)
    elif a.out:
        run_parent(a.out.resolve(), a.only)
    else:
        ap.error("--out is required")


if __name__ == "__main__":
    main()
