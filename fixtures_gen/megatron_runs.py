"""Record checkpoint folders written by Megatron's own checkpoint code (megatron-core, CPU).

Run inside ``.venv-fixtures/``, whose pinned versions are in
``fixtures_gen/requirements-megatron.txt``, as
``.venv-fixtures/bin/python fixtures_gen/megatron_runs.py --out tests/fixtures/megatron``.
Nothing here is imported by the ckpt test suite; the suite only reads what this script leaves in
``tests/fixtures/megatron/``.

What could run, and what could not
----------------------------------
Megatron-LM writes ``<save>/iter_<7 digits>/`` and the tracker
``<save>/latest_checkpointed_iteration.txt`` in ``save_checkpoint``
(``megatron/training/checkpointing.py``). That module is NOT in the megatron-core wheel: the
0.16.1 wheel holds ``megatron/core/`` only (no ``megatron/training``, ``megatron/legacy``,
``megatron/rl``), and no PyPI package ships it. Read at the source tag of the installed wheel,
``core_v0.16.1`` of github.com/NVIDIA/Megatron-LM (commit
55ac7082517c3878ae653c07c09c534b8aed49f6, whose ``megatron/core`` is byte-identical to the
wheel's), ``save_checkpoint`` also cannot run on a machine without a GPU: its
``get_rng_state`` calls ``torch.cuda.get_rng_state()`` unconditionally (RuntimeError "Found no
NVIDIA driver on your system"), even with ``--no-save-rng``; and ``initialize_megatron`` skips
``initialize_model_parallel`` when ``torch.cuda.device_count() == 0`` and then fails in
``_set_random_seed`` ("pipeline_model parallel group is not initialized").

So this generator runs on the CPU everything of Megatron that does run there, from the installed
megatron-core 0.16.1, and reproduces the few lines of ``save_checkpoint`` around it as that
source has them (not copied: described here and in FIXTURES.json):

Written by megatron-core 0.16.1 code (``megatron.core.dist_checkpointing.save``):
    ``iter_N/common.pt`` (``TorchCommonSaveStrategy.save_common``, a ``torch.save``), the data
    files ``iter_N/__0_0.distcp`` and ``iter_N/__0_1.distcp`` (``FileSystemWriterAsync``: one
    file per writer thread, ``thread_count=2``, each written by a forked process and fsynced),
    ``iter_N/.metadata`` (torch's ``FileSystemWriter.finish``, called by Megatron's
    ``save_state_dict_async_finalize``: written as ``.metadata.tmp``, fsynced, renamed), and
    ``iter_N/metadata.json`` (``save_config``, a plain ``json.dump``, written last).
Made by megatron-core code, handed to that save:
    the model's sharded state dict (``MegatronModule.sharded_state_dict``), the optimizer's
    (``FP32Optimizer.sharded_state_dict``), the scheduler's state (``OptimizerParamScheduler``),
    the rerun state (``get_rerun_state_machine().state_dict``), the save strategy
    (``get_default_save_sharded_strategy("torch_dist")`` in a ``FullyParallelSaveStrategyWrapper``),
    the content metadata (``_clean_metadata_for_serialization``).
Done by this generator, following ``save_checkpoint`` / ``get_checkpoint_name`` /
``get_checkpoint_tracker_filename`` / ``get_rng_state`` / ``generate_state_dict`` /
``_build_sharded_state_dict_metadata`` of Megatron-LM core_v0.16.1:
    the folder name (``'iter_{:07d}'.format(iteration)``, or ``release``), its creation
    (``os.makedirs(..., exist_ok=True)`` by rank 0 before the save), the keys of the state dict
    (``args``, ``checkpoint_version`` = 3.0, ``iteration``, ``model``, ``optimizer``,
    ``opt_param_scheduler``, ``rng_state``, ``num_floating_point_operations_so_far``), the
    ``torch.distributed.barrier()`` after the save, and the tracker: rank 0 opens
    ``<save>/latest_checkpointed_iteration.txt`` with ``"w"`` (through megatron-core's
    ``msc_utils.open_file``) and writes ``str(iteration)`` (or ``"release"``): no newline, no
    temporary file, no rename, no fsync.

Where this differs from a GPU run of Megatron-LM (so from what a user's folder holds):
    - ``args`` in common.pt is an ``argparse.Namespace`` holding only the few dozen Megatron
      argument names listed in ``MEGATRON_ARGS`` below (a real run pickles Megatron's whole
      parsed namespace, ~650 attributes);
    - the RNG state has no ``cuda_rng_state`` (there is no CUDA generator on a CPU) and an empty
      ``rng_tracker_states``;
    - the model is a 36-parameter ``MegatronModule`` (one ``nn.Linear(8, 4)``), not a GPT;
    - the optimizer is Megatron's ``FP32Optimizer`` around torch's AdamW, built as
      ``get_megatron_optimizer`` builds it (same param groups from ``_get_param_groups``, same
      AdamW arguments) except that ``FP32Optimizer.__init__`` is not run: its only other line
      allocates a CUDA tensor (``_scale``, the loss scale 1.0, never saved); gradient clipping
      is off (``clip_grad=0``) because Megatron's clipping allocates CUDA tensors;
    - ``num_floating_point_operations_so_far`` is 6 * parameters * samples (Megatron's own
      formula is for GPT models);
    - two device calls of megatron-core's save path are replaced in the child, only when
      ``torch.cuda.is_available()`` is False: ``torch.cuda.synchronize`` (called after the
      device-to-host copy of the tensors, ``FileSystemWriterAsync.preload_tensors``) becomes a
      no-op, and ``torch.cuda.current_device`` (the device of a one-element failure flag that
      ``save_state_dict_async_finalize`` broadcasts) returns ``"cpu"``. Neither changes a byte
      that is written.
The legacy format (``--ckpt-format torch``: ``iter_N/mp_rank_00/model_optim_rng.pt``) is a
``torch.save`` inside ``save_checkpoint`` itself, with no megatron-core writer behind it, so it
is not recorded here: only the generator could write it.

The run
-------
Each scenario trains for real in a child process: torch.distributed with the gloo backend and a
world of one (127.0.0.1), ``parallel_state.initialize_model_parallel(1, 1)``, the rerun state
machine in Megatron's default mode (validate_results), seeds set as Megatron's
``_set_random_seed`` does (``random``, ``numpy``, ``torch`` with seed 1234). The data: 64 rows
``y = x @ W + b`` from a fixed seed, micro batch = global batch = 8, shuffled each pass. Each
iteration is Megatron's ``train_step`` order: ``optimizer.zero_grad()``, forward/backward (MSE),
``optimizer.step()``, ``opt_param_scheduler.step(increment=8)``; then ``iteration += 1``,
``args.consumed_train_samples += 8``, and a save when ``iteration % save_interval == 0``
(train_iters 30, save_interval 10: saves at 10, 20, 30; no extra final save because 30 % 10 is
0). The child's working directory is a scratch folder and ``--save`` is the RELATIVE path
``<scenario name>``, so the paths recorded inside the files (``args.save``, the DCP
``checkpoint_id`` in ``.metadata``) are relative, e.g. ``torch-dist/iter_0000010``. When the
child has ended, the scenario folder is moved into ``tests/fixtures/megatron/``.

Scenarios
---------
``torch-dist/``
    The healthy run: iter_0000010, iter_0000020, iter_0000030, tracker ``30``.
``torn-<moment>/``
    The same run, SIGKILLed (``os.kill(os.getpid(), SIGKILL)``) while saving iter_0000030 by
    wrapping the real function named below (it acts only for paths inside iter_0000030):
    iter_0000010 and iter_0000020 are complete and the tracker (written after the save of 20)
    says ``20``.

    - ``torn-after-common``: right after ``TorchCommonSaveStrategy.save_common`` returns:
      iter_0000030 holds only ``common.pt`` (whose ``iteration`` already says 30).
    - ``torn-mid-save``: the real ``FileSystemWriterAsync.write_preloaded_data_multiproc``
      writes both data files, each is cut to its first half (``os.truncate``: the bytes are a
      prefix of the real file, as a kill during the two concurrent writes leaves them) and the
      process is killed: ``common.pt`` + two truncated ``.distcp``, no ``.metadata``, no
      ``metadata.json``.
    - ``torn-before-metadata-rename``: torch's ``FileSystem.rename`` of ``.metadata.tmp`` to
      ``.metadata`` is not done, the process is killed instead: complete data files, a
      complete ``.metadata.tmp``, no ``.metadata``, no ``metadata.json``.
    - ``torn-before-metadata-json``: as megatron-core's ``save_config`` is called: every file
      but ``metadata.json``, which Megatron's loader requires
      (``check_is_distributed_checkpoint`` looks only at it).
    - ``torn-before-tracker``: right after ``dist_checkpointing.save`` returns for
      iter_0000030, before the barrier and the tracker write: iter_0000030 is complete, the
      tracker still says ``20``.
``release/``
    The 30 iterations without periodic saves, then ``save_checkpoint(1, model, None, None, 0,
    release=True)`` as Megatron-LM's examples/post_training/modelopt/convert_model.py calls it
    (no optimizer, no scheduler): a ``release/`` folder and a tracker saying ``release``.

Megatron's code never writes an empty or unparsable tracker by itself, so none is recorded;
``read_metadata`` (not importable) would ``sys.exit()`` on one.

After the runs, ``FIXTURES.json`` records the versions, the date, the Megatron-LM source read,
which files which code wrote, each scenario's arguments, child exit code and kill moment, and the
size and sha256 of every file; ``README.md`` says how to regenerate. Never edit the fixtures by
hand.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as _dt
import hashlib
import importlib.metadata
import json
import os
import platform
import random
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
N_TRAIN = 64
BATCH = 8
LEARNING_RATE = 0.05
TRAIN_ITERS = 30
SAVE_INTERVAL = 10
TORN_ITERATION = 30
TRACKER = "latest_checkpointed_iteration.txt"

MEGATRON_LM_SOURCE = {
    "repository": "github.com/NVIDIA/Megatron-LM",
    "tag": "core_v0.16.1",
    "commit": "55ac7082517c3878ae653c07c09c534b8aed49f6",
    "files_read": [
        "megatron/training/checkpointing.py (save_checkpoint, get_checkpoint_name, "
        "get_checkpoint_tracker_filename, read_metadata, get_rng_state, generate_state_dict, "
        "_build_sharded_state_dict_metadata)",
        "megatron/training/training.py (train loop: save at iteration % save_interval == 0, "
        "consumed_train_samples, args.iteration = 0 on a fresh run)",
        "megatron/training/initialize.py (initialize_megatron, _initialize_distributed, "
        "_set_random_seed)",
        "examples/post_training/modelopt/convert_model.py (save_checkpoint(1, model, None, "
        "None, 0, release=True))",
    ],
    "note": "megatron/core at this tag is byte-identical to the installed megatron-core 0.16.1 "
    "wheel; megatron/training is not in the wheel",
}

# The Megatron argument names (and values) of this run, pickled as ``args`` in common.pt. A real
# run pickles its whole parsed namespace; these are the ones this run has a value for.
MEGATRON_ARGS: dict = {
    "num_layers": 1,
    "hidden_size": IN_DIM,
    "num_attention_heads": 1,
    "tensor_model_parallel_size": 1,
    "pipeline_model_parallel_size": 1,
    "context_parallel_size": 1,
    "expert_model_parallel_size": 1,
    "data_parallel_size": 1,
    "world_size": 1,
    "rank": 0,
    "distributed_backend": "gloo",
    "micro_batch_size": BATCH,
    "global_batch_size": BATCH,
    "train_iters": TRAIN_ITERS,
    "save_interval": SAVE_INTERVAL,
    "ckpt_format": "torch_dist",
    "use_dist_ckpt": True,
    "ckpt_fully_parallel_save": True,
    "ckpt_assume_constant_structure": False,
    "async_save": False,
    "save_retain_interval": None,
    "no_save_optim": None,
    "no_save_rng": None,
    "use_distributed_optimizer": False,
    "data_parallel_random_init": False,
    "optimizer": "adam",
    "lr": LEARNING_RATE,
    "min_lr": 0.0,
    "lr_decay_style": "linear",
    "lr_warmup_iters": 0,
    "lr_warmup_init": 0.0,
    "weight_decay": 0.01,
    "weight_decay_incr_style": "constant",
    "adam_beta1": 0.9,
    "adam_beta2": 0.999,
    "adam_eps": 1e-08,
    "clip_grad": 0.0,
    "seed": SEED,
    "rerun_mode": "validate_results",
    "iteration": 0,
    "num_floating_point_operations_so_far": 0,
    "consumed_train_samples": 0,
    "skipped_train_samples": 0,
    "consumed_valid_samples": 0,
}

TORN_MOMENTS: dict[str, str] = {
    "after-common": "iter_0000030: killed right after TorchCommonSaveStrategy.save_common "
    "returned (common.pt written), before any data file",
    "mid-save": "iter_0000030: both data files written by the real "
    "FileSystemWriterAsync.write_preloaded_data_multiproc, each cut to its first half, then "
    "killed (no .metadata, no metadata.json)",
    "before-metadata-rename": "iter_0000030: killed as torch's FileSystem.rename is called to "
    "rename .metadata.tmp to .metadata (data files and .metadata.tmp complete)",
    "before-metadata-json": "iter_0000030: killed as megatron-core's save_config is called for "
    "metadata.json (every other file complete)",
    "before-tracker": "iter_0000030: killed right after dist_checkpointing.save returned, "
    "before the barrier and the tracker write (the tracker still says 20)",
}

SCENARIOS: dict[str, dict] = {
    "torch-dist": {
        "description": "Healthy run: 30 iterations, --save-interval 10, torch_dist format: "
        "iter_0000010, iter_0000020, iter_0000030 and a tracker saying 30.",
    },
    **{
        f"torn-{m}": {
            "description": "The 'torch-dist' run, SIGKILLed while saving iter_0000030 ("
            + why
            + ").",
            "kill": m,
        }
        for m, why in TORN_MOMENTS.items()
    },
    "release": {
        "description": "30 iterations without periodic saves, then save_checkpoint(1, model, "
        "None, None, 0, release=True) (Megatron-LM's convert_model.py call): a release/ folder "
        "with no optimizer or scheduler state, and a tracker saying release.",
        "release": True,
    },
}


# --------------------------------------------------------------------------------------------
# Child side: one training run.
# --------------------------------------------------------------------------------------------


def _say(msg: str) -> None:
    print(f"\n[megatron child pid={os.getpid()}] {msg}", file=sys.stderr, flush=True)


def _die(msg: str) -> None:
    _say("SIGKILL: " + msg)
    os.kill(os.getpid(), signal.SIGKILL)


def _in_torn_checkpoint(path: object) -> bool:
    return (
        isinstance(path, (str, os.PathLike))
        and f"iter_{TORN_ITERATION:07d}" in Path(os.fspath(path)).parts
    )


def install_device_shims() -> None:
    """Let megatron-core's torch_dist save run on a machine without CUDA (no byte changes)."""
    import torch

    if torch.cuda.is_available():
        return
    # FileSystemWriterAsync.preload_tensors waits for the device-to-host copies.
    torch.cuda.synchronize = lambda device=None: None
    # save_state_dict_async_finalize broadcasts a failure flag tensor made on this device.
    torch.cuda.current_device = lambda: "cpu"


def install_kill_hook(moment: str) -> None:
    """Wrap the real function Megatron calls so that the process dies at ``moment``."""
    from megatron.core import dist_checkpointing
    from megatron.core.dist_checkpointing import serialization
    from megatron.core.dist_checkpointing.strategies.common import TorchCommonSaveStrategy
    from megatron.core.dist_checkpointing.strategies.filesystem_async import (
        FileSystemWriterAsync,
    )
    from torch.distributed.checkpoint.filesystem import FileSystem

    if moment == "after-common":
        real_save_common = TorchCommonSaveStrategy.save_common

        def save_common(self, common_state_dict, checkpoint_dir):
            real_save_common(self, common_state_dict, checkpoint_dir)
            if _in_torn_checkpoint(checkpoint_dir):
                _die(f"after save_common({checkpoint_dir})")

        TorchCommonSaveStrategy.save_common = save_common

    elif moment == "mid-save":
        real_multiproc = FileSystemWriterAsync.write_preloaded_data_multiproc

        def write_preloaded_data_multiproc(
            transform_list, use_msc, rank, write_buckets, global_results_queue
        ):
            real_multiproc(transform_list, use_msc, rank, write_buckets, global_results_queue)
            files = [bucket[0] for bucket in write_buckets]
            if files and all(_in_torn_checkpoint(f) for f in files):
                cut = []
                for f in files:
                    size = os.path.getsize(f)
                    os.truncate(f, size // 2)
                    cut.append(f"{Path(f).name} {size // 2} of {size} bytes")
                _die("data files cut to their first half: " + ", ".join(cut))

        FileSystemWriterAsync.write_preloaded_data_multiproc = staticmethod(
            write_preloaded_data_multiproc
        )

    elif moment == "before-metadata-rename":
        real_rename = FileSystem.rename

        def rename(self, path, new_path):
            if _in_torn_checkpoint(new_path) and Path(os.fspath(new_path)).name == ".metadata":
                _die(f"before rename({path}, {new_path})")
            return real_rename(self, path, new_path)

        FileSystem.rename = rename

    elif moment == "before-metadata-json":
        real_save_config = serialization.save_config

        def save_config(config, checkpoint_dir):
            if _in_torn_checkpoint(checkpoint_dir):
                _die(f"before save_config({checkpoint_dir})")
            return real_save_config(config, checkpoint_dir)

        serialization.save_config = save_config

    elif moment == "before-tracker":
        real_save = dist_checkpointing.save

        def save(sharded_state_dict, checkpoint_dir, *args, **kwargs):
            result = real_save(sharded_state_dict, checkpoint_dir, *args, **kwargs)
            if _in_torn_checkpoint(checkpoint_dir):
                _die(f"after dist_checkpointing.save({checkpoint_dir}), before the tracker")
            return result

        dist_checkpointing.save = save

    else:
        raise ValueError(moment)


def run_child(name: str) -> None:
    spec = SCENARIOS[name]
    import numpy as np
    import torch

    torch.set_num_threads(1)
    install_device_shims()

    from megatron.core import dist_checkpointing, tensor_parallel
    from megatron.core import parallel_state as mpu
    from megatron.core.dist_checkpointing.mapping import ShardedObject
    from megatron.core.dist_checkpointing.serialization import get_default_save_sharded_strategy
    from megatron.core.dist_checkpointing.strategies.fully_parallel import (
        FullyParallelSaveStrategyWrapper,
    )
    from megatron.core.dist_checkpointing.utils import _clean_metadata_for_serialization
    from megatron.core.msc_utils import open_file
    from megatron.core.optimizer import OptimizerConfig, _get_param_groups
    from megatron.core.optimizer.optimizer import FP32Optimizer, MegatronOptimizer
    from megatron.core.optimizer_param_scheduler import OptimizerParamScheduler
    from megatron.core.rerun_state_machine import (
        RerunMode,
        get_rerun_state_machine,
        initialize_rerun_state_machine,
    )
    from megatron.core.transformer.module import MegatronModule
    from megatron.core.transformer.transformer_config import TransformerConfig

    if spec.get("kill"):
        install_kill_hook(spec["kill"])

    # _initialize_distributed, CPU: gloo, a world of one; then the model-parallel groups.
    torch.distributed.init_process_group(backend="gloo", rank=0, world_size=1)
    mpu.initialize_model_parallel(1, 1)

    # initialize_megatron's rerun state machine (default mode validate_results).
    def state_save_func():
        return {"rng_tracker_states": tensor_parallel.get_cuda_rng_tracker().get_states()}

    def state_restore_func(state_dict):
        if state_dict["rng_tracker_states"]:
            tensor_parallel.get_cuda_rng_tracker().set_states(state_dict["rng_tracker_states"])

    initialize_rerun_state_machine(
        state_save_func=state_save_func,
        state_restore_func=state_restore_func,
        mode=RerunMode.VALIDATE_RESULTS,
    )

    # _set_random_seed: seed + 100 * pipeline rank (0 here).
    seed = SEED + 100 * mpu.get_pipeline_model_parallel_rank()
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)

    args = argparse.Namespace(**MEGATRON_ARGS, save=name)

    class TinyModel(MegatronModule):
        def __init__(self, config):
            super().__init__(config)
            self.linear = torch.nn.Linear(IN_DIM, OUT_DIM)
            torch.nn.init.normal_(self.linear.weight, std=0.1)
            torch.nn.init.zeros_(self.linear.bias)

        def forward(self, x):
            return self.linear(x)

    config = TransformerConfig(
        num_layers=args.num_layers,
        hidden_size=args.hidden_size,
        num_attention_heads=args.num_attention_heads,
        use_cpu_initialization=True,
    )
    model = [TinyModel(config)]

    # get_megatron_optimizer for fp32 without the distributed optimizer: torch AdamW (no TE or
    # Apex here) over Megatron's param groups, wrapped in FP32Optimizer.
    opt_config = OptimizerConfig(
        optimizer="adam",
        lr=args.lr,
        min_lr=args.min_lr,
        weight_decay=args.weight_decay,
        adam_beta1=args.adam_beta1,
        adam_beta2=args.adam_beta2,
        adam_eps=args.adam_eps,
        clip_grad=args.clip_grad,
    )
    param_groups = _get_param_groups(model, opt_config, None)
    adam_cls = torch.optim.AdamW if opt_config.decoupled_weight_decay else torch.optim.Adam
    adam = adam_cls(
        params=param_groups,
        lr=opt_config.lr,
        weight_decay=opt_config.weight_decay,
        betas=(opt_config.adam_beta1, opt_config.adam_beta2),
        eps=opt_config.adam_eps,
    )

    def init_state_fn(opt, config=None):
        for group in opt.param_groups:
            for p in group["params"]:
                if len(opt.state[p]) == 0:
                    opt.state[p]["exp_avg"] = torch.zeros_like(p.data)
                    opt.state[p]["exp_avg_sq"] = torch.zeros_like(p.data)

    # FP32Optimizer.__init__ = MegatronOptimizer.__init__ + a CUDA loss-scale tensor (unsaved).
    optimizer = FP32Optimizer.__new__(FP32Optimizer)
    MegatronOptimizer.__init__(optimizer, adam, opt_config, init_state_fn)
    optimizer.is_stub_optimizer = False

    # get_optimizer_param_scheduler, iteration-based: steps are counted in samples.
    opt_param_scheduler = OptimizerParamScheduler(
        optimizer,
        init_lr=args.lr_warmup_init,
        max_lr=args.lr,
        min_lr=args.min_lr,
        lr_warmup_steps=args.lr_warmup_iters * args.global_batch_size,
        lr_decay_steps=args.train_iters * args.global_batch_size,
        lr_decay_style=args.lr_decay_style,
        start_wd=args.weight_decay,
        end_wd=args.weight_decay,
        wd_incr_steps=args.train_iters * args.global_batch_size,
        wd_incr_style=args.weight_decay_incr_style,
        use_checkpoint_opt_param_scheduler=True,
        override_opt_param_scheduler=False,
    )

    checkpointing_context: dict = {}

    def get_rng_state():
        # megatron/training/checkpointing.py get_rng_state, torch_dist, no expert parallelism;
        # no 'cuda_rng_state': torch.cuda.get_rng_state() needs a GPU.
        rng_state = {
            "random_rng_state": random.getstate(),
            "np_rng_state": np.random.get_state(),
            "torch_rng_state": torch.get_rng_state(),
            "rng_tracker_states": tensor_parallel.get_cuda_rng_tracker().get_states(),
        }
        pp_group = mpu.get_pipeline_model_parallel_group()
        tp_group = mpu.get_tensor_model_parallel_group()
        return ShardedObject(
            "rng_state",
            [rng_state],
            (pp_group.size(), tp_group.size()),
            (pp_group.rank(), tp_group.rank()),
            replica_id=mpu.get_data_parallel_rank(with_context_parallel=True),
        )

    def save_checkpoint(iteration, model, optimizer, opt_param_scheduler, flops, release=False):
        # The torch_dist path of megatron/training/checkpointing.py save_checkpoint.
        save_dir = args.save
        rng_state = get_rng_state()
        rerun_state = get_rerun_state_machine().state_dict(
            data_iterator=None, ckpt_format=args.ckpt_format
        )
        checkpoint_name = os.path.join(save_dir, "release" if release else f"iter_{iteration:07d}")
        sharded_sd_metadata = {
            "singleton_local_shards": False,
            "chained_optim_avoid_prefix": True,
            "dp_cp_group": mpu.get_data_parallel_group(with_context_parallel=True),
        }
        # generate_state_dict
        state_dict: dict = {"args": args, "checkpoint_version": 3.0, "iteration": iteration}
        for i, chunk in enumerate(model):
            key = "model" if len(model) == 1 else f"model{i}"
            state_dict[key] = chunk.sharded_state_dict(metadata=sharded_sd_metadata)
        if not args.no_save_optim:
            if optimizer is not None and not optimizer.is_stub_optimizer:
                state_dict["optimizer"] = optimizer.sharded_state_dict(
                    state_dict, metadata=sharded_sd_metadata
                )
            if opt_param_scheduler is not None:
                state_dict["opt_param_scheduler"] = opt_param_scheduler.state_dict()
        if rerun_state:
            state_dict["rerun_state_machine"] = rerun_state
        if not args.no_save_rng and rng_state:
            state_dict["rng_state"] = rng_state
        state_dict["num_floating_point_operations_so_far"] = flops

        if torch.distributed.get_rank() == 0:
            os.makedirs(checkpoint_name, exist_ok=True)
        if "save_strategy" in checkpointing_context:
            save_strategy = checkpointing_context["save_strategy"]
            validate_sharding_integrity = not args.ckpt_assume_constant_structure
        else:
            validate_sharding_integrity = True
            save_strategy = get_default_save_sharded_strategy(args.ckpt_format)
            if args.ckpt_fully_parallel_save:
                save_strategy = FullyParallelSaveStrategyWrapper(
                    save_strategy,
                    mpu.get_data_parallel_group(with_context_parallel=True),
                    args.ckpt_assume_constant_structure,
                )
            checkpointing_context["save_strategy"] = save_strategy
        dist_checkpointing.save(
            state_dict,
            checkpoint_name,
            save_strategy,
            async_sharded_save=args.async_save,
            validate_access_integrity=validate_sharding_integrity,
            preprocess_common_before_consistancy_check=None,
            content_metadata=_clean_metadata_for_serialization(sharded_sd_metadata),
        )
        torch.distributed.barrier()
        if torch.distributed.get_rank() == 0:
            tracker_filename = os.path.join(save_dir, TRACKER)
            with open_file(tracker_filename, "w") as f:
                f.write("release" if release else str(iteration))
        torch.distributed.barrier()

    # The data and the training loop.
    g = torch.Generator().manual_seed(SEED)
    w = torch.randn(IN_DIM, OUT_DIM, generator=g)
    b = torch.randn(OUT_DIM, generator=g)
    x_all = torch.randn(N_TRAIN, IN_DIM, generator=g)
    y_all = x_all @ w + b
    n_params = sum(p.numel() for p in model[0].parameters())
    periodic = not spec.get("release")

    def batches():
        while True:
            for idx in torch.randperm(N_TRAIN, generator=g).split(BATCH):
                yield x_all[idx], y_all[idx]

    data = batches()
    iteration = 0
    flops = 0
    losses = []
    while iteration < args.train_iters:
        args.curr_iteration = iteration
        optimizer.zero_grad()
        x, y = next(data)
        loss = torch.nn.functional.mse_loss(model[0](x), y)
        loss.backward()
        optimizer.step()
        opt_param_scheduler.step(increment=args.global_batch_size)
        iteration += 1
        args.consumed_train_samples += args.global_batch_size
        flops += 6 * n_params * args.global_batch_size
        losses.append((iteration, round(loss.item(), 5)))
        if periodic and iteration % args.save_interval == 0:
            save_checkpoint(iteration, model, optimizer, opt_param_scheduler, flops)
            _say(f"saved iteration {iteration}")
    if spec.get("release"):
        save_checkpoint(1, model, None, None, 0, release=True)
        _say("saved release")
    _say(f"done: loss by iteration {[e for e in losses if e[0] % 10 == 0]}")
    torch.distributed.destroy_process_group()


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
        CUDA_VISIBLE_DEVICES="",
        PYTHONHASHSEED="0",
        OMP_NUM_THREADS="1",
        GLOO_SOCKET_IFNAME="lo",
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(_free_port()),
        RANK="0",
        WORLD_SIZE="1",
        LOCAL_RANK="0",
        HF_HUB_OFFLINE="1",
    )
    return env


def _end_leftovers(pgid: int) -> None:
    """End what the child started in its own session (its save workers), by process group id."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_scenario(name: str, scratch: Path, dest: Path) -> dict:
    spec = SCENARIOS[name]
    work = scratch / name
    work.mkdir(parents=True)
    script = str(Path(__file__).resolve())
    cmd = [sys.executable, script, "--child", name]
    t0 = time.monotonic()
    with open(work / "child.log", "w") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=work,
            env=_child_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            proc.wait(timeout=600)
        finally:
            _end_leftovers(proc.pid)
    seconds = round(time.monotonic() - t0, 1)
    log_text = (work / "child.log").read_text()
    kill = spec.get("kill")
    expected = -signal.SIGKILL if kill else 0
    if proc.returncode != expected:
        sys.stderr.write(log_text[-6000:])
        raise SystemExit(f"scenario {name}: child exited {proc.returncode}, expected {expected}")
    out = work / name
    if not out.is_dir():
        raise SystemExit(f"scenario {name}: Megatron left no {name}/")
    extra = sorted(p.name for p in work.iterdir() if p.name not in (name, "child.log"))
    shutil.move(str(out), str(dest / name))
    notes = [
        re.sub(r"pid=\d+", "pid=N", n) for n in re.findall(r"\[megatron child[^\n]*", log_text)
    ]
    print(
        f"  {name}: exit {proc.returncode} in {seconds}s; {notes[-1] if notes else ''}", flush=True
    )
    rec = {
        "description": spec["description"],
        "command": f"python fixtures_gen/megatron_runs.py --child {name}",
        "cwd": "<scratch folder>; --save is the relative path " + json.dumps(name),
        "megatron_args": {**MEGATRON_ARGS, "save": name},
        "world_size": 1,
        "child_exit_code": proc.returncode,
        "child_seconds": seconds,
        "child_notes": notes,
        "other_files_left_in_cwd": extra,
    }
    if spec.get("release"):
        rec["release_save"] = "save_checkpoint(1, model, None, None, 0, release=True)"
    if kill:
        rec["kill_moment"] = kill
        rec["kill_moment_description"] = TORN_MOMENTS[kill]
        rec["killed_while_saving"] = f"iter_{TORN_ITERATION:07d}"
    return rec


def _versions() -> dict:
    v = {"python": platform.python_version()}
    for pkg in ("torch", "megatron-core", "numpy", "packaging", "einops"):
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


WRITE_ORDER = [
    "iter_N/ (os.makedirs by rank 0, exist_ok; generator, following save_checkpoint)",
    "iter_N/common.pt (megatron-core TorchCommonSaveStrategy.save_common -> torch.save: every "
    "non-sharded entry: args, checkpoint_version, iteration, opt_param_scheduler, "
    "optimizer param_groups and common_step, num_floating_point_operations_so_far, "
    "content_metadata)",
    "iter_N/__0_0.distcp and iter_N/__0_1.distcp (megatron-core "
    "FileSystemWriterAsync.write_preloaded_data, one forked process per file, written in "
    "place, fsynced; tensors and the pickled rng_state ShardedObject)",
    "iter_N/.metadata.tmp then renamed to iter_N/.metadata (torch FileSystemWriter.finish, "
    "called by megatron-core save_state_dict_async_finalize; pickled DCP Metadata, fsynced)",
    "iter_N/metadata.json (megatron-core save_config -> json.dump, no newline, no fsync)",
    "latest_checkpointed_iteration.txt (rank 0 after torch.distributed.barrier(); generator, "
    "following save_checkpoint's iter_finalize_fn: open(..., 'w') via "
    "megatron.core.msc_utils.open_file, write(str(iteration)) or 'release', no newline, no "
    "temporary file, no rename)",
]

WRITTEN_BY = {
    "iter_N/common.pt": "megatron-core 0.16.1 (dist_checkpointing.save)",
    "iter_N/__0_0.distcp, iter_N/__0_1.distcp": "megatron-core 0.16.1 (dist_checkpointing.save)",
    "iter_N/.metadata (.metadata.tmp)": "torch 2.14.1 FileSystemWriter.finish, called by "
    "megatron-core 0.16.1 (dist_checkpointing.save)",
    "iter_N/metadata.json": "megatron-core 0.16.1 (dist_checkpointing.save -> save_config)",
    "iter_N/ and release/ folder names and creation": "generator, following Megatron-LM "
    "core_v0.16.1 get_checkpoint_name / save_checkpoint",
    "latest_checkpointed_iteration.txt": "generator, following Megatron-LM core_v0.16.1 "
    "save_checkpoint (iter_finalize_fn) / get_checkpoint_tracker_filename",
    "contents of common.pt 'args'": "generator: argparse.Namespace of MEGATRON_ARGS (+ save, "
    "curr_iteration), not Megatron's full parsed namespace",
}

RECORDED_VALUES = {
    "latest_checkpointed_iteration.txt": "ASCII digits of the iteration, no newline (b'30'), or "
    "b'release'",
    "iter_N/common.pt": "torch.save zip archive named 'common' (common/data.pkl): a dict with "
    "'iteration' (int, the save's iteration), 'checkpoint_version' (3.0), 'args' "
    "(argparse.Namespace; args.iteration is the iteration the run STARTED from, 0 here, and "
    "args.consumed_train_samples counts samples), 'opt_param_scheduler' (num_steps = samples), "
    "'optimizer' (param_groups with the lr, state.common_step = optimizer steps), "
    "'num_floating_point_operations_so_far', 'content_metadata'; release/common.pt has "
    "iteration 1 and no optimizer or scheduler",
    "iter_N/metadata.json": '{"sharded_backend": "torch_dist", "sharded_backend_version": 1, '
    '"common_backend": "torch", "common_backend_version": 1} (no newline)',
    "iter_N/.metadata": "pickled torch.distributed.checkpoint Metadata (version 1.0.0): every "
    "tensor key (linear.weight, linear.bias, optimizer.state.exp_avg.linear.weight, ...) and "
    "the rng_state ShardedObject (rng_state/shard_0.0_1.1, bytes), each with its file, offset "
    "and length; storage_meta.checkpoint_id is the relative folder path, save_id a random uuid",
    "loss": "not recorded anywhere in a Megatron checkpoint (only logged)",
}

README = """\
# Checkpoint folders written by Megatron's checkpoint code (megatron-core, CPU)

Each folder is the `--save` directory of a real (tiny, CPU, gloo world of one) training run
whose checkpoints were written by megatron-core 0.16.1's `dist_checkpointing.save` in the
`torch_dist` format: `iter_<7 digits>/` with `common.pt`, `__0_0.distcp`, `__0_1.distcp`,
`.metadata` and `metadata.json`, plus the tracker `latest_checkpointed_iteration.txt`.

Megatron-LM's `save_checkpoint` (megatron/training/checkpointing.py) is not in the
megatron-core wheel and needs a GPU, so the folder names, the folder creation and the tracker
(`str(iteration)` or `release`, no newline) are written by the generator exactly as that
function does at Megatron-LM tag core_v0.16.1; every file inside `iter_N/` and `release/` is
written by megatron-core (and torch's DCP writer, which it calls). `FIXTURES.json` says which
code wrote what, the versions, each scenario and its kill moment, and the size and sha256 of
every file; the module docstring of `fixtures_gen/megatron_runs.py` has the details and every
place where this differs from a GPU run (a reduced `args` namespace, no CUDA RNG state, a
36-parameter MegatronModule).

The torn scenarios are the same run SIGKILLed while saving `iter_0000030`; their tracker says
`20`. `release/` is `save_checkpoint(1, model, None, None, 0, release=True)`.

The files are generated: do not edit them by hand. To regenerate, from the repository root:

    .venv-fixtures/bin/python -m pip install -r fixtures_gen/requirements-megatron.txt
    .venv-fixtures/bin/python fixtures_gen/megatron_runs.py --out tests/fixtures/megatron

The training is deterministic (same weights, optimizer state and RNG state each time), but
`.metadata` holds a random `save_id` (a uuid per save), so its bytes and hash change at every
regeneration; the other files' contents do not depend on the time.
"""


def run_parent(out: Path, only: list[str] | None, jobs: int) -> None:
    names = only or list(SCENARIOS)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    started = _dt.datetime.now(_dt.timezone.utc)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ckpt-megatron-fixtures-") as tmp:
        # Two children at a time (each one mostly imports torch and megatron-core).
        with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
            done = pool.map(lambda n: run_scenario(n, Path(tmp), out), names)
            records = dict(zip(names, done, strict=True))
    (out / "README.md").write_text(README)
    meta = {
        "generator": "fixtures_gen/megatron_runs.py",
        "generated_at": started.isoformat(timespec="seconds"),
        "generation_seconds": round(time.monotonic() - t0, 1),
        "versions": _versions(),
        "megatron_lm_source_read": MEGATRON_LM_SOURCE,
        "model": "TinyModel(MegatronModule): one nn.Linear(8, 4), 36 float32 parameters, MSE "
        "loss; Megatron FP32Optimizer over torch AdamW (lr 0.05, weight decay 0.01 except "
        "biases), OptimizerParamScheduler linear decay over 240 samples",
        "data": f"synthetic, seed {SEED}: {N_TRAIN} rows y = x@W + b, batch {BATCH}, "
        "reshuffled each pass",
        "checkpoint_format": "torch_dist",
        "checkpoint_write_order": WRITE_ORDER,
        "written_by": WRITTEN_BY,
        "recorded_values": RECORDED_VALUES,
        "device_shims": [
            "torch.cuda.synchronize -> no-op (FileSystemWriterAsync.preload_tensors)",
            "torch.cuda.current_device -> 'cpu' (save_state_dict_async_finalize failure flag)",
        ],
        "not_recorded": [
            "legacy --ckpt-format torch (iter_N/mp_rank_00/model_optim_rng.pt): a torch.save "
            "inside save_checkpoint, which is not installable and needs a GPU",
            "an empty or unparsable tracker: no Megatron code writes one",
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
    ap.add_argument("--jobs", type=int, default=2, help="children run at once (default 2)")
    ap.add_argument("--child", choices=list(SCENARIOS), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        run_child(a.child)
    elif a.out:
        run_parent(a.out.resolve(), a.only, a.jobs)
    else:
        ap.error("--out is required")


if __name__ == "__main__":
    main()
