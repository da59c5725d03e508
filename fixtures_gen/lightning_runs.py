"""Record checkpoint folders written by the real PyTorch Lightning ``ModelCheckpoint``.

Run inside ``.venv-fixtures/``, whose pinned versions are in
``fixtures_gen/requirements-lightning.txt``, as ``.venv-fixtures/bin/python
fixtures_gen/lightning_runs.py --out tests/fixtures/lightning`` from the repo root. Nothing here is
imported by the ckpt test suite; the suite only reads what this script leaves in
``tests/fixtures/lightning/``.

Every scenario trains the same tiny model for real (``torch`` on the CPU, ``pytorch_lightning``
2.6.6 imported as ``pytorch_lightning``, ``Trainer(accelerator="cpu", devices=1)``, Adam) and
keeps what Lightning wrote exactly as it left it. Nothing in those folders is written, edited or
faked by this script: the only interference is in the torn scenarios, where the process is
killed with SIGKILL part-way through a checkpoint save, and in three of them (``torn-mid-write``,
``torn-mid-last``, ``torn-cross-device``) the file being written at that moment is left
half-written before the kill (see below).

The model and the data
----------------------
``TinyRegressor`` is a ``LightningModule`` with one ``nn.Linear(8, 4)`` (36 parameters), MSE loss,
``self.log("train_loss", ...)`` in ``training_step`` and ``self.log("val_loss", ...)`` in
``validation_step``, ``save_hyperparameters()`` (lr), Adam with lr=0.03, no scheduler. The data
are made here from a fixed seed (``pl.seed_everything(1234, workers=True)``,
``deterministic=True``): 64 training rows whose targets are ``x @ W + b`` (batches of 8, shuffled:
8 steps an epoch), 32 validation rows whose targets are ``0.6 * (x @ W + b)``. ``val_loss`` falls
to its minimum at epoch 3 (step 32) and rises after it, so with ``save_top_k=2`` the top-k
callback deletes files (epoch 0 when epoch 2 is saved, epoch 1 when epoch 3 is saved) and saves
nothing in epochs 4 and 5.

Each scenario runs in child processes (``--child``) whose working directory is
``<scratch>/<scenario>`` and whose ``ModelCheckpoint(dirpath="checkpoints")`` is relative to it;
the scratch folder is always ``<tempdir>/ckpt-lightning-fixtures`` (``/tmp/...`` here) so that the
ABSOLUTE paths Lightning stores inside every .ckpt (``dirpath``, ``best_model_path``,
``best_k_models``, ``last_model_path``, ``kth_best_model_path``: ``ModelCheckpoint`` keeps the
``os.path.realpath`` of dirpath) are the same at each regeneration, e.g.
``/tmp/ckpt-lightning-fixtures/topk-copy/checkpoints/epoch=3-step=32.ckpt``. When the children
have ended, the working directory (everything Lightning wrote in it) becomes
``tests/fixtures/lightning/<scenario>/``.

How Lightning 2.6.6 writes a checkpoint (read from the installed source)
------------------------------------------------------------------------
``ModelCheckpoint._save_checkpoint`` (pytorch_lightning/callbacks/model_checkpoint.py) ->
``Trainer.save_checkpoint`` (pytorch_lightning/trainer/trainer.py): ``dump_checkpoint``
(trainer/connectors/checkpoint_connector.py) builds the dict (``epoch``, ``global_step``,
``pytorch-lightning_version``, ``state_dict``, ``loops``, ``callbacks``, ``optimizer_states``,
``lr_schedulers``, ``hparams_name``, ``hyper_parameters``), then ``Strategy.save_checkpoint`` (rank
0 only) -> ``TorchCheckpointIO.save_checkpoint`` (lightning_fabric/plugins/io/torch_io.py):
``fs.makedirs(dirname, exist_ok=True)`` and ``_atomic_save`` (lightning_fabric/utilities/
cloud_io.py):

1. ``torch.save(checkpoint, io.BytesIO())``: the whole zip archive is built in memory (so its
   top folder inside the zip is ``archive/``, whatever the file is called);
2. ``with fs.transaction:`` (fsspec ``LocalFileSystem``) ``fs.open(path, "wb")`` returns a
   ``LocalFileOpener`` with ``autocommit=False``, which opens a temp file made by
   ``tempfile.mkstemp()``: in ``$TMPDIR`` (``/tmp`` by default), NOT in the checkpoint
   directory, named ``tmp`` + 8 random characters, no suffix;
3. ``f.write(bytesbuffer.getvalue())``: ONE write of all the bytes into the temp file, then
   close (no fsync);
4. on leaving the transaction, ``LocalFileOpener.commit``: ``shutil.move(temp, path)``, which is
   an ``os.rename`` when ``$TMPDIR`` is on the checkpoint's file system (atomic: the final name
   appears complete) and otherwise ``shutil.copy2`` (``copyfile``: the final name is created and
   filled in place, not atomic) + ``os.unlink(temp)``; then ``os.chmod(path, 0o666 & ~umask)``.

Per save event (``_save_topk_checkpoint`` then ``_save_last_checkpoint``, at the end of each
training epoch here): ``_update_best_and_save`` saves the new top-k file FIRST, then removes the
k-th worst (``Strategy.remove_checkpoint`` -> ``TorchCheckpointIO.remove_checkpoint`` ->
``fs.rm``); then ``save_last=True`` makes ``last.ckpt`` by a SECOND full ``trainer.save_checkpoint``
(not a file copy), and ``save_last="link"`` by ``_link_checkpoint``: ``os.remove`` of the old link,
then ``os.symlink(os.path.relpath(target, dirname(link)), link)``. ``last.ckpt`` is only
re-saved in an epoch where a top-k file was saved (``_last_global_step_saved ==
trainer.global_step`` in ``on_train_epoch_end``); a link is re-made every epoch.

What a .ckpt records
--------------------
A ``.ckpt`` is a torch zip archive (stored, not compressed) whose top folder is ``archive/``:
``archive/data.pkl`` (pickle protocol 2), ``archive/.format_version``, ``.storage_alignment``,
``byteorder``, ``data/0`` ... ``data/9`` (tensor storages, 64-byte aligned), ``version``,
``.data/serialization_id``. In ``data.pkl`` the top-level dict begins with ``epoch``,
``global_step`` (BININT1 here: plain ints) and ``pytorch-lightning_version`` (``"2.6.6"``); the
callback state is under ``callbacks["ModelCheckpoint{'monitor': 'val_loss', 'mode': 'min',
'every_n_train_steps': 0, 'every_n_epochs': 1, 'train_time_interval': None}"]`` with
``best_model_score``, ``current_score``, ``kth_value`` and the values of ``best_k_models`` as
0-dim float32 TENSORS (``torch._utils._rebuild_tensor_v2`` of a persistent id naming a 4-byte
storage ``archive/data/<key>``), the paths as absolute strings, repeated ones as memo references
(BINGET). The logged ``val_loss`` itself is not stored: only these scores (and the file name
with a ``{val_loss}`` template). ``FIXTURES.json`` ("checkpoints") lists these for every file,
read opcode by opcode without unpickling.

Scenarios
---------
``topk-copy/``
    ``ModelCheckpoint(dirpath="checkpoints", monitor="val_loss", save_top_k=2, save_last=True,
    every_n_epochs=1)``, 6 epochs (48 steps), default filename ``epoch=E-step=S.ckpt``: the files
    of epochs 0 and 1 are deleted by top-k, ``epoch=2-step=24.ckpt``, ``epoch=3-step=32.ckpt``
    and ``last.ckpt`` stay; ``last.ckpt`` is the save of epoch 3 (step 32), not of the end of the
    run (step 48), and is byte-identical to ``epoch=3-step=32.ckpt`` (same dict, same paths; only
    at the first save event do the two differ, by ``last_model_path``: ``""`` in the top-k file,
    ``.../last.ckpt`` in last.ckpt).
``metric-names/``
    ``filename="{epoch}-{step}-{val_loss:.4f}"``, ``save_top_k=-1``, 4 epochs: all four kept,
    named like ``epoch=2-step=24-val_loss=0.2588.ckpt``; no last.ckpt.
``last-link/``
    As topk-copy with ``save_last="link"`` and ``save_top_k=3`` (so that epoch 4, worse than
    epoch 3, is still saved): ``last.ckpt`` is a relative symlink whose text is the bare file name
    of the newest SAVED top-k file, ``epoch=4-step=40.ckpt``: not the best (epoch 3), not the end
    of the run (step 48). It is re-made (os.remove + os.symlink) at every epoch end.
``versions/``
    The topk-copy run twice into the same ``checkpoints/``, the second a fresh run (no
    ``ckpt_path``): the second run's names collide and get ``-v1`` (``epoch=2-step=24-v1.ckpt``,
    ``last-v1.ckpt``), but only where a file of that name exists at that moment: the second
    run's epoch 0 and 1 files were saved as ``epoch=0-step=8.ckpt`` and ``epoch=1-step=16.ckpt``
    (the first run had deleted its own) and deleted again by its top-k. Each run deletes only the
    files it saved itself (its ``best_k_models``); nothing rescans the directory.
``last-only/``
    ``ModelCheckpoint(dirpath="checkpoints", save_top_k=0, save_last=True)``, 3 epochs: no
    top-k file at all, and no last.ckpt during the run either (nothing was saved at those steps);
    one ``last.ckpt`` saved by ``on_train_end``, whose ``epoch`` is 3 (``trainer.current_epoch``
    after the loop: the number of epochs run) with ``global_step`` 24, where a save at the end of
    epoch 2 records ``epoch`` 2.
``resume/``
    The topk-copy callback for 3 epochs, then a second process with ``max_epochs=6`` and
    ``trainer.fit(..., ckpt_path="checkpoints/last.ckpt")`` into the same dirpath: the callback
    state is restored from the checkpoint (``load_state_dict`` restores ``best_k_models`` only
    when the stored ``dirpath`` equals the new one), so the names carry on without ``-v1``, top-k
    deletes ``epoch=1-step=16.ckpt`` of the first run and ``last.ckpt`` is overwritten in place.
``default-dirs/``
    No dirpath, ``Trainer(default_root_dir=".", logger=CSVLogger("."))`` and the default
    ``ModelCheckpoint`` (``save_top_k=1``, no monitor) that Lightning adds itself, 3 epochs:
    ``lightning_logs/version_0/{checkpoints/epoch=2-step=24.ckpt, metrics.csv, hparams.yaml}``.

``torn-<moment>/``
    The topk-copy run, SIGKILLed (``os.kill(os.getpid(), SIGKILL)``) during the 3rd save event
    (epoch 2, step 24), by wrapping the real function Lightning calls for that file; the
    generator survives, the child dies with -9. ``epoch=0-step=8.ckpt``, ``epoch=1-step=16.ckpt``
    and ``last.ckpt`` (the save of epoch 1) are complete. The child's ``$TMPDIR`` is a folder of
    its own; whatever fsspec left there is kept in the fixture as ``<scenario>/TMPDIR/`` (in a
    real run it is in ``/tmp``, away from the checkpoints):

    - ``torn-mid-write``: ``LocalFileOpener.write`` for ``epoch=2-step=24.ckpt`` is given only
      the first half of the bytes (the real write), flushed, killed: a half-written temp file in
      TMPDIR, no ``epoch=2-step=24.ckpt``.
    - ``torn-before-commit``: killed as ``LocalFileOpener.commit`` is called for
      ``epoch=2-step=24.ckpt``, before ``shutil.move``: a complete temp file in TMPDIR, no
      ``epoch=2-step=24.ckpt``.
    - ``torn-mid-last``: ``epoch=2-step=24.ckpt`` is saved and ``epoch=0-step=8.ckpt`` removed,
      then the third write of ``last.ckpt`` gets half its bytes and is killed: the old
      ``last.ckpt`` (epoch 1) stays beside a newer ``epoch=2-step=24.ckpt``.
    - ``torn-cross-device``: ``$TMPDIR`` is on ``/dev/shm`` (tmpfs, another file system), so
      ``shutil.move`` falls back to ``copy2``; ``shutil.copyfile`` writes
      ``epoch=2-step=24.ckpt`` for real, the file is cut to its first half (``os.truncate``) and
      the process killed: a TRUNCATED ``epoch=2-step=24.ckpt`` under its final name, and the
      complete temp file left in TMPDIR.

After the runs, ``FIXTURES.json`` records the versions, the date, each scenario's arguments,
children's exit codes and kill moment, what the torn ones left in TMPDIR, the zip members of one
.ckpt, and the size and sha256 of every file (symlinks as their link text); ``README.md`` says how
to regenerate. Never edit the fixtures by hand.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as _dt
import fcntl
import hashlib
import importlib.metadata
import json
import os
import pickletools
import platform
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

SEED = 1234
IN_DIM, OUT_DIM = 8, 4
N_TRAIN, N_EVAL, BATCH = 64, 32, 8
EVAL_SCALE = 0.6
LEARNING_RATE = 0.03
TORN_FILE = "epoch=2-step=24.ckpt"  # written by the 3rd save event of the topk-copy run
SCRATCH = Path(tempfile.gettempdir()) / "ckpt-lightning-fixtures"
SHM_TMP = Path("/dev/shm")

TOPK = {
    "dirpath": "checkpoints",
    "monitor": "val_loss",
    "save_top_k": 2,
    "save_last": True,
    "every_n_epochs": 1,
}
RUN_TOPK = {"max_epochs": 6, "checkpoint": TOPK}

TORN_MOMENTS: dict[str, str] = {
    "mid-write": f"{TORN_FILE}: the real LocalFileOpener.write got only the first half of the "
    "bytes (into the fsspec temp file), flushed, then killed",
    "before-commit": f"{TORN_FILE}: the temp file complete and closed; killed as "
    "LocalFileOpener.commit is called, before shutil.move",
    "mid-last": f"{TORN_FILE} saved and epoch=0-step=8.ckpt removed; the 3rd write of last.ckpt "
    "got only the first half of the bytes, flushed, then killed",
    "cross-device": f"$TMPDIR on /dev/shm: shutil.move falls back to copy2; shutil.copyfile wrote "
    f"{TORN_FILE} under its final name, the file was cut to its first half, then killed",
}

SCENARIOS: dict[str, dict] = {
    "topk-copy": {
        "description": "ModelCheckpoint(monitor='val_loss', save_top_k=2, save_last=True, "
        "every_n_epochs=1), 6 epochs of 8 steps, default file names: top-k deletes the files of "
        "epochs 0 and 1; last.ckpt is a full second save of epoch 3 (the last top-k save), not "
        "of the end of the run.",
        "runs": [RUN_TOPK],
    },
    "metric-names": {
        "description": "filename='{epoch}-{step}-{val_loss:.4f}', save_top_k=-1, 4 epochs: every "
        "checkpoint kept, the monitored value in the name.",
        "runs": [
            {
                "max_epochs": 4,
                "checkpoint": {
                    "dirpath": "checkpoints",
                    "monitor": "val_loss",
                    "save_top_k": -1,
                    "filename": "{epoch}-{step}-{val_loss:.4f}",
                },
            }
        ],
    },
    "last-link": {
        "description": "The topk-copy run with save_last='link' and save_top_k=3: last.ckpt is "
        "a relative symlink to the newest saved top-k file (epoch 4), which is neither the best "
        "(epoch 3) nor the end of the run (step 48).",
        "runs": [{"max_epochs": 6, "checkpoint": {**TOPK, "save_top_k": 3, "save_last": "link"}}],
    },
    "versions": {
        "description": "The topk-copy run twice into the same dirpath, the second a fresh run "
        "(no ckpt_path): its names get -v1 (epoch=E-step=S-v1.ckpt, last-v1.ckpt).",
        "runs": [RUN_TOPK, RUN_TOPK],
    },
    "last-only": {
        "description": "ModelCheckpoint(save_top_k=0, save_last=True), 3 epochs: only last.ckpt.",
        "runs": [
            {
                "max_epochs": 3,
                "checkpoint": {"dirpath": "checkpoints", "save_top_k": 0, "save_last": True},
            }
        ],
    },
    "resume": {
        "description": "The topk-copy callback for 3 epochs, then a second process that resumes "
        "with trainer.fit(ckpt_path='checkpoints/last.ckpt') up to 6 epochs into the same "
        "dirpath.",
        "runs": [
            {"max_epochs": 3, "checkpoint": TOPK},
            {"max_epochs": 6, "checkpoint": TOPK, "ckpt_path": "checkpoints/last.ckpt"},
        ],
    },
    "default-dirs": {
        "description": "No ModelCheckpoint given (Lightning adds its default one: save_top_k=1, "
        "no monitor), Trainer(default_root_dir='.', logger=CSVLogger('.')), 3 epochs: "
        "lightning_logs/version_0/ with checkpoints/, metrics.csv and hparams.yaml.",
        "runs": [{"max_epochs": 3, "checkpoint": None, "csv_logger": True}],
    },
    **{
        f"torn-{m}": {
            "description": "The topk-copy run, SIGKILLed during the 3rd save event (epoch 2, "
            "step 24): " + why + ".",
            "runs": [RUN_TOPK],
            "kill": m,
        }
        for m, why in TORN_MOMENTS.items()
    },
}


# --------------------------------------------------------------------------------------------
# Child side: one training run.
# --------------------------------------------------------------------------------------------


def _say(msg: str) -> None:
    print(f"\n[lightning child pid={os.getpid()}] {msg}", file=sys.stderr, flush=True)


def _die(msg: str) -> None:
    _say("SIGKILL: " + msg)
    os.kill(os.getpid(), signal.SIGKILL)


def install_kill_hook(moment: str) -> None:
    """Wrap the real function Lightning's ``_atomic_save`` ends in, so that the process dies at
    ``moment`` while it saves ``TORN_FILE`` (or the third ``last.ckpt``)."""
    from fsspec.implementations.local import LocalFileOpener

    real_write = LocalFileOpener.write
    real_commit = LocalFileOpener.commit
    real_copyfile = shutil.copyfile
    last_writes = [0]

    def write(self, data, *args, **kwargs):
        name = Path(self.path).name
        if name == "last.ckpt":
            last_writes[0] += 1
        torn = (moment == "mid-write" and name == TORN_FILE) or (
            moment == "mid-last" and name == "last.ckpt" and last_writes[0] == 3
        )
        if torn:
            half = len(data) // 2
            real_write(self, data[:half])
            self.flush()
            _die(f"{half} of {len(data)} bytes of {self.path} written to temp file {self.temp}")
        return real_write(self, data, *args, **kwargs)

    def commit(self):
        if moment == "before-commit" and Path(self.path).name == TORN_FILE:
            size = os.path.getsize(self.temp)
            _die(f"before commit of {self.path}: temp file {self.temp} ({size} bytes) complete")
        return real_commit(self)

    def copyfile(src, dst, *args, **kwargs):
        result = real_copyfile(src, dst, *args, **kwargs)
        if moment == "cross-device" and Path(dst).name == TORN_FILE:
            size = os.path.getsize(dst)
            os.truncate(dst, size // 2)
            _die(f"copyfile({src} -> {dst}) cut to its first {size // 2} of {size} bytes")
        return result

    LocalFileOpener.write = write
    LocalFileOpener.commit = commit
    shutil.copyfile = copyfile


def run_child(name: str, index: int) -> None:
    spec = SCENARIOS[name]
    run = spec["runs"][index]
    import pytorch_lightning as pl
    import torch
    from pytorch_lightning.callbacks import ModelCheckpoint
    from pytorch_lightning.loggers import CSVLogger
    from torch import nn

    torch.set_num_threads(1)
    pl.seed_everything(SEED, workers=True)

    class TinyRegressor(pl.LightningModule):
        def __init__(self, lr: float = LEARNING_RATE):
            super().__init__()
            self.save_hyperparameters()
            self.linear = nn.Linear(IN_DIM, OUT_DIM)
            nn.init.normal_(self.linear.weight, std=0.1)
            nn.init.zeros_(self.linear.bias)

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = nn.functional.mse_loss(self.linear(x), y)
            self.log("train_loss", loss)
            return loss

        def validation_step(self, batch, batch_idx):
            x, y = batch
            self.log("val_loss", nn.functional.mse_loss(self.linear(x), y))

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)

    class Report(pl.Callback):
        def __init__(self):
            self.vals: list = []

        def on_validation_end(self, trainer, pl_module):
            if not trainer.sanity_checking:
                v = round(float(trainer.callback_metrics["val_loss"]), 5)
                self.vals.append((trainer.current_epoch, trainer.global_step, v))

    g = torch.Generator().manual_seed(SEED)
    w = torch.randn(IN_DIM, OUT_DIM, generator=g)
    b = torch.randn(OUT_DIM, generator=g)
    x_train = torch.randn(N_TRAIN, IN_DIM, generator=g)
    x_eval = torch.randn(N_EVAL, IN_DIM, generator=g)
    ds = torch.utils.data.TensorDataset
    train = torch.utils.data.DataLoader(
        ds(x_train, x_train @ w + b), batch_size=BATCH, shuffle=True
    )
    val = torch.utils.data.DataLoader(
        ds(x_eval, EVAL_SCALE * (x_eval @ w + b)), batch_size=N_EVAL, shuffle=False
    )

    if spec.get("kill"):
        install_kill_hook(spec["kill"])

    report = Report()
    callbacks: list = [report]
    if run["checkpoint"] is not None:
        callbacks.insert(0, ModelCheckpoint(**run["checkpoint"]))
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=run["max_epochs"],
        enable_progress_bar=False,
        enable_model_summary=False,
        deterministic=True,
        logger=CSVLogger(".") if run.get("csv_logger") else False,
        log_every_n_steps=4,
        default_root_dir=".",
        callbacks=callbacks,
    )
    trainer.fit(TinyRegressor(), train, val, ckpt_path=run.get("ckpt_path"))
    cb = trainer.checkpoint_callback
    best = os.path.relpath(cb.best_model_path) if cb.best_model_path else ""
    _say(f"done: val_loss by (epoch, step) {report.vals}; best {best}")


# --------------------------------------------------------------------------------------------
# Parent side: run every scenario in children, collect, describe.
# --------------------------------------------------------------------------------------------


def _child_env(tmpdir: Path) -> dict:
    env = dict(os.environ)
    env.update(
        TMPDIR=str(tmpdir),
        CUDA_VISIBLE_DEVICES="",
        PYTHONHASHSEED="0",
        OMP_NUM_THREADS="1",
        HF_HUB_OFFLINE="1",
    )
    return env


def _show(args: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in args.items())


def run_scenario(name: str, logs: Path) -> dict:
    spec = SCENARIOS[name]
    work = SCRATCH / name
    work.mkdir(parents=True)
    kill = spec.get("kill")
    tmpdir = (
        (SHM_TMP / f"ckpt-lightning-fixtures-{name}")
        if kill == "cross-device"
        else (SCRATCH / f"{name}.TMPDIR")
    )
    if tmpdir.exists():
        shutil.rmtree(tmpdir)
    tmpdir.mkdir(parents=True)
    script = str(Path(__file__).resolve())
    runs = []
    for i, run in enumerate(spec["runs"]):
        last = i == len(spec["runs"]) - 1
        log_path = logs / f"{name}.{i}.log"
        t0 = time.monotonic()
        with open(log_path, "w") as log:
            proc = subprocess.run(
                [sys.executable, script, "--child", name, "--run", str(i)],
                cwd=work,
                env=_child_env(tmpdir),
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=600,
            )
        seconds = round(time.monotonic() - t0, 1)
        log_text = log_path.read_text()
        expected = -signal.SIGKILL if (kill and last) else 0
        if proc.returncode != expected:
            sys.stderr.write(log_text[-6000:])
            raise SystemExit(
                f"scenario {name} run {i}: child exited {proc.returncode}, expected {expected}"
            )
        notes = [
            re.sub(r"pid=\d+", "pid=N", n) for n in re.findall(r"\[lightning child[^\n]*", log_text)
        ]
        warnings = sorted(
            set(
                re.findall(
                    r"(Checkpoint directory .* exists and is not empty\.|"
                    r"Restoring states from the checkpoint path at [^\n]*|"
                    r"Restored all states from the checkpoint at [^\n]*)",
                    log_text,
                )
            )
        )
        ckpt = run["checkpoint"]
        trainer_args = {
            "accelerator": "cpu",
            "devices": 1,
            "max_epochs": run["max_epochs"],
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "deterministic": True,
            "logger": "CSVLogger('.')" if run.get("csv_logger") else False,
            "log_every_n_steps": 4,
            "default_root_dir": ".",
        }
        runs.append(
            {
                "command": f"python fixtures_gen/lightning_runs.py --child {name} --run {i}",
                "model_checkpoint": f"ModelCheckpoint({_show(ckpt)})"
                if ckpt is not None
                else "none given (Lightning's default ModelCheckpoint())",
                "trainer": trainer_args,
                "fit": {"ckpt_path": run.get("ckpt_path")},
                "child_exit_code": proc.returncode,
                "child_seconds": seconds,
                "child_notes": notes,
                "lightning_messages": [w.replace(str(SCRATCH), "<scratch>") for w in warnings],
            }
        )
        print(
            f"  {name} run {i}: exit {proc.returncode} in {seconds}s; {notes[-1] if notes else ''}",
            flush=True,
        )
    rec = {
        "description": spec["description"],
        "cwd": f"{work} (the scenario folder; dirpath 'checkpoints' is relative to it)",
        "TMPDIR": str(tmpdir),
        "runs": runs,
    }
    if kill:
        rec["kill_moment"] = kill
        rec["kill_moment_description"] = TORN_MOMENTS[kill]
        rec["killed_while_saving"] = "last.ckpt" if kill == "mid-last" else TORN_FILE
    # What fsspec left in the child's $TMPDIR (its temp files) is kept beside the checkpoints
    # (moved, not edited). torch itself makes an empty torchinductor_<user>/ folder there at
    # import; folders are recorded, not kept.
    rec["left_in_TMPDIR"] = []
    for p in sorted(tmpdir.iterdir()):
        if p.is_file() and not p.is_symlink():
            (work / "TMPDIR").mkdir(exist_ok=True)
            rec["left_in_TMPDIR"].append(
                {"name": p.name, "size": p.stat().st_size, "kept_as": f"TMPDIR/{p.name}"}
            )
            shutil.move(str(p), str(work / "TMPDIR" / p.name))
        else:
            inside = sorted(q.relative_to(p).as_posix() for q in p.rglob("*"))
            rec["left_in_TMPDIR"].append(
                {"name": p.name + "/", "contents": inside, "kept_as": None}
            )
    shutil.rmtree(tmpdir)
    return rec


def _versions() -> dict:
    v = {"python": platform.python_version()}
    for pkg in (
        "torch",
        "pytorch-lightning",
        "lightning-utilities",
        "torchmetrics",
        "fsspec",
        "numpy",
    ):
        v[pkg] = importlib.metadata.version(pkg)
    v["platform"] = platform.platform()
    v["machine"] = platform.machine()
    return v


def _listing(root: Path) -> list[dict]:
    files = []
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_symlink():
            files.append({"path": rel, "symlink_to": os.readlink(p)})
        elif p.is_file() and rel != "FIXTURES.json":
            files.append(
                {
                    "path": rel,
                    "size": p.stat().st_size,
                    "sha256": hashlib.sha256(p.read_bytes()).hexdigest(),
                }
            )
    return files


def _archive(path: Path, root: Path) -> dict:
    """The zip members of one .ckpt (read with zipfile; nothing is unpickled)."""
    with zipfile.ZipFile(path) as z:
        return {
            "path": path.relative_to(root).as_posix(),
            "members": [
                {"name": i.filename, "size": i.file_size, "compress_type": i.compress_type}
                for i in z.infolist()
            ],
        }


class _Mark:
    pass


def _read_pickle(data: bytes) -> object:
    """Evaluate a torch ``data.pkl`` symbolically, opcode by opcode (``pickletools.genops``).

    Nothing is unpickled, imported or called: a GLOBAL stays its name, a REDUCE becomes
    ``{"reduce": <global>, "args": ...}``, a persistent id (BINPERSID: a tensor storage) becomes
    ``{"persid": ...}``. Only the opcodes torch.save's protocol 2 pickles use are handled.
    """
    mark = _Mark()
    stack: list = []
    memo: dict = {}

    def pop_mark() -> list:
        i = len(stack) - 1
        while stack[i] is not mark:
            i -= 1
        items = stack[i + 1 :]
        del stack[i:]
        return items

    literals = {"NEWTRUE": True, "NEWFALSE": False, "NONE": None}
    for op, arg, pos in pickletools.genops(data):
        n = op.name
        if n == "PROTO":
            continue
        if n == "STOP":
            break
        if n == "EMPTY_DICT":
            stack.append({})
        elif n == "EMPTY_LIST":
            stack.append([])
        elif n == "EMPTY_TUPLE":
            stack.append(())
        elif n == "MARK":
            stack.append(mark)
        elif n in literals:
            stack.append(literals[n])
        elif n in ("BINUNICODE", "SHORT_BINUNICODE", "BININT", "BININT1", "BININT2", "LONG1"):
            stack.append(arg)
        elif n == "BINFLOAT":
            stack.append(arg)
        elif n in ("BINPUT", "LONG_BINPUT"):
            memo[arg] = stack[-1]
        elif n in ("BINGET", "LONG_BINGET"):
            stack.append(memo[arg])
        elif n == "TUPLE":
            stack.append(tuple(pop_mark()))
        elif n in ("TUPLE1", "TUPLE2", "TUPLE3"):
            k = int(n[-1])
            stack[-k:] = [tuple(stack[-k:])]
        elif n == "SETITEM":
            v = stack.pop()
            key = stack.pop()
            stack[-1][key] = v
        elif n == "SETITEMS":
            items = pop_mark()
            stack[-1].update(zip(items[::2], items[1::2], strict=True))
        elif n == "APPEND":
            v = stack.pop()
            stack[-1].append(v)
        elif n == "APPENDS":
            items = pop_mark()
            stack[-1].extend(items)
        elif n == "GLOBAL":
            stack.append(("GLOBAL", arg))
        elif n == "REDUCE":
            args = stack.pop()
            stack.append({"reduce": stack.pop()[1], "args": args})
        elif n == "BINPERSID":
            stack.append({"persid": stack.pop()})
        elif n == "BUILD":
            stack.pop()  # OrderedDict._metadata of a state_dict
        else:
            raise ValueError(f"opcode {n} at {pos} not handled")
    return stack[-1]


def _json_value(v: object, z: zipfile.ZipFile, top: str) -> object:
    """A 0-dim float32 tensor as its value (read from its storage file), a path as it is."""
    if isinstance(v, dict) and v.get("reduce") == "torch._utils _rebuild_tensor_v2":
        _, storage, key, _loc, _numel = v["args"][0]["persid"]
        value: object = struct.unpack("<f", z.read(f"{top}/data/{key}")[:4])[0]
        if value in (float("inf"), float("-inf")) or value != value:
            value = str(value)
        return {
            "tensor": storage[1].split()[-1],
            "shape": list(v["args"][2]),
            "storage": f"{top}/data/{key}",
            "value": value,
        }
    if isinstance(v, dict):
        return {k: _json_value(x, z, top) for k, x in v.items()}
    return v


def _ckpt_record(path: Path) -> dict:
    """Where a .ckpt (or a temp file) records its epoch, step and ModelCheckpoint state."""
    try:
        z = zipfile.ZipFile(path)
    except zipfile.BadZipFile as e:
        return {"zip": False, "error": f"zipfile.BadZipFile: {e}"}
    with z:
        names = z.namelist()
        top = names[0].split("/")[0]
        data = z.read(f"{top}/data.pkl")
        obj = _read_pickle(data)
        callbacks = {
            key: _json_value(state, z, top)
            for key, state in obj.get("callbacks", {}).items()
            if key.startswith("ModelCheckpoint")
        }
        return {
            "zip": True,
            "top_folder": top,
            "data_pkl_size": len(data),
            "keys": list(obj),
            "epoch": obj["epoch"],
            "global_step": obj["global_step"],
            "pytorch-lightning_version": obj["pytorch-lightning_version"],
            "callbacks": callbacks,
        }


def _records(root: Path) -> dict:
    return {
        p.relative_to(root).as_posix(): _ckpt_record(p)
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink() and (p.suffix == ".ckpt" or p.parent.name == "TMPDIR")
    }


README = """\
# Checkpoint folders written by the real PyTorch Lightning ModelCheckpoint

Every folder here is the working directory of a real `pytorch_lightning` 2.6.6 training run
(real `torch`, CPU, a 36-parameter `LightningModule`, synthetic data, fixed seeds), exactly as
Lightning left it: `checkpoints/` is the `ModelCheckpoint` dirpath (`default-dirs/` has the
default `lightning_logs/version_0/` layout instead). The torn scenarios are the topk-copy run
SIGKILLed during its third save (epoch 2, step 24); `TMPDIR/` in them holds what fsspec left in
the child's `$TMPDIR` (its temp file: in a real run it sits in `/tmp`, not beside the
checkpoints). `FIXTURES.json` says which versions wrote them, what each scenario is, the kill
moment of each torn one, and the size and sha256 of every file. The module docstring of
`fixtures_gen/lightning_runs.py` describes every scenario and how this Lightning version writes a
checkpoint.

The paths stored inside each .ckpt (`best_model_path`, `best_k_models`, `last_model_path`,
`dirpath`, ...) are absolute paths of where the run happened,
`/tmp/ckpt-lightning-fixtures/<scenario>/checkpoints/...`, not of this folder.

The files are generated: do not edit them by hand. To regenerate (in the fixtures virtual
environment, `.venv-fixtures/`, with `fixtures_gen/requirements-lightning.txt` installed):

    .venv-fixtures/bin/python fixtures_gen/lightning_runs.py --out tests/fixtures/lightning

The runs are deterministic: a regeneration writes the same bytes into every .ckpt, metrics.csv
and hparams.yaml; only the temp files' names in `TMPDIR/` (random, from `tempfile.mkstemp`)
change. In `default-dirs/.../metrics.csv` the `step` column is the logger's step (0-based: the
val_loss row of the checkpoint `epoch=0-step=8.ckpt` has step 7).
"""


def run_parent(out: Path, only: list[str] | None, jobs: int) -> None:
    # The scratch folder has a fixed name (see the module docstring): one generator at a time.
    lock = open(f"{SCRATCH}.lock", "w")  # held (and the lock with it) until the process ends
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise SystemExit(f"another lightning_runs.py holds {SCRATCH}.lock") from None
    names = only or list(SCENARIOS)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    if SCRATCH.exists():
        shutil.rmtree(SCRATCH)
    SCRATCH.mkdir(parents=True)
    logs = Path(tempfile.mkdtemp(prefix="ckpt-lightning-logs-"))
    started = _dt.datetime.now(_dt.timezone.utc)
    t0 = time.monotonic()
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = {n: pool.submit(run_scenario, n, logs) for n in names}
            records = {n: f.result() for n, f in futures.items()}
        for n in names:
            shutil.move(str(SCRATCH / n), str(out / n))
    finally:
        shutil.rmtree(SCRATCH, ignore_errors=True)
        shutil.rmtree(logs, ignore_errors=True)
    (out / "README.md").write_text(README)
    example = out / "topk-copy" / "checkpoints" / "epoch=3-step=32.ckpt"
    meta = {
        "generator": "fixtures_gen/lightning_runs.py (.venv-fixtures/bin/python "
        "fixtures_gen/lightning_runs.py --out tests/fixtures/lightning)",
        "generated_at": started.isoformat(timespec="seconds"),
        "generation_seconds": round(time.monotonic() - t0, 1),
        "versions": _versions(),
        "model": "TinyRegressor(LightningModule): one nn.Linear(8, 4), 36 float32 parameters, "
        f"MSE loss, Adam lr={LEARNING_RATE}, save_hyperparameters(); logs train_loss "
        "(training_step) and val_loss (validation_step)",
        "data": f"synthetic, seed {SEED}: {N_TRAIN} train rows y = x@W + b (batch {BATCH}, "
        f"shuffled: 8 steps an epoch), {N_EVAL} val rows y = {EVAL_SCALE} * (x@W + b)",
        "scratch": f"{SCRATCH}/<scenario> was each run's cwd; the paths inside the .ckpt files "
        "are under it",
        "checkpoint_write_order": [
            "ModelCheckpoint._save_checkpoint -> Trainer.save_checkpoint -> "
            "_CheckpointConnector.dump_checkpoint (the dict) -> Strategy.save_checkpoint (rank 0) "
            "-> TorchCheckpointIO.save_checkpoint: fs.makedirs(dirpath, exist_ok=True)",
            "lightning_fabric.utilities.cloud_io._atomic_save: torch.save(checkpoint, "
            "io.BytesIO()) (the whole zip in memory, top folder 'archive/')",
            "with fs.transaction: fs.open(path, 'wb') -> fsspec LocalFileOpener(autocommit=False)"
            " -> tempfile.mkstemp() in $TMPDIR (not in dirpath), name 'tmp' + 8 random chars",
            "LocalFileOpener.write(all bytes) once, close (no fsync)",
            "transaction exit -> LocalFileOpener.commit -> shutil.move(temp, path) (os.rename on "
            "the same file system; copy2 = copyfile in place + unlink across file systems) -> "
            "os.chmod(path, 0o666 & ~umask)",
            "per save event: top-k file saved, then the k-th worst removed "
            "(TorchCheckpointIO.remove_checkpoint -> fs.rm), then last.ckpt: a second full "
            "Trainer.save_checkpoint (save_last=True) or os.remove + os.symlink(relative name) "
            "(save_last='link')",
        ],
        "ckpt_archive_example": _archive(example, out) if example.is_file() else None,
        "scenarios": records,
        "checkpoints": _records(out),
        "files": _listing(out),
    }
    (out / "FIXTURES.json").write_text(json.dumps(meta, indent=2, allow_nan=False) + "\n")
    print(f"wrote {out} in {meta['generation_seconds']}s", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, help="where to write the fixtures (deleted first)")
    ap.add_argument("--only", nargs="*", choices=list(SCENARIOS), help="run only these scenarios")
    ap.add_argument("--jobs", type=int, default=2, help="scenarios run at the same time")
    ap.add_argument("--child", choices=list(SCENARIOS), help=argparse.SUPPRESS)
    ap.add_argument("--run", type=int, default=0, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        run_child(a.child, a.run)
    elif a.out:
        run_parent(a.out.resolve(), a.only, a.jobs)
    else:
        ap.error("--out is required")


if __name__ == "__main__":
    main()
