"""Record checkpoint folders written by real PyTorch DCP through TorchTitan's checkpointer.

Run as ``.venv-fixtures/bin/python fixtures_gen/dcp_runs.py --out tests/fixtures/dcp`` inside
``.venv-fixtures/``, whose pinned versions are in ``fixtures_gen/requirements-dcp.txt`` (torchtitan
is installed there with ``pip install --no-deps``: see that file). Nothing here is imported by
the ckpt test suite; the suite only reads what this script leaves in ``tests/fixtures/dcp/``.

Every scenario trains the same tiny model for real (``torch`` 2.14.1 on the CPU) and saves it
with ``torch.distributed.checkpoint`` (DCP). The saving is done by TorchTitan 0.3.0's own
``CheckpointManager`` (torchtitan/components/checkpointer/dcp.py), built the way
``torchtitan/trainer.py`` builds it: ``ModelWrapper`` over the model, TorchTitan's
``OptimizersContainer`` (AdamW, "for-loop" implementation), ``LRSchedulersContainer`` (linear
warmup/decay), ``ParallelAwareDataloader`` (torchdata's ``StatefulDataLoader``) and a train state
``{"step", "ntokens_seen"}`` under the key ``train_state``, exactly like ``Trainer.state_dict``.
The training loop is the one of ``Trainer.train``: ``step += 1``, one optimizer step, then
``checkpointer.save(step, last_step=(step == training.steps))``. Folder names therefore come from
TorchTitan's ``CheckpointManager._create_checkpoint_id``: ``<dump_folder>/checkpoint/step-<N>``
(``checkpoint.folder`` keeps its default ``"checkpoint"``; the dump folder is the scenario name).
Nothing in those folders is written, edited or faked by this script: the only interference is a
SIGKILL (``os.kill(os.getpid(), SIGKILL)``) in the torn scenarios, done by wrapping the real DCP
function that is about to write a given file.

TorchTitan semantics kept as they are (defaults of ``CheckpointManager.Config``):

- ``interval=10``: a full checkpoint (model + optimizer + lr_scheduler + dataloader +
  train_state) at steps 10, 20, 30.
- ``last_save_model_only=True``: the save at the LAST step (``training.steps = 35``) is model-only
  (just the two model tensors, cast to ``export_dtype`` float32), so ``step-35`` cannot resume
  the optimizer. This is how every default TorchTitan run ends.
- ``create_seed_checkpoint``: TorchTitan's seed run (``train.py`` with
  ``--checkpoint.create_seed_checkpoint``, one process) calls ``checkpointer.save(curr_step=0,
  last_step=True)``, i.e. a model-only ``step-0``; the training run then finds it with
  ``_find_load_step`` and loads the model only (``model_only = step == 0``). The scenarios that
  have a seed run it as a separate child process first, as a user does.
- ``keep_latest_k=10`` (no purge happens with five checkpoints; ``_purge_stale_checkpoints`` runs
  after every interval save on rank 0).

Process groups: the scenarios run in ONE process. "gloo" scenarios call
``dist.init_process_group("gloo")`` with RANK=0, WORLD_SIZE=1, MASTER_ADDR=127.0.0.1 (a group of
one, what ``torchrun --nproc_per_node=1`` gives TorchTitan); ``no-dist`` never initializes
torch.distributed, so ``dcp.save`` warns and saves "in a single process" (``no_dist``), and
``keep_latest_k`` is 0 there because TorchTitan's purge calls ``dist.get_rank()``.

The order of writes of one ``dcp.save`` (torch 2.14.1, read from
torch/distributed/checkpoint/state_dict_saver.py ``_save_state_dict`` and filesystem.py):

1. ``_FileSystemWriter.prepare_local_plan``: ``Path.mkdir(parents=True, exist_ok=True)`` of the
   checkpoint folder; if a ``.metadata`` is already there it only warns (``overwrite=True``).
2. ``_FileSystemWriter.write_data`` -> ``_write_files_from_queue``: every rank writes its data file
   ``__<rank>_<n>.distcp`` (here ``__0_0.distcp``: one file per rank, ``single_file_per_rank``),
   opened ``"wb"`` in place (no temporary name): first the non-tensor items (each a
   ``torch.save`` of the object, i.e. a whole torch zip archive embedded at an offset), then each
   tensor (a ``torch.save`` of the tensor, again a zip archive), then ``flush`` + ``os.fsync``.
3. Coordinator only, after every rank's results are gathered (``all_reduce("write", ...)``):
   ``_FileSystemWriter.finish`` pickles the ``Metadata`` (``pickle.dump``) into ``.metadata.tmp``,
   flush + fsync, removes an existing ``.metadata`` (``FileSystem.rm_file``) and renames
   (``FileSystem.rename`` = ``Path.rename``) ``.metadata.tmp`` to ``.metadata``. The directory is
   not fsynced.

Scenarios
---------
``complete/``
    gloo group of one. Seed run (``step-0``, model-only), then 35 training steps: ``step-10``,
    ``step-20``, ``step-30`` (full) and ``step-35`` (final, model-only).
``torn-before-metadata/``
    The same two runs; the training run is SIGKILLed while saving ``step-30``, as
    ``_FileSystemWriter.finish`` is called: ``__0_0.distcp`` written and fsynced, no
    ``.metadata.tmp``, no ``.metadata``.
``torn-metadata-tmp/``
    The same; killed in ``finish`` as ``FileSystem.rename(".metadata.tmp", ".metadata")`` is
    called: ``__0_0.distcp`` + a complete, fsynced ``.metadata.tmp``, no ``.metadata``.
``overwrite-torn/``
    The ``complete`` runs, then a third run that resumes with ``--checkpoint.load_step 20`` and a
    different learning rate (a user retrying from step 20), trains steps 21..30 and re-saves into
    the EXISTING ``step-30``: DCP warns "Detected an existing checkpoint ... overwriting", rewrites
    ``__0_0.distcp`` in place, and is SIGKILLed as ``finish`` is called: the OLD ``.metadata``
    (of the first run) stays beside the NEW data file. ``step-35`` is the first run's.
``no-dist/``
    No process group at all, 20 steps: ``step-10`` (full), ``step-20`` (final, model-only). Same
    file names as with a group.
``rank-local/``
    gloo group of one, TorchTitan's state dict (``CheckpointManager._flattened_model_states_sd``)
    saved with ``dcp.save(state, checkpoint_id=CheckpointManager._create_checkpoint_id(step),
    use_collectives=False)`` at steps 10 and 20 (TorchTitan itself never passes
    ``use_collectives``). torch 2.14.1 then writes ``__0_0.distcp`` and ``__0.metadata`` (through
    ``__0.metadata.tmp``) and no ``.metadata``.
``hf-storage/``
    gloo group of one, 20 steps with ``last_save_in_hf=True``: ``step-10`` is a normal DCP
    checkpoint, the final ``step-20`` goes through TorchTitan's HF path (``dcp_save(...,
    to_hf=True)``), i.e. ``HuggingFaceStorageWriter(path, save_distributed=True,
    fqn_to_index_mapping=None, enable_consolidation=True)``: shards under ``step-20/sharded/`` and
    the consolidated ``model-00001-of-00001.safetensors`` + ``model.safetensors.index.json`` in
    ``step-20/``. TorchTitan requires a state-dict adapter for this; the tiny model's adapter is
    the identity (the parameter names are already HF-style).

The model and the data: ``Tiny`` is one ``nn.Linear(8, 4)`` (36 float32 parameters, keys
``linear.weight``/``linear.bias``), MSE loss; the data are 64 rows ``y = x @ W + b`` made from a
fixed seed, served forever in order by an ``IterableDataset`` in batches of 8 (TorchTitan's
datasets are infinite iterables too); ``ntokens_seen`` grows by 8 per step. No network is used.

After the runs, ``FIXTURES.json`` records the versions, the date, each scenario's runs, exit codes
and kill moment, and the size and sha256 of every file; ``README.md`` says how to regenerate.
``.metadata`` holds a random ``save_id`` (uuid4) and so differs between regenerations, and so does
the key order of the ``__metadata__`` header of ``hf-storage``'s sharded safetensors file (written
from a hash map by the safetensors library); the ``.distcp`` data files and the consolidated
safetensors file are deterministic.
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
import warnings
from pathlib import Path

SEED = 1234
IN_DIM, OUT_DIM = 8, 4
N_ROWS, BATCH = 64, 8
LR = 0.05
RETRY_LR = 0.02
TORN_STEP = 30

TORN_MOMENTS: dict[str, str] = {
    "before-metadata": f"step-{TORN_STEP}: killed as _FileSystemWriter.finish is called, after "
    "write_data wrote and fsynced __0_0.distcp, before .metadata.tmp is created",
    "metadata-tmp": f"step-{TORN_STEP}: killed as FileSystem.rename('.metadata.tmp', "
    "'.metadata') is called in _FileSystemWriter.finish, after .metadata.tmp was written and "
    "fsynced",
}

# One run = one child process. "mode": "titan" (CheckpointManager.save in the Trainer loop),
# "seed" (TorchTitan's create_seed_checkpoint: save(curr_step=0, last_step=True)) or
# "rank-local" (dcp.save with use_collectives=False).
SEED_RUN = {"mode": "seed", "dist": True}
TRAIN_35 = {"mode": "titan", "dist": True, "steps": 35}

SCENARIOS: dict[str, dict] = {
    "complete": {
        "description": "gloo group of one. TorchTitan seed run (step-0, model-only), then 35 "
        "steps: step-10, step-20, step-30 (full state) and step-35 (last step, model-only by "
        "TorchTitan's default last_save_model_only=True).",
        "runs": [SEED_RUN, TRAIN_35],
    },
    **{
        f"torn-{m}": {
            "description": "The 'complete' runs; the training run is SIGKILLed while saving "
            + why
            + ".",
            "runs": [SEED_RUN, {**TRAIN_35, "kill": m}],
        }
        for m, why in TORN_MOMENTS.items()
    },
    "overwrite-torn": {
        "description": "The 'complete' runs, then a retry: --checkpoint.load_step 20 with "
        f"lr {RETRY_LR} instead of {LR}, steps 21..30, re-saving into the existing step-30; "
        "SIGKILLed as _FileSystemWriter.finish is called: the new __0_0.distcp beside the "
        "first run's .metadata.",
        "runs": [
            SEED_RUN,
            TRAIN_35,
            {**TRAIN_35, "load_step": 20, "lr": RETRY_LR, "kill": "before-metadata"},
        ],
    },
    "no-dist": {
        "description": "torch.distributed never initialized (dcp.save no_dist), 20 steps: "
        "step-10 (full), step-20 (last step, model-only); keep_latest_k=0 (TorchTitan's purge "
        "needs a process group).",
        "runs": [{"mode": "titan", "dist": False, "steps": 20, "keep_latest_k": 0}],
    },
    "rank-local": {
        "description": "gloo group of one; TorchTitan's state dict saved at steps 10 and 20 "
        "with dcp.save(..., use_collectives=False): __0_0.distcp + __0.metadata, no .metadata.",
        "runs": [{"mode": "rank-local", "dist": True, "steps": 20}],
    },
    "hf-storage": {
        "description": "gloo group of one, 20 steps, last_save_in_hf=True: step-10 is DCP, the "
        "final step-20 is written by HuggingFaceStorageWriter (TorchTitan's to_hf path: "
        "sharded/ then consolidated model-00001-of-00001.safetensors + "
        "model.safetensors.index.json).",
        "runs": [{"mode": "titan", "dist": True, "steps": 20, "last_save_in_hf": True}],
    },
}


# --------------------------------------------------------------------------------------------
# Child side: one run.
# --------------------------------------------------------------------------------------------


def _say(msg: str) -> None:
    print(f"\n[dcp child pid={os.getpid()}] {msg}", file=sys.stderr, flush=True)


def _die(msg: str) -> None:
    _say("SIGKILL: " + msg)
    os.kill(os.getpid(), signal.SIGKILL)


def _in_torn_checkpoint(path: object) -> bool:
    return isinstance(path, (str, os.PathLike)) and f"step-{TORN_STEP}" in Path(path).parts


def install_kill_hook(moment: str) -> None:
    """Wrap the real DCP function that is about to write a file, so that the process dies."""
    from torch.distributed.checkpoint import filesystem

    real_finish = filesystem._FileSystemWriter.finish
    real_rename = filesystem.FileSystem.rename

    def finish(self, metadata, results):
        if moment == "before-metadata" and _in_torn_checkpoint(self.path):
            _die(f"as _FileSystemWriter.finish is called for {self.path}")
        return real_finish(self, metadata, results)

    def rename(self, path, new_path):
        if moment == "metadata-tmp" and _in_torn_checkpoint(path):
            _die(f"as FileSystem.rename({path}, {new_path}) is called")
        return real_rename(self, path, new_path)

    filesystem._FileSystemWriter.finish = finish
    filesystem.FileSystem.rename = rename


def run_child(name: str, index: int) -> None:
    spec = SCENARIOS[name]["runs"][index]
    import torch
    import torch.distributed as dist
    from torch import nn

    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    warnings.simplefilter("always")  # DCP's warnings go to the child log

    from torchtitan.components.checkpoint import CheckpointManager
    from torchtitan.components.dataloader import ParallelAwareDataloader
    from torchtitan.components.optimizer import LRSchedulersContainer, OptimizersContainer
    from torchtitan.components.optimizer.optimizer import ParamGroupConfig
    from torchtitan.protocols.state_dict_adapter import BaseStateDictAdapter

    if spec["dist"]:
        dist.init_process_group("gloo")  # env://: RANK=0, WORLD_SIZE=1, MASTER_* from parent
        _say(f"gloo process group: rank {dist.get_rank()} of {dist.get_world_size()}")

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(IN_DIM, OUT_DIM)

        def forward(self, x):
            return self.linear(x)

    g = torch.Generator().manual_seed(SEED)
    w = torch.randn(IN_DIM, OUT_DIM, generator=g)
    b = torch.randn(OUT_DIM, generator=g)
    x_all = torch.randn(N_ROWS, IN_DIM, generator=g)
    y_all = x_all @ w + b

    class Rows(torch.utils.data.IterableDataset):
        """The 64 rows in order, forever (like TorchTitan's infinite datasets)."""

        def __iter__(self):
            while True:
                for i in range(N_ROWS):
                    yield x_all[i], y_all[i]

    class TrainState:
        """What TorchTitan's Trainer saves under "train_state" (Trainer.state_dict)."""

        def __init__(self):
            self.step = 0
            self.ntokens_seen = 0

        def state_dict(self):
            return {"step": self.step, "ntokens_seen": self.ntokens_seen}

        def load_state_dict(self, state_dict):
            self.step = state_dict["step"]
            self.ntokens_seen = state_dict["ntokens_seen"]

    class IdentityAdapter(BaseStateDictAdapter):
        """The tiny model's HF names are its own names ("linear.weight", "linear.bias")."""

        def __init__(self, model_config=None, hf_assets_path=None):
            self.fqn_to_index_mapping = None
            self.hf_assets_path = hf_assets_path

        def to_hf(self, state_dict):
            return dict(state_dict)

        def from_hf(self, hf_state_dict):
            return dict(hf_state_dict)

        def get_hf_storage_reader(self, path, from_quantized=False):
            from torch.distributed.checkpoint import HuggingFaceStorageReader

            return HuggingFaceStorageReader(path)

    steps = spec.get("steps", 1)
    model = Tiny()
    nn.init.normal_(model.linear.weight, std=0.1)
    nn.init.zeros_(model.linear.bias)
    optimizers = OptimizersContainer(
        OptimizersContainer.Config(
            param_groups=[
                ParamGroupConfig(
                    pattern=".*",
                    optimizer_name="AdamW",
                    optimizer_kwargs={"lr": spec.get("lr", LR), "weight_decay": 0.0},
                )
            ],
            implementation="for-loop",
        ),
        model_parts=[model],
    )
    lr_schedulers = LRSchedulersContainer.Config(warmup_steps=5).build(
        optimizers=optimizers, training_steps=steps
    )
    dataloader = ParallelAwareDataloader(Rows(), dp_rank=0, dp_world_size=1, batch_size=BATCH)
    train_state = TrainState()
    ckpt_config = CheckpointManager.Config(
        enable=True,
        interval=10,
        keep_latest_k=spec.get("keep_latest_k", 10),
        load_step=spec.get("load_step", -1),
        last_save_in_hf=spec.get("last_save_in_hf", False),
        create_seed_checkpoint=spec["mode"] == "seed",
    )
    checkpointer = ckpt_config.build(
        dataloader=dataloader,
        model_parts=[model],
        optimizers=optimizers,
        lr_schedulers=lr_schedulers,
        states={"train_state": train_state},
        sd_adapter=IdentityAdapter() if spec.get("last_save_in_hf") else None,
        base_folder=name,
    )
    if spec.get("kill"):
        install_kill_hook(spec["kill"])

    if spec["mode"] == "seed":
        # torchtitan/train.py with --checkpoint.create_seed_checkpoint
        checkpointer.save(curr_step=0, last_step=True)
        checkpointer.close()
        _say(f"seed checkpoint written: {sorted(os.listdir(os.path.join(name, 'checkpoint')))}")
        return

    # torchtitan/trainer.py Trainer.train
    loaded = checkpointer.load(step=ckpt_config.load_step)
    _say(f"checkpointer.load -> {loaded}; training starts at step {train_state.step + 1}")
    data_iterator = iter(dataloader)
    losses = {}
    while train_state.step < steps:
        train_state.step += 1
        x, y = next(data_iterator)
        optimizers.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizers.step()
        lr_schedulers.step()
        train_state.ntokens_seen += x.shape[0]
        losses[train_state.step] = round(loss.item(), 5)
        if spec["mode"] == "rank-local":
            if train_state.step % ckpt_config.interval == 0:
                import torch.distributed.checkpoint as dcp

                dcp.save(
                    checkpointer._flattened_model_states_sd(),
                    checkpoint_id=checkpointer._create_checkpoint_id(train_state.step),
                    use_collectives=False,
                )
        else:
            checkpointer.save(train_state.step, last_step=(train_state.step == steps))
    checkpointer.close()
    _say(
        f"done: loss at steps 10/20/30/35: "
        f"{[losses.get(s) for s in (10, 20, 30, 35)]}; "
        f"folders {sorted(os.listdir(os.path.join(name, 'checkpoint')))}"
    )
    if spec["dist"]:
        dist.destroy_process_group()


# --------------------------------------------------------------------------------------------
# Parent side.
# --------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _child_env() -> dict:
    env = dict(os.environ)
    env.update(
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        WANDB_MODE="disabled",
        CUDA_VISIBLE_DEVICES="",
        PYTHONHASHSEED="0",
        OMP_NUM_THREADS="1",
        GLOO_SOCKET_IFNAME="lo",
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(_free_port()),
        RANK="0",
        LOCAL_RANK="0",
        WORLD_SIZE="1",
        LOCAL_WORLD_SIZE="1",
    )
    return env


def _describe_run(spec: dict) -> str:
    mode = spec["mode"]
    if mode == "seed":
        return "TorchTitan seed run: checkpointer.save(curr_step=0, last_step=True)"
    parts = [f"training.steps={spec['steps']}", "checkpoint.interval=10"]
    for key in ("load_step", "keep_latest_k", "last_save_in_hf", "lr"):
        if key in spec:
            parts.append(f"{key}={spec[key]}")
    if mode == "rank-local":
        parts.append(
            "dcp.save(..., use_collectives=False) at steps 10, 20 instead of checkpointer.save"
        )
    return "train: " + ", ".join(parts)


def run_scenario(name: str, scratch: Path, dest: Path) -> dict:
    runs = SCENARIOS[name]["runs"]
    work = scratch / name
    work.mkdir(parents=True)
    script = str(Path(__file__).resolve())
    records = []
    notes_all = []
    for index, spec in enumerate(runs):
        cmd = [sys.executable, script, "--child", name, "--run", str(index)]
        t0 = time.monotonic()
        log_path = work / f"child-{index}.log"
        with open(log_path, "w") as log:
            proc = subprocess.run(
                cmd, cwd=work, env=_child_env(), stdout=log, stderr=subprocess.STDOUT, timeout=600
            )
        seconds = round(time.monotonic() - t0, 1)
        log_text = log_path.read_text()
        expected = -signal.SIGKILL if spec.get("kill") else 0
        if proc.returncode != expected:
            sys.stderr.write(log_text[-6000:])
            raise SystemExit(
                f"scenario {name} run {index}: child exited {proc.returncode}, expected {expected}"
            )
        notes = [re.sub(r"pid=\d+", "pid=N", n) for n in re.findall(r"\[dcp child[^\n]*", log_text)]
        dcp_warnings = sorted(
            {
                re.sub(r"/\S*/" + re.escape(name) + "/", name + "/", m)
                for m in re.findall(r"UserWarning: ([^\n]*)", log_text)
            }
        )
        rec = {
            "run": index,
            "what": _describe_run(spec),
            "command": f"python fixtures_gen/dcp_runs.py --child {name} --run {index}",
            "process_group": "gloo, rank 0 of world size 1 (env://, 127.0.0.1)"
            if spec["dist"]
            else "none (torch.distributed not initialized)",
            "child_exit_code": proc.returncode,
            "child_seconds": seconds,
            "child_notes": notes,
            "warnings": dcp_warnings,
        }
        if spec.get("kill"):
            rec["kill_moment"] = spec["kill"]
            rec["kill_moment_description"] = TORN_MOMENTS[spec["kill"]]
            rec["killed_while_saving"] = f"checkpoint/step-{TORN_STEP}"
        records.append(rec)
        notes_all.extend(notes)
    out = work / name
    if not out.is_dir():
        raise SystemExit(f"scenario {name}: the runs left no {name}/")
    shutil.move(str(out), str(dest / name))
    print(f"  {name}: {notes_all[-1] if notes_all else ''}", flush=True)
    return {
        "description": SCENARIOS[name]["description"],
        "cwd": "<scratch folder>; TorchTitan's dump folder (base_folder) is the relative path "
        + json.dumps(name),
        "runs": records,
    }


def _versions() -> dict:
    v = {"python": platform.python_version()}
    for pkg in ("torch", "torchtitan", "torchdata", "tyro", "numpy", "safetensors"):
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
# Checkpoint folders written by real PyTorch DCP through TorchTitan's checkpointer

Every folder here is the dump folder of a real run (torch 2.14.1 `torch.distributed.checkpoint`,
TorchTitan 0.3.0 `CheckpointManager`, CPU, a 36-parameter `nn.Linear(8, 4)`, synthetic data,
fixed seeds), exactly as the run left it: `<scenario>/checkpoint/step-<N>/`, TorchTitan's naming
(`CheckpointManager._create_checkpoint_id`). The torn scenarios are the same run SIGKILLed
part-way through saving `step-30`. `FIXTURES.json` says which versions wrote them, what each
scenario and each of its runs is, the kill moment of each torn one, and the size and sha256 of
every file. The module docstring of `fixtures_gen/dcp_runs.py` describes every scenario and the
order in which DCP writes a checkpoint's files.

A DCP checkpoint folder holds `__<rank>_<n>.distcp` data files and `.metadata` (a pickle of
`torch.distributed.checkpoint.metadata.Metadata`), written last through `.metadata.tmp` + rename;
in rank-local mode (`use_collectives=False`) `__<rank>.metadata` instead. With TorchTitan's
defaults the seed checkpoint `step-0` and the last step's checkpoint are model-only. `.metadata`
contains a random `save_id`, so its bytes change at each regeneration (as does the `__metadata__`
key order in `hf-storage/checkpoint/step-20/sharded/*.safetensors`); the `.distcp` files do not.

The files are generated: do not edit them by hand. To regenerate:

    .venv-fixtures/bin/python fixtures_gen/dcp_runs.py --out tests/fixtures/dcp

with `.venv-fixtures/` holding `fixtures_gen/requirements-dcp.txt` (torchtitan installed with
`--no-deps`, see that file).
"""


def run_parent(out: Path, only: list[str] | None) -> None:
    names = only or list(SCENARIOS)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    started = _dt.datetime.now(_dt.timezone.utc)
    t0 = time.monotonic()
    records = {}
    with tempfile.TemporaryDirectory(prefix="ckpt-dcp-fixtures-") as tmp:
        for name in names:
            records[name] = run_scenario(name, Path(tmp), out)
    (out / "README.md").write_text(README)
    meta = {
        "generator": "fixtures_gen/dcp_runs.py (python fixtures_gen/dcp_runs.py --out "
        "tests/fixtures/dcp)",
        "generated_at": started.isoformat(timespec="seconds"),
        "generation_seconds": round(time.monotonic() - t0, 1),
        "versions": _versions(),
        "model": "Tiny(nn.Module): one nn.Linear(8, 4) (keys linear.weight, linear.bias), 36 "
        "float32 parameters, MSE loss; TorchTitan OptimizersContainer (AdamW lr 0.05, "
        "for-loop), LRSchedulersContainer (warmup 5, linear decay), ParallelAwareDataloader",
        "data": f"synthetic, seed {SEED}: {N_ROWS} rows y = x@W + b, served in order forever, "
        f"batch {BATCH}",
        "layout": "<dump_folder>/checkpoint/step-<N>/ (CheckpointManager._create_checkpoint_id: "
        "filesystem.join(folder, f'step-{step}'), folder = join(base_folder, 'checkpoint'))",
        "state_dict_keys": "model tensors at the top level (linear.weight, linear.bias); "
        "optimizer.state.<fqn>.{step,exp_avg,exp_avg_sq}, optimizer.param_groups.<fqn>.<hp>; "
        "lr_scheduler.last_epoch; dataloader.dp_rank_0 (pickled StatefulDataLoader state), "
        "dataloader.world_size; train_state.step, train_state.ntokens_seen. Model-only "
        "checkpoints (step-0, the last step) hold just the model tensors.",
        "checkpoint_write_order": [
            "mkdir of step-<N>/ (_FileSystemWriter.prepare_local_plan -> FileSystem.mkdir, "
            "parents=True, exist_ok=True; an existing .metadata only gives a warning)",
            "__<rank>_<n>.distcp, here __0_0.distcp (_FileSystemWriter.write_data -> "
            "_write_files_from_queue: open 'wb' in place, non-tensor items then tensors, each "
            "a torch.save archive, then flush + os.fsync)",
            ".metadata.tmp (_FileSystemWriter.finish, coordinator only, after all ranks' "
            "write results are gathered: pickle.dump(Metadata), flush + os.fsync)",
            "rm of an existing .metadata (FileSystem.rm_file), then rename .metadata.tmp -> "
            ".metadata (FileSystem.rename = Path.rename); no directory fsync",
            "rank-local mode (use_collectives=False): __<rank>.metadata.tmp -> "
            "__<rank>.metadata by every rank, then a barrier",
            "TorchTitan then calls _purge_stale_checkpoints (rank 0; keeps the newest "
            "keep_latest_k step-N by name, deleted by a background thread)",
        ],
        "where_values_are": {
            ".metadata": "a plain pickle (protocol 4) of torch.distributed.checkpoint.metadata."
            "Metadata: state_dict_metadata (key -> TensorStorageMetadata / BytesStorageMetadata), "
            "storage_data (MetadataIndex(fqn) -> _StorageInfo(relative_path='__0_0.distcp', "
            "offset, length)), planner_data, storage_meta (checkpoint_id = PosixPath of the "
            "relative step folder, e.g. ('complete', 'checkpoint', 'step-30'), a random uuid4 "
            "save_id), version '1.0.0'. It holds the key names and the folder name, not the "
            "values.",
            "train_state.step": "BytesStorageMetadata; its bytes are a torch.save zip archive "
            "embedded in __0_0.distcp at the offset/length given in .metadata (offset 0, length "
            "1261 here), whose archive/data.pkl is the pickled int (BININT1 30 in step-30)",
            "train_state.ntokens_seen": "the same kind of embedded archive (240 at step-30)",
            "lr_scheduler.last_epoch": "the same kind of embedded archive (30 at step-30)",
            "dataloader.dp_rank_0": "embedded archive of the bytes of pickle.dumps("
            "StatefulDataLoader.state_dict()) (samples_yielded, _num_yielded, ...)",
            "optimizer.state.<fqn>.step": "a float32 tensor (TensorStorageMetadata), embedded as "
            "a torch.save archive of the tensor",
            "model-only checkpoints": "step-0 and the last step hold only linear.weight and "
            "linear.bias: no step value anywhere but the folder name",
        },
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
    ap.add_argument("--run", type=int, default=0, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        run_child(a.child, a.run)
    elif a.out:
        run_parent(a.out.resolve(), a.only)
    else:
        ap.error("--out is required")


if __name__ == "__main__":
    main()
