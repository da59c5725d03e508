"""Record checkpoint folders written by the real Orbax ``CheckpointManager`` (JAX on the CPU).

Run by hand (it is not yet part of ``make fixtures``) inside ``.venv-fixtures-jax/``, whose pinned
versions are in ``fixtures_gen/requirements-orbax.txt``::

    .venv-fixtures-jax/bin/python fixtures_gen/orbax_runs.py --out tests/fixtures/orbax

Nothing here is imported by the ckpt test suite; the suite only reads what this script leaves in
``tests/fixtures/orbax/``.

Every scenario trains the same tiny pytree for real (``jax`` on the CPU, JAX_PLATFORMS=cpu) and
saves it with the stock ``orbax.checkpoint.CheckpointManager``; the scenario folder is the
manager's root ``directory`` exactly as Orbax left it. Nothing in those folders is written, edited
or faked by this script: the only interference is in the torn scenarios, where the process is
killed with SIGKILL part-way through the save of step 30 (no file is cut short).

The model and the data
----------------------
The pytree is ``{"w": float32 (8, 4), "b": float32 (4,)}`` (36 floats): a linear map trained by
minibatch SGD (batch 16, lr 0.1) on the MSE for 40 steps. The data are made here from
``numpy.random.RandomState(1234)``: 64 training rows with targets ``x @ W + b`` and 32 evaluation
rows with targets ``0.6 * (x @ W + b)``. The train loss falls at every save; the eval loss is
lowest at step 20 (0.2021), then 30 (0.2589), 40 (0.4812), 10 (0.8697), which the ``best-n``
scenario uses. Every run calls, at steps 10, 20, 30 and 40::

    mngr.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(params),
                                            meta=ocp.args.JsonSave({"step": step,
                                                                    "epoch": step / 4})),
              metrics={"loss": <train MSE>, "eval_loss": <eval MSE>})

then ``mngr.wait_until_finished()`` and ``mngr.close()``. ``meta`` is the second item of the
Orbax docstring example (``meta=ocp.args.JsonSave(my_metadata)``).

Each run saves into ``<temporary folder>/ckpt-orbax-fixtures/<scenario>`` (``/tmp`` here), an
ABSOLUTE path: Orbax 0.12.8 refuses a relative one ("Checkpoint path should be absolute", from
tensorstore_utils._build_ocdbt_kvstore_tspec). Orbax writes that path into every
``commit_success.txt`` (``Checkpoint commit was successful to <path>``, no newline), so the path
is fixed rather than random. When the child has ended the folder is moved into
``tests/fixtures/orbax/``, so the path in those files no longer exists, as with any checkpoint
that has been copied or moved.

What Orbax 0.12.8 writes for one step (read from the installed source, checked with strace)
---------------------------------------------------------------------------------------------
Default local protocol, ``AtomicRenameTemporaryPath`` (``_src/path/atomicity.py``; chosen by
``atomicity_defaults.get_default_temporary_path_class`` for any non-``gs://`` path):

1. ``<step>.orbax-checkpoint-tmp/`` (``_get_tmp_directory``: no timestamp suffix in this
   version) and in it ``_CHECKPOINT_METADATA`` holding only ``init_timestamp_nsecs``
   (``_create_tmp_directory``);
2. one temporary folder per item INSIDE it, ``<item>.orbax-checkpoint-tmp/``
   (``CompositeCheckpointHandler.async_save``): ``meta``, ``metrics``, ``state``;
3. the items: ``meta/metadata`` and ``metrics/metrics`` (``JsonCheckpointHandler``: one
   ``json.dumps`` text, no newline); ``state/`` (``StandardCheckpointHandler`` ->
   ``PyTreeCheckpointHandler``, OCDBT through tensorstore): ``ocdbt.process_0/d/<32 random
   hex>`` and ``ocdbt.process_0/manifest.ocdbt`` (written as ``manifest.ocdbt.__lock`` and
   renamed by tensorstore), ``_sharding`` (also through ``_sharding.__lock``),
   ``array_metadatas/process_0``, ``_METADATA``;
4. ``_CHECKPOINT_METADATA`` rewritten with ``item_handlers`` and ``custom_metadata``
   (``Checkpointer._save_step_metadata``);
5. each item finalized in turn, metrics, meta, then state (``CompositeCheckpointHandler.finalize``):
   the handler's ``finalize`` (for state: the OCDBT merge, which writes ``state/d/<hex>`` and
   ``state/manifest.ocdbt``), then ``AtomicRenameTemporaryPath.finalize`` of the item: its own
   ``commit_success.txt`` and the rename ``<item>.orbax-checkpoint-tmp`` -> ``<item>``;
6. ``AtomicRenameTemporaryPath.finalize`` of the step: ``_CHECKPOINT_METADATA`` gets
   ``commit_timestamp_nsecs``, ``commit_success.txt`` is written INTO
   ``<step>.orbax-checkpoint-tmp/``, then ``rename(<step>.orbax-checkpoint-tmp, <step>)``;
7. ``CheckpointManager._finalize`` -> ``CheckpointDeleter.delete_steps``: the steps the
   preservation policy drops are removed (``rmtree`` of the final-named folder, file by file),
   or renamed to ``<todelete_subdir>/<step name>``.

So under the default local protocol every finalized step and every item folder also holds a
``commit_success.txt``. _CHECKPOINT_METADATA is written with a plain ``write_text`` each time (no
temporary file); it is JSON on one line, no newline (folded here), e.g. (default/40; the
timestamps change at each regeneration)::

    {"item_handlers": {
       "meta": "orbax.checkpoint._src.handlers.json_checkpoint_handler.JsonCheckpointHandler",
       "metrics": "...JsonCheckpointHandler", "state": "...StandardCheckpointHandler"},
     "metrics": {}, "performance_metrics": {}, "init_timestamp_nsecs": 1796127383376313670,
     "commit_timestamp_nsecs": 1796127383531994361, "custom_metadata": {"epoch": 10.0}}

Timestamps are integer nanoseconds since the Unix epoch (``time.time_ns()``). ``metrics`` stays
``{}``: CheckpointManager does not put the ``metrics=`` of ``save`` there, it writes them as the
``metrics`` item, ``<step>/metrics/metrics`` (``{"loss": 0.2690295875072479, "eval_loss":
0.4811587631702423}``), and ONLY when ``best_fn`` is set (``save``: ``metrics is not None and
self._track_best``); without ``best_fn`` (the ``prefix`` scenario) they are not written at all.

Commit-file protocol (``CommitFileTemporaryPath``, the default for ``gs://``; selected here with
``CheckpointManagerOptions(atomicity_options=ocp.options.AtomicityOptions(
mode=ocp.options.AtomicityMode.COMMIT_FILE))``, the replacement of the deprecated
``temporary_path_class=``): the same files in the same order, but the step and item folders are
created under their final names and never renamed; ``commit_success.txt`` of each item is written
after its data, and the step's ``<step>/commit_success.txt`` is the last file of the save.

The root: Orbax leaves nothing at the root but the step folders, except ``metadata/_ROOT_METADATA``
when the CheckpointManager is given ``metadata=`` (``_maybe_save_root_metadata``; only in
``default/``), ``{"internal_metadata": {}, "custom_metadata": {"model": "tiny-linear-8x4",
"seed": 1234}}``, and the ``todelete_subdir`` folder. No lock file.

Scenarios
---------
``default/``
    max_to_keep=3, best_fn=loss (min), async saving (the default); the CheckpointManager gets
    ``metadata=`` and every save ``custom_metadata={"epoch": step / 4}``. Steps 20, 30, 40 stay;
    step 10 is deleted after step 40 is finalized.

``best-n/``
    max_to_keep=2, best_fn=eval_loss (min): Orbax keeps 20 and 30 and deletes 40, the newest,
    right after saving it: ``BestN`` ranks by the metric only and does not protect the latest
    step. ``latest_step()`` is 30 at the end of a 40-step run.

``prefix/``
    step_prefix="ckpt" (``ckpt_20`` ... ``ckpt_40``), max_to_keep=3, no best_fn: no ``metrics``
    item.

``fixed-length/``
    step_format_fixed_length=8 (``00000020`` ... ``00000040``), max_to_keep=3, best_fn=loss.

``commit-file/``
    The commit-file protocol on the local disk, max_to_keep=3, best_fn=loss.

``torn-<...>/``
    max_to_keep=3, best_fn=loss, synchronous saves (``enable_async_checkpointing=False``, so the
    save runs in the main thread's call; the finalize steps still run through
    ``asyncio.to_thread``); SIGKILLed (``os.kill(os.getpid(), SIGKILL)``) during the save of step
    30, by wrapping the real function Orbax calls at that moment; the wrapper acts only for the
    step-30 path. Steps 10 and 20 are complete; nothing was deleted yet.

    - ``torn-tmp/`` (atomic rename): killed as ``async_path.rename(30.orbax-checkpoint-tmp, 30)``
      is called: ``30.orbax-checkpoint-tmp/`` is COMPLETE, with ``commit_success.txt``, its
      items renamed and committed, ``commit_timestamp_nsecs`` set. Only its name says it is not
      finalized.
    - ``torn-tmp-mid/`` (atomic rename): killed as ``StandardCheckpointHandler.finalize`` is called
      for ``30.orbax-checkpoint-tmp/state.orbax-checkpoint-tmp``: ``metrics/`` and ``meta/`` are
      finalized (with their commit files), ``state.orbax-checkpoint-tmp/`` has the per-process
      OCDBT data but no merged ``manifest.ocdbt``/``d/`` and no commit file; no step
      ``commit_success.txt``; ``commit_timestamp_nsecs`` is null.
    - ``torn-commit-file/`` (commit file): killed as ``async_path.write_text`` is called for
      ``30/commit_success.txt``: ``30/`` exists under its final name with every item committed
      and ``commit_timestamp_nsecs`` set, but without its own ``commit_success.txt``. An Orbax
      reader with the default (atomic-rename) rule lists step 30 as finalized; with the
      commit-file rule it does not (see ``orbax_reader_view`` in FIXTURES.json).

``todelete/``
    todelete_subdir="todelete", max_to_keep=2, best_fn=loss: steps 10 and 20 are renamed to
    ``todelete/10`` and ``todelete/20`` (whole, commit files included) instead of being deleted.

After the runs, each scenario folder is copied and opened by a read-only CheckpointManager
(one child, with the scenario's step naming, once with the atomic-rename rule and once with the
commit-file rule); what it lists (``all_steps``, ``latest_step``, ``best_step``, ``metrics``) is
recorded as ``orbax_reader_view``, and the copy is checked to be unchanged. ``FIXTURES.json`` also
records the versions, the date, each scenario's options, child exit code and kill moment, and the
size and sha256 of every file; ``README.md`` says how to regenerate. Never edit the fixtures by
hand.
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
N_TRAIN, N_EVAL = 64, 32
BATCH = 16
EVAL_SCALE = 0.6
LEARNING_RATE = 0.1
MAX_STEPS = 40
SAVE_EVERY = 10
TORN_STEP = 30
TMP_SUFFIX = ".orbax-checkpoint-tmp"  # atomicity_types.TMP_DIR_SUFFIX
COMMIT_FILE = "commit_success.txt"  # atomicity_types.COMMIT_SUCCESS_FILE
# Every run saves into <SCRATCH_NAME>/<scenario> under the system temporary folder (an absolute
# path: Orbax refuses relative ones). The path is fixed, not random, because Orbax writes it into
# every commit_success.txt; see the module docstring.
SCRATCH_NAME = "ckpt-orbax-fixtures"

ROOT_METADATA = {"model": "tiny-linear-8x4", "seed": SEED}

TORN_MOMENTS: dict[str, str] = {
    "before-step-rename": f"step {TORN_STEP}: every file written, commit_success.txt included, "
    f"inside {TORN_STEP}{TMP_SUFFIX}/; killed as async_path.rename({TORN_STEP}{TMP_SUFFIX}, "
    f"{TORN_STEP}) is called, before the rename",
    "before-state-finalize": f"step {TORN_STEP}: items saved, the metrics and meta items already "
    f"finalized (renamed); killed as StandardCheckpointHandler.finalize is called for "
    f"{TORN_STEP}{TMP_SUFFIX}/state{TMP_SUFFIX}, before the OCDBT merge and before its "
    f"commit_success.txt and rename",
    "before-step-commit-file": f"step {TORN_STEP} (commit-file protocol): every file written in "
    f"place under {TORN_STEP}/, items finalized, _CHECKPOINT_METADATA has its "
    f"commit_timestamp_nsecs; killed as async_path.write_text is called for "
    f"{TORN_STEP}/{COMMIT_FILE}, before it writes",
}

SCENARIOS: dict[str, dict] = {
    "default": {
        "description": "Steps 10, 20, 30, 40 saved with max_to_keep=3 and best_fn=loss (min), so "
        "each step has a metrics item; step 10 is deleted after step 40 is finalized. Also passes "
        "the CheckpointManager `metadata=` (written as metadata/_ROOT_METADATA) and a per-step "
        "`custom_metadata` (written into _CHECKPOINT_METADATA). Default (async) saving, default "
        "local protocol (atomic rename).",
        "options": {"max_to_keep": 3},
        "best": "loss",
        "root_metadata": True,
        "custom_metadata": True,
    },
    "best-n": {
        "description": "The same training with max_to_keep=2 and best_fn=eval_loss (min): "
        "eval_loss is lowest at step 20, then 30, 40, 10, so Orbax keeps 20 and 30 and deletes "
        "step 40, the newest, right after finalizing it (BestN does not protect the latest).",
        "options": {"max_to_keep": 2},
        "best": "eval_loss",
    },
    "prefix": {
        "description": 'step_prefix="ckpt": folders ckpt_10 ... ckpt_40, max_to_keep=3. No '
        "best_fn: the metrics passed to save() are then not written anywhere (no metrics item).",
        "options": {"max_to_keep": 3, "step_prefix": "ckpt"},
        "best": None,
    },
    "fixed-length": {
        "description": "step_format_fixed_length=8: folders 00000010 ... 00000040, max_to_keep=3, "
        "best_fn=loss.",
        "options": {"max_to_keep": 3, "step_format_fixed_length": 8},
        "best": "loss",
    },
    "commit-file": {
        "description": "The object-store protocol on a local disk: "
        "atomicity_options=AtomicityOptions(mode=AtomicityMode.COMMIT_FILE): every step and item "
        "is written in place under its final name and commit_success.txt is written last; "
        "max_to_keep=3, best_fn=loss.",
        "options": {"max_to_keep": 3},
        "best": "loss",
        "atomicity": "commit_file",
    },
    "torn-tmp": {
        "description": "Default local protocol (atomic rename), synchronous saves, max_to_keep=3, "
        f"best_fn=loss; SIGKILLed while saving step {TORN_STEP} ("
        + TORN_MOMENTS["before-step-rename"]
        + ").",
        "options": {"max_to_keep": 3, "enable_async_checkpointing": False},
        "best": "loss",
        "kill": "before-step-rename",
    },
    "torn-tmp-mid": {
        "description": "As torn-tmp, killed earlier in the save of step "
        f"{TORN_STEP} (" + TORN_MOMENTS["before-state-finalize"] + ").",
        "options": {"max_to_keep": 3, "enable_async_checkpointing": False},
        "best": "loss",
        "kill": "before-state-finalize",
    },
    "torn-commit-file": {
        "description": "The commit-file protocol, synchronous saves, max_to_keep=3, best_fn=loss; "
        f"SIGKILLed while saving step {TORN_STEP} ("
        + TORN_MOMENTS["before-step-commit-file"]
        + ").",
        "options": {"max_to_keep": 3, "enable_async_checkpointing": False},
        "best": "loss",
        "atomicity": "commit_file",
        "kill": "before-step-commit-file",
    },
    "todelete": {
        "description": 'todelete_subdir="todelete", max_to_keep=2, best_fn=loss: instead of being '
        "deleted, steps 10 and 20 are renamed to todelete/10 and todelete/20.",
        "options": {"max_to_keep": 2, "todelete_subdir": "todelete"},
        "best": "loss",
    },
}


# --------------------------------------------------------------------------------------------
# Child side: one training run.
# --------------------------------------------------------------------------------------------


def _say(msg: str) -> None:
    print(f"[orbax child pid={os.getpid()}] {msg}", file=sys.stderr, flush=True)


def _die(msg: str) -> None:
    _say("SIGKILL: " + msg)
    os.kill(os.getpid(), signal.SIGKILL)


def _step_name(spec: dict, step: int) -> str:
    """The folder name Orbax gives a step (step.py ``_StandardNameFormat.build_name``)."""
    opts = spec["options"]
    n = opts.get("step_format_fixed_length")
    s = f"{step:0{n}d}" if n else str(step)
    return f"{opts['step_prefix']}_{s}" if opts.get("step_prefix") else s


def install_kill_hook(moment: str, root: Path, spec: dict) -> None:
    """Wrap the real function Orbax calls so that the process dies at ``moment``."""
    from orbax.checkpoint._src.handlers import standard_checkpoint_handler
    from orbax.checkpoint._src.path import async_path

    name = _step_name(spec, TORN_STEP)
    tmp_step = root / (name + TMP_SUFFIX)
    real_rename = async_path.rename
    real_write_text = async_path.write_text
    real_finalize = standard_checkpoint_handler.StandardCheckpointHandler.finalize

    async def rename(src, dst):
        if moment == "before-step-rename" and Path(src) == tmp_step:
            _die(f"before rename({src}, {dst})")
        return await real_rename(src, dst)

    async def write_text(path, text):
        if moment == "before-step-commit-file" and Path(path) == root / name / COMMIT_FILE:
            _die(f"before write_text({path})")
        return await real_write_text(path, text)

    def finalize(self, directory):
        if moment == "before-state-finalize" and Path(directory) == tmp_step / (
            "state" + TMP_SUFFIX
        ):
            _die(f"before StandardCheckpointHandler.finalize({directory})")
        return real_finalize(self, directory)

    # atomicity.py calls these through the module (``async_path.rename(...)``), so replacing the
    # module attributes reaches every caller.
    async_path.rename = rename
    async_path.write_text = write_text
    standard_checkpoint_handler.StandardCheckpointHandler.finalize = finalize


def _manager_options(spec: dict, *, read_only: bool = False, atomicity: str | None = None):
    import orbax.checkpoint as ocp

    kwargs = dict(spec["options"])
    if read_only:
        kwargs = {
            k: v for k, v in kwargs.items() if k in ("step_prefix", "step_format_fixed_length")
        }
        kwargs["read_only"] = True
    else:
        atomicity = spec.get("atomicity")
    if spec.get("best"):
        key = spec["best"]
        kwargs["best_fn"] = lambda m: m[key]
        kwargs["best_mode"] = "min"
    if atomicity == "commit_file":
        kwargs["atomicity_options"] = ocp.options.AtomicityOptions(
            mode=ocp.options.AtomicityMode.COMMIT_FILE
        )
    elif atomicity == "atomic_rename":
        kwargs["atomicity_options"] = ocp.options.AtomicityOptions(
            mode=ocp.options.AtomicityMode.ATOMIC_RENAME
        )
    return ocp.CheckpointManagerOptions(**kwargs)


def _data():
    import numpy as np

    rng = np.random.RandomState(SEED)
    w = rng.normal(size=(IN_DIM, OUT_DIM)).astype(np.float32)
    b = rng.normal(size=OUT_DIM).astype(np.float32)
    x_train = rng.normal(size=(N_TRAIN, IN_DIM)).astype(np.float32)
    x_eval = rng.normal(size=(N_EVAL, IN_DIM)).astype(np.float32)
    w0 = (0.1 * rng.normal(size=(IN_DIM, OUT_DIM))).astype(np.float32)
    return (x_train, x_train @ w + b), (x_eval, EVAL_SCALE * (x_eval @ w + b)), w0


def run_child(name: str, root: Path) -> None:
    spec = SCENARIOS[name]
    import jax
    import jax.numpy as jnp
    import orbax.checkpoint as ocp

    (x_train, y_train), (x_eval, y_eval), w0 = _data()
    params = {"w": jnp.asarray(w0), "b": jnp.zeros(OUT_DIM, jnp.float32)}

    def mse(p, x, y):
        return jnp.mean((x @ p["w"] + p["b"] - y) ** 2)

    grad_fn = jax.jit(jax.grad(mse))
    loss_fn = jax.jit(mse)

    if spec.get("kill"):
        install_kill_hook(spec["kill"], root, spec)

    mngr = ocp.CheckpointManager(
        root,
        options=_manager_options(spec),
        metadata=ROOT_METADATA if spec.get("root_metadata") else None,
    )
    batches = N_TRAIN // BATCH
    history = []
    for step in range(1, MAX_STEPS + 1):
        i = (step - 1) % batches
        xb, yb = x_train[i * BATCH : (i + 1) * BATCH], y_train[i * BATCH : (i + 1) * BATCH]
        params = jax.tree.map(lambda p, g: p - LEARNING_RATE * g, params, grad_fn(params, xb, yb))
        if step % SAVE_EVERY:
            continue
        metrics = {
            "loss": float(loss_fn(params, x_train, y_train)),
            "eval_loss": float(loss_fn(params, x_eval, y_eval)),
        }
        epoch = step / batches
        history.append((step, round(metrics["loss"], 5), round(metrics["eval_loss"], 5)))
        mngr.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(params),
                meta=ocp.args.JsonSave({"step": step, "epoch": epoch}),
            ),
            metrics=metrics,
            custom_metadata={"epoch": epoch} if spec.get("custom_metadata") else None,
        )
    mngr.wait_until_finished()
    _say(
        f"done: (step, loss, eval_loss) {history}; all_steps {list(mngr.all_steps())}, "
        f"latest_step {mngr.latest_step()}, best_step {mngr.best_step()}"
    )
    mngr.close()


def run_inspect(names: list[str], base: Path) -> None:
    """Open (copies of) scenario folders read-only with Orbax and print what it sees."""
    import orbax.checkpoint as ocp

    for name in names:
        spec = SCENARIOS[name]
        view = {}
        for atomicity in ("atomic_rename", "commit_file"):
            opts = _manager_options(spec, read_only=True, atomicity=atomicity)
            with ocp.CheckpointManager(base / name, options=opts) as mngr:
                steps = [int(s) for s in mngr.all_steps()]
                view[atomicity] = {
                    "all_steps": steps,
                    "latest_step": mngr.latest_step(),
                    "best_step": mngr.best_step() if spec.get("best") else None,
                    "metrics": {str(s): mngr.metrics(s) for s in steps},
                }
        print(f"INSPECT {name} " + json.dumps(view, sort_keys=True), flush=True)


# --------------------------------------------------------------------------------------------
# Parent side: run every scenario in a child, collect, describe.
# --------------------------------------------------------------------------------------------


def _child_env() -> dict:
    env = dict(os.environ)
    env.update(
        JAX_PLATFORMS="cpu",
        CUDA_VISIBLE_DEVICES="",
        PYTHONHASHSEED="0",
        OMP_NUM_THREADS="1",
        XLA_FLAGS="--xla_force_host_platform_device_count=1",
        TF_CPP_MIN_LOG_LEVEL="2",
    )
    return env


def _listing(root: Path, skip: tuple[str, ...] = ()) -> list[dict]:
    files = []
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name not in skip:
            files.append(
                {
                    "path": p.relative_to(root).as_posix(),
                    "size": p.stat().st_size,
                    "sha256": hashlib.sha256(p.read_bytes()).hexdigest(),
                }
            )
    return files


def _inspect(names: list[str], out: Path, scratch: Path) -> dict:
    """Run ``run_inspect`` in one child on copies, and check that reading changed nothing."""
    base = scratch / "inspect"
    before = {}
    for name in names:
        shutil.copytree(out / name, base / name)
        before[name] = _listing(base / name)
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--inspect", *names, "--dir", str(base)],
        env=_child_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-6000:])
        raise SystemExit(f"inspect: exit {proc.returncode}")
    views = {}
    for line in proc.stdout.splitlines():
        if line.startswith("INSPECT "):
            _, name, text = line.split(" ", 2)
            views[name] = json.loads(text)
    for name in names:
        if _listing(base / name) != before[name]:
            raise SystemExit(f"inspect {name}: the read-only CheckpointManager changed the folder")
    shutil.rmtree(base)
    return views


def run_scenario(name: str, scratch: Path, dest: Path) -> dict:
    spec = SCENARIOS[name]
    root = scratch / name
    script = str(Path(__file__).resolve())
    cmd = [sys.executable, script, "--child", name, "--dir", str(root)]
    t0 = time.monotonic()
    with open(scratch / f"{name}.log", "w") as log:
        proc = subprocess.run(
            cmd, cwd=scratch, env=_child_env(), stdout=log, stderr=subprocess.STDOUT, timeout=600
        )
    seconds = round(time.monotonic() - t0, 1)
    log_text = (scratch / f"{name}.log").read_text()
    kill = spec.get("kill")
    expected = -signal.SIGKILL if kill else 0
    if proc.returncode != expected:
        sys.stderr.write(log_text[-6000:])
        raise SystemExit(f"scenario {name}: child exited {proc.returncode}, expected {expected}")
    if not root.is_dir():
        raise SystemExit(f"scenario {name}: Orbax left no {root}")
    shutil.move(str(root), str(dest / name))
    notes = [re.sub(r"pid=\d+", "pid=N", n) for n in re.findall(r"\[orbax child[^\n]*", log_text)]
    print(
        f"  {name}: exit {proc.returncode} in {seconds}s; {notes[-1] if notes else ''}", flush=True
    )
    opts = dict(spec["options"])
    if spec.get("best"):
        opts["best_fn"] = f"lambda metrics: metrics[{spec['best']!r}]"
        opts["best_mode"] = "min"
    if spec.get("atomicity") == "commit_file":
        opts["atomicity_options"] = "AtomicityOptions(mode=AtomicityMode.COMMIT_FILE)"
    rec = {
        "description": spec["description"],
        "command": f"python fixtures_gen/orbax_runs.py --child {name} --dir {root}",
        "directory": str(root),
        "checkpoint_manager": {
            "options": opts,
            "metadata": ROOT_METADATA if spec.get("root_metadata") else None,
        },
        "save_call": "mngr.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(params), "
        "meta=ocp.args.JsonSave({'step': step, 'epoch': step / 4})), metrics={'loss': ..., "
        "'eval_loss': ...}"
        + (", custom_metadata={'epoch': step / 4})" if spec.get("custom_metadata") else ")")
        + f" at steps {list(range(SAVE_EVERY, MAX_STEPS + 1, SAVE_EVERY))}, then "
        "mngr.wait_until_finished(); mngr.close()",
        "child_exit_code": proc.returncode,
        "child_seconds": seconds,
        "child_notes": notes,
    }
    if kill:
        rec["kill_moment"] = kill
        rec["kill_moment_description"] = TORN_MOMENTS[kill]
        rec["killed_while_saving_step"] = TORN_STEP
    return rec


VERSIONED = (
    "jax",
    "jaxlib",
    "orbax-checkpoint",
    "tensorstore",
    "etils",
    "numpy",
    "ml_dtypes",
    "absl-py",
    "msgpack",
    "protobuf",
    "simplejson",
    "aiofiles",
    "fsspec",
)


def _versions() -> dict:
    v = {"python": platform.python_version()}
    for pkg in VERSIONED:
        v[pkg] = importlib.metadata.version(pkg)
    v["platform"] = platform.platform()
    v["machine"] = platform.machine()
    return v


CHECKPOINT_WRITE_ORDER = [
    "<step>.orbax-checkpoint-tmp/ mkdir (AtomicRenameTemporaryPath.create -> "
    "_create_tmp_directory, via atomicity.create_all / create_all_async); under the commit-file "
    "protocol CommitFileTemporaryPath.create makes <step>/ itself",
    "_CHECKPOINT_METADATA, first version: only init_timestamp_nsecs (_create_tmp_directory -> "
    "MetadataStore.write)",
    "<item>.orbax-checkpoint-tmp/ for each item, sorted by name: meta, metrics, state "
    "(CompositeCheckpointHandler.async_save -> atomicity.create_all[_async]; <item>/ in place "
    "under the commit-file protocol)",
    "meta/metadata and metrics/metrics (JsonCheckpointHandler, one JSON text each)",
    "state/: ocdbt.process_0/d/<random hex> + ocdbt.process_0/manifest.ocdbt (tensorstore OCDBT, "
    "the manifest through manifest.ocdbt.__lock + rename), _sharding (tensorstore, through "
    "_sharding.__lock + rename), array_metadatas/process_0, _METADATA "
    "(BasePyTreeCheckpointHandler)",
    "_CHECKPOINT_METADATA, second version: + item_handlers, custom_metadata "
    "(Checkpointer._save_step_metadata -> MetadataStore.update)",
    "per item, in the order metrics, meta, state (CompositeCheckpointHandler.finalize): "
    "handler.finalize (state: merge of ocdbt.process_0 into state/d/<random hex> + "
    "state/manifest.ocdbt), then the item's TemporaryPath.finalize: <item>/commit_success.txt, "
    "then (atomic rename only) rename <item>.orbax-checkpoint-tmp -> <item>",
    "_CHECKPOINT_METADATA, third version: + commit_timestamp_nsecs "
    "(AtomicRenameTemporaryPath.finalize / CommitFileTemporaryPath.finalize -> "
    "MetadataStore.update)",
    "<step>/commit_success.txt: written into <step>.orbax-checkpoint-tmp/ by "
    "AtomicRenameTemporaryPath.finalize, into <step>/ by CommitFileTemporaryPath.finalize "
    "(async_path.write_text)",
    "rename <step>.orbax-checkpoint-tmp -> <step> (AtomicRenameTemporaryPath.finalize -> "
    "async_path.rename); nothing under the commit-file protocol",
    "old steps removed (CheckpointManager._finalize -> CheckpointDeleter.delete_steps): rmtree, "
    "or rename into <todelete_subdir>/<step> when todelete_subdir is set",
]

README = """\
# Checkpoint folders written by the real Orbax CheckpointManager

Every folder here is the root `directory` of a real `orbax.checkpoint.CheckpointManager` run
(real `jax` on the CPU, a 36-float pytree `{"w": (8, 4), "b": (4,)}` trained by a few SGD steps
on synthetic data, fixed seeds), exactly as Orbax left it. The torn scenarios are the same run
SIGKILLed part-way through saving step 30. `FIXTURES.json` says which versions wrote them, the
options of each scenario, the kill moment of each torn one, what a read-only Orbax
CheckpointManager sees in each folder (`orbax_reader_view`, with the atomic-rename and with the
commit-file rule), and the size and sha256 of every file. The module docstring of
`fixtures_gen/orbax_runs.py` describes every scenario and the order in which this Orbax version
writes a step's files.

Each `commit_success.txt` holds the absolute path the step or item had when it was committed:
`Checkpoint commit was successful to /tmp/ckpt-orbax-fixtures/<scenario>/<step>` (no newline);
the run folder was moved here afterwards, so that path no longer exists. An item's file names the
step's temporary folder (`.../40.orbax-checkpoint-tmp/state`) under the atomic-rename protocol.

The files are generated: do not edit them by hand. To regenerate (in its own virtual environment
with the pins of `fixtures_gen/requirements-orbax.txt`; `make test` never needs it):

    .venv-fixtures-jax/bin/python fixtures_gen/orbax_runs.py --out tests/fixtures/orbax

The weights, metrics and names are deterministic; the OCDBT data files are named by random hex
(`d/<32 hex>`), and the timestamps in `_CHECKPOINT_METADATA` change, so a regeneration changes
file names and hashes under `state/`, not the structure.
"""


def run_parent(out: Path, only: list[str] | None) -> None:
    names = only or list(SCENARIOS)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    started = _dt.datetime.now(_dt.timezone.utc)
    t0 = time.monotonic()
    scratch = Path(tempfile.gettempdir()) / SCRATCH_NAME
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir()
    records = {}
    try:
        for name in names:
            records[name] = run_scenario(name, scratch, out)
        for name, view in _inspect(names, out, scratch).items():
            records[name]["orbax_reader_view"] = view
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    (out / "README.md").write_text(README)
    meta = {
        "generator": "fixtures_gen/orbax_runs.py, run as .venv-fixtures-jax/bin/python "
        "fixtures_gen/orbax_runs.py --out tests/fixtures/orbax",
        "generated_at": started.isoformat(timespec="seconds"),
        "generation_seconds": round(time.monotonic() - t0, 1),
        "versions": _versions(),
        "model": "pytree {'w': float32 (8, 4), 'b': float32 (4,)}: 36 floats, a linear map; "
        f"minibatch SGD (batch {BATCH}, lr {LEARNING_RATE}) on the MSE for {MAX_STEPS} steps, "
        f"saved every {SAVE_EVERY}",
        "data": f"synthetic, numpy RandomState({SEED}): {N_TRAIN} train rows y = x@W + b, "
        f"{N_EVAL} eval rows y = {EVAL_SCALE} * (x@W + b); metrics loss = train MSE, "
        "eval_loss = eval MSE",
        "checkpoint_write_order": CHECKPOINT_WRITE_ORDER,
        "scenarios": records,
        "files": _listing(out, skip=("FIXTURES.json",)),
    }
    (out / "FIXTURES.json").write_text(json.dumps(meta, indent=2, allow_nan=False) + "\n")
    print(f"wrote {out} in {meta['generation_seconds']}s", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, help="where to write the fixtures (deleted first)")
    ap.add_argument("--only", nargs="*", choices=list(SCENARIOS), help="run only these scenarios")
    ap.add_argument("--child", choices=list(SCENARIOS), help=argparse.SUPPRESS)
    ap.add_argument("--inspect", nargs="+", choices=list(SCENARIOS), help=argparse.SUPPRESS)
    ap.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        run_child(a.child, a.dir)
    elif a.inspect:
        run_inspect(a.inspect, a.dir)
    elif a.out:
        run_parent(a.out.resolve(), a.only)
    else:
        ap.error("--out is required")


if __name__ == "__main__":
    main()
