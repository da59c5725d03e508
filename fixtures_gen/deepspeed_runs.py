"""Record checkpoint folders written by the real DeepSpeed engine (``engine.save_checkpoint``).

Run inside ``.venv-fixtures/``, whose pinned versions are in
``fixtures_gen/requirements-deepspeed.txt``, as
``.venv-fixtures/bin/python fixtures_gen/deepspeed_runs.py --out tests/fixtures/deepspeed``.
Nothing here is imported by the ckpt test suite; the suite only reads what this script leaves in
``tests/fixtures/deepspeed/``.

Every scenario trains a tiny model for real with DeepSpeed 0.19.8 on the CPU
(``DS_ACCELERATOR=cpu``, a gloo process group of one process: MASTER_ADDR=127.0.0.1, a free
MASTER_PORT, RANK=0, WORLD_SIZE=1, LOCAL_RANK=0, set in the child's environment the way
``torchrun`` would), and keeps the ``save_dir`` exactly as DeepSpeed left it. Nothing in those
folders is written, edited or faked by this script: the only interference is in the torn
scenarios, where the process is killed with SIGKILL part-way through a save, and in one of them
("torn-mid-optim") the file being saved at that moment is left half-written before the kill (see
below). The first engine start on a machine compiles DeepSpeed's C++ op ``deepspeed_shm_comm``
(``deepspeed/comm/torch.py: build_shm_op``, cached under ``~/.cache/torch_extensions``): two to
five minutes on 2 busy cores, once (measured: about 2 min alone, 4.7 min with other jobs).

The model and the data
----------------------
``TinyNet`` is an ``nn.Module`` with one ``nn.Linear(8, 4)`` (36 float32 parameters), MSE loss.
The data are made here from a fixed seed (as in ``fixtures_gen/hf_trainer.py``): 32 training rows
whose targets are ``x @ W + b``; a batch is 8 rows, so an epoch is 4 steps. The plain DeepSpeed
runs use the config ``ds_config(stage)`` below: ``"optimizer": {"type": "AdamW", "params": {"lr":
0.05, "torch_adam": true}}`` (``torch.optim.AdamW``, no C++ Adam), a ``WarmupLR`` scheduler, no
fp16/bf16, ``zero_optimization.stage`` 0 or 2. Each run takes 6 steps and calls
``engine.save_checkpoint(<save_dir>)`` after steps 2, 4 and 6, so the default tags are
``global_step2``, ``global_step4`` and ``global_step6`` (``f"global_step{self.global_steps}"``).
No network is used. Each child runs in a scratch folder with the RELATIVE ``save_dir`` ``<scenario
name>``; when it has ended, that folder is moved into ``tests/fixtures/deepspeed/``.

What ``save_checkpoint`` writes, in order (read from the installed deepspeed 0.19.8,
``deepspeed/runtime/engine.py``, ``DeepSpeedEngine.save_checkpoint``; the default checkpoint
engine is ``TorchCheckpointEngine``, whose ``save`` is ``torch.save(state_dict, path,
_use_new_zipfile_serialization=<config "checkpoint": {"checkpoint_serialization": ...}, default
True>)``, so every ``.pt`` here is a torch zip archive whose pickle is
``<file name without .pt>/data.pkl``; with ``checkpoint_serialization: false`` it would be
torch's legacy non-zip format):

1. ``checkpoint_engine.makedirs(save_dir)`` then ``_create_checkpoint_file`` ->
   ``makedirs(<save_dir>/<tag>)``: the tag folder is created in place, no temporary name;
2. ``_save_checkpoint`` -> ``checkpoint_engine.save(state, <tag>/mp_rank_00_model_states.pt)``
   (``_get_ckpt_name``; ``zero_pp_rank_<dp>_mp_rank_00_model_states.pt`` under ZeRO-3). ``state``
   is ``_common_checkpoint_state`` (module, buffer_names, optimizer (ZeRO-0 only: the whole torch
   optimizer state; None under ZeRO), param_shapes, frozen_param_shapes, shared_params,
   frozen_param_fragments, lr_scheduler, data_sampler, random_ltd, skipped_steps, global_steps,
   global_samples, dp_world_size, mp_world_size, the parallel metadata, ds_config, ds_version)
   updated with the caller's ``client_state`` (its keys land at the TOP level of that dict);
3. only when the optimizer is a ZeRO optimizer (stage >= 1; ``save_zero_checkpoint``):
   ``_save_zero_checkpoint`` -> ``checkpoint_engine.save({optimizer_state_dict, ds_config,
   ds_version}, <tag>/zero_pp_rank_0_mp_rank_00_optim_states.pt)``
   (``_get_zero_ckpt_name``; ``bf16_zero_pp_rank_...`` with bf16), then, on global rank 0,
   ``_copy_recovery_script(save_dir)``: ``shutil.copyfile`` of ``zero_to_fp32.py`` and then
   ``zero_to_torch.py`` into ``save_dir`` (the PARENT of the tag folder, rewritten at every save)
   plus a chmod +x;
4. ``checkpoint_engine.commit`` (a no-op returning True), then on global rank 0
   ``open(os.path.join(save_dir, 'latest'), 'w').write(tag)``: the tag, NO newline, no temporary
   file, no rename, no fsync (``load_checkpoint`` reads it back with ``.strip()``);
5. ``dist.barrier()``.

Under ZeRO-0 step 3 is skipped entirely: no optimizer shard and no ``zero_to_fp32.py``.
Every call of these functions is also traced by the child (thin wrappers that call the real
function; the trace lands in ``FIXTURES.json``, ``scenarios.<name>.observed_writes``, with the
top-level keys of each state dict DeepSpeed handed to ``checkpoint_engine.save``).

Scenarios
---------
``zero0/``
    ZeRO stage 0, saves after steps 2, 4, 6, each with
    ``client_state={"epoch": <step * 8 / 32>, "loss": <this step's loss>}``.
``zero2/``
    ZeRO stage 2, the same saves, no client_state.
``custom-tag/``
    The ``zero2`` run whose third save passes ``tag="mytag"``: ``global_step2/``,
    ``global_step4/``, ``mytag/``, and ``latest`` holds ``mytag``.
``nested-trainer/``
    A Hugging Face Trainer run (transformers 5.23.0, the ``TinyRegressor`` ``PreTrainedModel`` of
    ``fixtures_gen/hf_trainer.py``, ``use_cpu=True``, ``report_to="none"``) with
    ``deepspeed=<a ZeRO-2 config dict with "auto" values>``, max_steps=6, save_steps=2 (accelerate
    fills the "auto" values and sets ``steps_per_print`` to ``float("inf")``, which is what the
    ``ds_config`` inside the model states records). The Trainer
    writes ``checkpoint-N/`` and its ``_save_optimizer_and_scheduler`` calls
    ``model_wrapped.save_checkpoint(checkpoint-N)``, so ``global_stepN/``, ``latest``,
    ``zero_to_fp32.py`` and ``zero_to_torch.py`` are nested inside each ``checkpoint-N/``, with no
    optimizer.pt and no scheduler.pt (the scheduler is inside the DeepSpeed model states).
    Order inside a checkpoint (transformers/trainer.py ``Trainer._save_checkpoint``):
    config.json, model.safetensors, training_args.bin (``save_model`` -> ``_save``), then the
    DeepSpeed save above, then rng_state.pth, then trainer_state.json. It runs with plain
    ``python`` and the same RANK/WORLD_SIZE/MASTER_* environment; without RANK and WORLD_SIZE,
    DeepSpeed's ``init_distributed`` falls back to ``mpi_discovery`` and dies on ``import
    mpi4py``.
``torn-<moment>/``
    The ``zero2`` run SIGKILLed (``os.kill(os.getpid(), SIGKILL)``) during its third save
    (``global_step6``): ``global_step2/`` and ``global_step4/`` are complete and ``latest`` still
    says ``global_step4`` unless noted. The kill is done by wrapping the real functions DeepSpeed
    calls: ``TorchCheckpointEngine.save`` (the class method, for the two ``.pt`` files) and the
    ``open`` that ``deepspeed.runtime.engine`` calls for ``latest`` (a module-level ``open`` put
    into that module, which then calls ``builtins.open``); the wrappers act only during the third
    save. The generator itself survives, the child dies with -9.

    - ``torn-after-model-states``: right after the real save of
      ``global_step6/mp_rank_00_model_states.pt`` returned, before the optimizer shard:
      global_step6/ holds only the model states.
    - ``torn-mid-optim``: the real save writes ``global_step6/zero_pp_rank_0_mp_rank_00_optim_
      states.pt``, the file is cut to its first half (``os.truncate``) and the process killed: a
      truncated zip (a prefix of the real file), no recovery scripts rewritten.
    - ``torn-before-latest``: as ``open(<save_dir>/latest, "w")`` is called, before it opens:
      every file of global_step6 is written and the recovery scripts recopied, but ``latest``
      still names ``global_step4``.

After the runs, ``FIXTURES.json`` records the versions, the date, each scenario's config, child
exit code, kill moment and observed writes, and the size and sha256 of every file;
``README.md`` says how to regenerate. Never edit the fixtures by hand: rerun this script.
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
N_TRAIN = 32
BATCH = 8
LEARNING_RATE = 0.05
STEPS = 6
SAVE_EVERY = 2
TORN_SAVE = 3  # the third save_checkpoint call of a run: tag global_step6
TORN_TAG = "global_step6"
CUSTOM_TAG = "mytag"

DS_HF_CONFIG: dict = {
    "train_batch_size": "auto",
    "train_micro_batch_size_per_gpu": "auto",
    "gradient_accumulation_steps": "auto",
    "optimizer": {"type": "AdamW", "params": {"lr": "auto", "torch_adam": True}},
    "zero_optimization": {"stage": 2},
}

HF_ARGS: dict = {
    "per_device_train_batch_size": BATCH,
    "learning_rate": LEARNING_RATE,
    "seed": SEED,
    "data_seed": SEED,
    "use_cpu": True,
    "report_to": "none",
    "disable_tqdm": True,
    "dataloader_num_workers": 0,
    "max_steps": STEPS,
    "save_strategy": "steps",
    "save_steps": SAVE_EVERY,
    "logging_strategy": "steps",
    "logging_steps": SAVE_EVERY,
}


def ds_config(stage: int) -> dict:
    return {
        "train_batch_size": BATCH,
        "train_micro_batch_size_per_gpu": BATCH,
        "gradient_accumulation_steps": 1,
        "optimizer": {"type": "AdamW", "params": {"lr": LEARNING_RATE, "torch_adam": True}},
        "scheduler": {
            "type": "WarmupLR",
            "params": {"warmup_min_lr": 0.0, "warmup_max_lr": LEARNING_RATE, "warmup_num_steps": 2},
        },
        "zero_optimization": {"stage": stage},
        "steps_per_print": 1000,
        "wall_clock_breakdown": False,
    }


TORN_MOMENTS: dict[str, str] = {
    "after-model-states": f"{TORN_TAG}: killed right after checkpoint_engine.save returned for "
    "mp_rank_00_model_states.pt, before the optimizer shard",
    "mid-optim": f"{TORN_TAG}: zero_pp_rank_0_mp_rank_00_optim_states.pt half written (the real "
    "torch.save file cut to its first half), then killed",
    "before-latest": f"{TORN_TAG}: every shard written and zero_to_fp32.py / zero_to_torch.py "
    "recopied; killed as open(<save_dir>/latest, 'w') is called, so latest still names "
    "global_step4",
}

SCENARIOS: dict[str, dict] = {
    "zero0": {
        "description": "ZeRO stage 0, 6 steps, save_checkpoint after steps 2, 4, 6 (default tags), "
        "each with client_state={'epoch': <fractional epoch>, 'loss': <loss of the step>}.",
        "stage": 0,
        "client_state": True,
    },
    "zero2": {
        "description": "ZeRO stage 2, 6 steps, save_checkpoint after steps 2, 4, 6 (default tags).",
        "stage": 2,
    },
    "custom-tag": {
        "description": "The zero2 run whose third save is save_checkpoint(save_dir, tag='mytag').",
        "stage": 2,
        "tags": {3: CUSTOM_TAG},
    },
    "nested-trainer": {
        "description": "Hugging Face Trainer (transformers) with deepspeed=<ZeRO-2 config dict>: "
        "max_steps=6, save_steps=2; DeepSpeed's global_stepN/, latest, zero_to_fp32.py and "
        "zero_to_torch.py nested inside each checkpoint-N/.",
        "trainer": True,
    },
    **{
        f"torn-{m}": {
            "description": "The zero2 run, SIGKILLed during its third save (" + why + ").",
            "stage": 2,
            "kill": m,
        }
        for m, why in TORN_MOMENTS.items()
    },
}


# --------------------------------------------------------------------------------------------
# Child side: one training run.
# --------------------------------------------------------------------------------------------

_save_no = 0  # which save_checkpoint call of the run is under way (1, 2, 3)
_trace_file = None
_in_engine_save = False


def _say(msg: str) -> None:
    print(f"\n[deepspeed_runs child pid={os.getpid()}] {msg}", file=sys.stderr, flush=True)


def _die(msg: str) -> None:
    _say("SIGKILL: " + msg)
    os.kill(os.getpid(), signal.SIGKILL)


def _trace(**event) -> None:
    event["save"] = _save_no
    _trace_file.write(json.dumps(event) + "\n")
    _trace_file.flush()


def _rel(path) -> str:
    return os.path.relpath(os.fspath(path))


def _summary(state) -> dict:
    """What DeepSpeed hands to checkpoint_engine.save: its top-level keys and a few scalars."""
    keys = list(state) if isinstance(state, dict) else None
    out: dict = {"keys": keys}
    for k in ("global_steps", "global_samples", "skipped_steps", "epoch", "loss", "ds_version"):
        if isinstance(state, dict) and isinstance(state.get(k), (int, float, str)):
            out[k] = state[k]
    return out


def install_hooks(moment: str | None, trainer: bool) -> None:
    """Trace (and, for ``moment``, kill at) the real functions DeepSpeed calls for each file."""
    global _trace_file
    import builtins

    import deepspeed.runtime.engine as ds_engine
    from deepspeed.runtime.checkpoint_engine.torch_checkpoint_engine import TorchCheckpointEngine

    _trace_file = open("trace.jsonl", "a")  # in the scratch cwd, outside the save_dir

    real_engine_save = TorchCheckpointEngine.save

    def engine_save(self, state_dict, path):
        global _in_engine_save
        name = os.path.basename(path)
        torn = moment is not None and _save_no == TORN_SAVE
        _trace(call="TorchCheckpointEngine.save", path=_rel(path), state=_summary(state_dict))
        _in_engine_save = True
        try:
            real_engine_save(self, state_dict, path)
        finally:
            _in_engine_save = False
        if torn and moment == "after-model-states" and name.endswith("_model_states.pt"):
            _die(f"after TorchCheckpointEngine.save({path})")
        if torn and moment == "mid-optim" and name.endswith("_optim_states.pt"):
            size = os.path.getsize(path)
            os.truncate(path, size // 2)
            _die(f"{path} cut to its first {size // 2} of {size} bytes")

    real_copyfile = ds_engine.copyfile

    def copyfile(src, dst, *args, **kwargs):
        _trace(call="shutil.copyfile (engine._copy_recovery_script)", path=_rel(dst))
        return real_copyfile(src, dst, *args, **kwargs)

    def engine_open(file, mode="r", *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and os.path.basename(file) == "latest":
            _trace(call=f"open(..., {mode!r}) in deepspeed.runtime.engine", path=_rel(file))
            if moment == "before-latest" and _save_no == TORN_SAVE and "w" in mode:
                _die(f"as open({file}, {mode!r}) is called")
        return builtins.open(file, mode, *args, **kwargs)

    TorchCheckpointEngine.save = engine_save
    ds_engine.copyfile = copyfile
    ds_engine.open = engine_open  # shadows builtins.open inside deepspeed/runtime/engine.py only

    if trainer:
        import torch
        import transformers.modeling_utils as modeling_utils
        from transformers import PreTrainedConfig
        from transformers.trainer_callback import TrainerState

        real_torch_save = torch.save
        real_safe_save_file = modeling_utils.safe_save_file
        real_to_json_file = PreTrainedConfig.to_json_file
        real_save_to_json = TrainerState.save_to_json

        def torch_save(obj, f, *args, **kwargs):
            if not _in_engine_save and isinstance(f, (str, os.PathLike)):
                _trace(call="torch.save", path=_rel(f))
            return real_torch_save(obj, f, *args, **kwargs)

        def safe_save_file(tensors, filename, metadata=None):
            _trace(call="safe_save_file (PreTrainedModel.save_pretrained)", path=_rel(filename))
            return real_safe_save_file(tensors, filename, metadata=metadata)

        def to_json_file(self, json_file_path, use_diff=True):
            _trace(call="PreTrainedConfig.to_json_file", path=_rel(json_file_path))
            return real_to_json_file(self, json_file_path, use_diff=use_diff)

        def save_to_json(self, json_path):
            _trace(call="TrainerState.save_to_json", path=_rel(json_path))
            return real_save_to_json(self, json_path)

        torch.save = torch_save
        modeling_utils.safe_save_file = safe_save_file
        PreTrainedConfig.to_json_file = to_json_file
        TrainerState.save_to_json = save_to_json


def _data():
    import torch

    g = torch.Generator().manual_seed(SEED)
    w = torch.randn(IN_DIM, OUT_DIM, generator=g)
    b = torch.randn(OUT_DIM, generator=g)
    x = torch.randn(N_TRAIN, IN_DIM, generator=g)
    return x, x @ w + b


def run_ds_child(name: str) -> None:
    global _save_no
    spec = SCENARIOS[name]
    import torch
    from torch import nn

    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    install_hooks(spec.get("kill"), trainer=False)
    import deepspeed

    class TinyNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(IN_DIM, OUT_DIM)

        def forward(self, x):
            return self.linear(x)

    x, y = _data()
    model = TinyNet()
    engine, _, _, _ = deepspeed.initialize(
        model=model, model_parameters=model.parameters(), config=ds_config(spec["stage"])
    )
    _say(f"optimizer {type(engine.optimizer).__module__}.{type(engine.optimizer).__name__}")
    for step in range(1, STEPS + 1):
        i = (step - 1) * BATCH % N_TRAIN
        loss = nn.functional.mse_loss(engine(x[i : i + BATCH]), y[i : i + BATCH])
        engine.backward(loss)
        engine.step()
        if step % SAVE_EVERY == 0:
            _save_no += 1
            tag = spec.get("tags", {}).get(_save_no)
            client_state = {}
            if spec.get("client_state"):
                client_state = {"epoch": step * BATCH / N_TRAIN, "loss": loss.item()}
            engine.save_checkpoint(name, tag=tag, client_state=client_state)
            _say(f"step {step}: saved (tag {tag or 'default'}), loss {loss.item():.5f}")
    _say(f"done: engine.global_steps={engine.global_steps}")


def run_trainer_child(name: str) -> None:
    global _save_no
    import torch
    from torch import nn
    from transformers import (
        PreTrainedConfig,
        PreTrainedModel,
        Trainer,
        TrainerCallback,
        TrainingArguments,
        set_seed,
    )
    from transformers.utils import logging as hf_logging

    torch.set_num_threads(1)
    set_seed(SEED)
    hf_logging.disable_progress_bar()
    install_hooks(None, trainer=True)

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

    class CountSaves(TrainerCallback):
        # on_step_end runs just before the Trainer's _save_checkpoint for that step: it only
        # numbers the saves in the trace.
        def on_step_end(self, args, state, control, **kwargs):
            global _save_no
            if control.should_save:
                _save_no += 1

    x, y = _data()
    args = TrainingArguments(output_dir=name, deepspeed=DS_HF_CONFIG, **HF_ARGS)
    trainer = Trainer(
        model=TinyRegressor(TinyConfig()),
        args=args,
        train_dataset=Rows(x, y),
        callbacks=[CountSaves()],
    )
    trainer.train()
    losses = [(e["step"], round(e["loss"], 5)) for e in trainer.state.log_history if "loss" in e]
    _say(f"done: loss by step {losses}; engine.global_steps={trainer.deepspeed.global_steps}")


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
        DS_ACCELERATOR="cpu",
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(_free_port()),
        RANK="0",
        WORLD_SIZE="1",
        LOCAL_RANK="0",
        LOCAL_WORLD_SIZE="1",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        CUDA_VISIBLE_DEVICES="",
        PYTHONHASHSEED="0",
        TOKENIZERS_PARALLELISM="false",
        OMP_NUM_THREADS="1",
        GLOO_SOCKET_IFNAME="lo",
    )
    return env


def run_scenario(name: str, scratch: Path, dest: Path) -> dict:
    spec = SCENARIOS[name]
    work = scratch / name
    work.mkdir(parents=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", name]
    t0 = time.monotonic()
    with open(work / "child.log", "w") as log:
        proc = subprocess.run(
            cmd, cwd=work, env=_child_env(), stdout=log, stderr=subprocess.STDOUT, timeout=900
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
        raise SystemExit(f"scenario {name}: the run left no {name}/")
    trace_path = work / "trace.jsonl"
    writes = [json.loads(line) for line in trace_path.read_text().splitlines()]
    extra = sorted(
        p.name for p in work.iterdir() if p.name not in (name, "child.log", "trace.jsonl")
    )
    shutil.move(str(out), str(dest / name))
    notes = [
        re.sub(r"pid=\d+", "pid=N", n)
        for n in re.findall(r"\[deepspeed_runs child[^\n]*", log_text)
    ]
    print(
        f"  {name}: exit {proc.returncode} in {seconds}s; {notes[-1] if notes else ''}", flush=True
    )
    rec: dict = {
        "description": spec["description"],
        "command": f"python fixtures_gen/deepspeed_runs.py --child {name}",
        "environment": "DS_ACCELERATOR=cpu MASTER_ADDR=127.0.0.1 MASTER_PORT=<free port> RANK=0 "
        "WORLD_SIZE=1 LOCAL_RANK=0 CUDA_VISIBLE_DEVICES= OMP_NUM_THREADS=1",
        "cwd": "<scratch folder>; save_dir / output_dir is the relative path " + json.dumps(name),
    }
    if spec.get("trainer"):
        rec["training_args"] = {"output_dir": name, **HF_ARGS, "deepspeed": DS_HF_CONFIG}
    else:
        rec["deepspeed_config"] = ds_config(spec["stage"])
        rec["steps"] = STEPS
        rec["save_checkpoint_calls"] = [
            {
                "after_step": s,
                "call": "engine.save_checkpoint("
                + json.dumps(name)
                + (f", tag={spec['tags'][k]!r}" if k in spec.get("tags", {}) else "")
                + (
                    ", client_state={'epoch': <step*8/32>, 'loss': <loss>}"
                    if spec.get("client_state")
                    else ""
                )
                + ")",
            }
            for k, s in enumerate(range(SAVE_EVERY, STEPS + 1, SAVE_EVERY), start=1)
        ]
    rec.update(
        child_exit_code=proc.returncode,
        child_seconds=seconds,
        child_notes=notes,
        other_files_left_in_cwd=extra,
        observed_writes=writes,
    )
    if kill:
        rec["kill_moment"] = kill
        rec["kill_moment_description"] = TORN_MOMENTS[kill]
        rec["killed_while_saving"] = TORN_TAG
    return rec


def _versions() -> dict:
    v = {"python": platform.python_version()}
    for pkg in (
        "deepspeed",
        "torch",
        "transformers",
        "accelerate",
        "safetensors",
        "numpy",
        "huggingface-hub",
        "ninja",
        "hjson",
        "py-cpuinfo",
        "pydantic",
        "psutil",
        "msgpack",
        "einops",
    ):
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
# Checkpoint folders written by the real DeepSpeed engine

Every folder here is the `save_dir` of a real DeepSpeed (`deepspeed.initialize` +
`engine.save_checkpoint`) run on the CPU (gloo, one process, a 36-parameter `nn.Linear(8, 4)`,
synthetic data, fixed seeds), exactly as DeepSpeed left it; `nested-trainer/` is the `output_dir`
of a Hugging Face Trainer run with `deepspeed=<ZeRO-2 config>`, where DeepSpeed's files sit
inside each `checkpoint-N/`. The `torn-*` folders are the `zero2` run SIGKILLed during its third
save (`global_step6`); `torn-mid-optim` also had its optimizer shard cut to its first half
before the kill. `FIXTURES.json` says which versions wrote them, what each scenario is, the kill
moment of each torn one, the writes observed (in order) and the size and sha256 of every file.
The module docstring of `fixtures_gen/deepspeed_runs.py` describes every scenario and the order
in which this DeepSpeed version writes a checkpoint's files.

Facts worth knowing when reading them:

- `latest` holds the tag with no newline (e.g. `global_step6`, 12 bytes); it is rewritten in
  place (`open(..., 'w')`) after the tag's files, with no temporary file.
- `zero_to_fp32.py` and `zero_to_torch.py` are copied into the `save_dir` (next to `latest`),
  only under ZeRO (stage >= 1): `zero0/` has none.
- Every `.pt` is a torch zip archive; `global_steps`, `global_samples` and the caller's
  `client_state` keys (`epoch`, `loss` in `zero0/`) are top-level keys of the dict in
  `<tag>/mp_rank_00_model_states.pt` (`mp_rank_00_model_states/data.pkl`).

The files are generated: do not edit them by hand. To regenerate (the virtual environment
`.venv-fixtures/` with `fixtures_gen/requirements-deepspeed.txt`; `make test` never needs it):

    .venv-fixtures/bin/python fixtures_gen/deepspeed_runs.py --out tests/fixtures/deepspeed

The runs are deterministic: two regenerations with the same versions wrote every file byte for
byte the same (the torch zips' `.data/serialization_id` too); only FIXTURES.json's date and
timings change. The torn runs match `zero2/` up to the kill (`custom-tag/mytag/` holds the same
bytes as `zero2/global_step6/`), and `torn-mid-optim`'s cut shard is a prefix of
`zero2/global_step6/zero_pp_rank_0_mp_rank_00_optim_states.pt`.
"""


def run_parent(out: Path, only: list[str] | None) -> None:
    names = only or list(SCENARIOS)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    started = _dt.datetime.now(_dt.timezone.utc)
    t0 = time.monotonic()
    records = {}
    with tempfile.TemporaryDirectory(prefix="ckpt-deepspeed-fixtures-") as tmp:
        for name in names:
            records[name] = run_scenario(name, Path(tmp), out)
    (out / "README.md").write_text(README)
    meta = {
        "generator": "fixtures_gen/deepspeed_runs.py (.venv-fixtures/bin/python "
        "fixtures_gen/deepspeed_runs.py --out tests/fixtures/deepspeed)",
        "generated_at": started.isoformat(timespec="seconds"),
        "generation_seconds": round(time.monotonic() - t0, 1),
        "versions": _versions(),
        "model": "TinyNet(nn.Module) / TinyRegressor(PreTrainedModel) for nested-trainer: one "
        "nn.Linear(8, 4), 36 float32 parameters, MSE loss",
        "data": f"synthetic, seed {SEED}: {N_TRAIN} train rows y = x@W + b, batches of {BATCH} "
        f"(an epoch is {N_TRAIN // BATCH} steps)",
        "checkpoint_write_order": [
            "<save_dir>/ and <save_dir>/<tag>/ (DeepSpeedEngine.save_checkpoint -> "
            "checkpoint_engine.makedirs, _create_checkpoint_file)",
            "<tag>/mp_rank_00_model_states.pt (DeepSpeedEngine._save_checkpoint -> "
            "TorchCheckpointEngine.save -> torch.save)",
            "<tag>/zero_pp_rank_0_mp_rank_00_optim_states.pt, ZeRO only "
            "(DeepSpeedEngine._save_zero_checkpoint -> TorchCheckpointEngine.save -> torch.save)",
            "<save_dir>/zero_to_fp32.py then <save_dir>/zero_to_torch.py, ZeRO only, rank 0 "
            "(DeepSpeedEngine._copy_recovery_script -> shutil.copyfile, os.chmod +x)",
            "<save_dir>/latest, rank 0 (DeepSpeedEngine.save_checkpoint: open(.., 'w')"
            ".write(tag), no newline), after checkpoint_engine.commit (a no-op)",
            "dist.barrier()",
        ],
        "nested_trainer_write_order": [
            "checkpoint-N/config.json (PreTrainedModel.save_pretrained -> "
            "PreTrainedConfig.to_json_file)",
            "checkpoint-N/model.safetensors (PreTrainedModel.save_pretrained -> safe_save_file)",
            "checkpoint-N/training_args.bin (Trainer._save -> torch.save)",
            "checkpoint-N/global_stepN/..., zero_to_fp32.py, zero_to_torch.py, latest "
            "(Trainer._save_optimizer_and_scheduler -> model_wrapped.save_checkpoint(checkpoint-N),"
            " the order above); no optimizer.pt, no scheduler.pt",
            "checkpoint-N/rng_state.pth (Trainer._save_rng_state -> torch.save)",
            "checkpoint-N/trainer_state.json (TrainerState.save_to_json)",
        ],
        "scenarios": records,
        "files": _listing(out),
    }
    (out / "FIXTURES.json").write_text(json.dumps(meta, indent=2, allow_nan=False) + "\n")
    print(f"wrote {out} in {meta['generation_seconds']}s", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, help="where to write the fixtures (deleted first)")
    ap.add_argument("--only", nargs="*", choices=list(SCENARIOS), help="run only these scenarios")
    ap.add_argument("--child", choices=list(SCENARIOS), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        if SCENARIOS[a.child].get("trainer"):
            run_trainer_child(a.child)
        else:
            run_ds_child(a.child)
    elif a.out:
        run_parent(a.out.resolve(), a.only)
    else:
        ap.error("--out is required")


if __name__ == "__main__":
    main()
