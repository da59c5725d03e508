"""The seed crate's checkpoint API, in Python: `Checkpoint` and `CheckpointConfig`.

Every example of `seed/checkpoint-usage.md` has a twin here:

    ckpt = Checkpoint(epoch=5, global_step=1000, best_loss=0.42,
                      optimizer_state=[0.1, 0.2, 0.3], rng_state=12345)
    ckpt.save("./checkpoints/checkpoint-1000")
    loaded = Checkpoint.load("./checkpoints/checkpoint-1000")
    latest = Checkpoint.find_latest("./checkpoints")
    Checkpoint.cleanup_old(CheckpointConfig(output_dir="./checkpoints", max_checkpoints=5))

Saving is atomic and takes the run directory's lock, exactly as `ckpt save` does; errors are
the `ckpt_cli.errors` classes (all `CkptError`), so a training loop can catch one base class.
Every path may also be an object-store URL (`s3://bucket/run/checkpoint-1000`, any fsspec
protocol): the operations below it (`ckpt_cli.ops`) are the same for both.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .core.format import ManifestEntry, Metadata
from .core.paths import Location, ObjectPath, location
from .core.records import DEFAULT_LOCK_TIMEOUT, checkpoint_name

PathLike = str | os.PathLike[str] | ObjectPath


@dataclass
class Checkpoint:
    """One checkpoint's metadata: the seed's five fields, plus ckpt's own."""

    epoch: int
    global_step: int
    best_loss: float
    optimizer_state: list[float] = field(default_factory=list)
    rng_state: int | None = None
    #: this checkpoint's own loss, when recorded
    loss: float | None = None
    #: unknown metadata keys, kept and written back
    extra: dict[str, Any] = field(default_factory=dict)
    #: set by load / find_latest / save: where the checkpoint lives
    path: Location | None = field(default=None, compare=False)
    #: set when loaded: when it was saved (RFC 3339, UTC) and its payload manifest
    saved_at: str | None = field(default=None, compare=False)
    manifest: list[ManifestEntry] | None = field(default=None, compare=False)

    def _metadata(self) -> Metadata:
        return Metadata(
            epoch=self.epoch,
            global_step=self.global_step,
            best_loss=self.best_loss,
            optimizer_state=self.optimizer_state,
            rng_state=self.rng_state,
            loss=self.loss,
            extra=dict(self.extra),
        )

    @classmethod
    def _from_metadata(cls, meta: Metadata, path: Location) -> Checkpoint:
        return cls(
            epoch=meta.epoch,
            global_step=meta.global_step,
            best_loss=meta.best_loss,
            optimizer_state=meta.optimizer_state,
            rng_state=meta.rng_state,
            loss=meta.loss,
            extra=meta.extra,
            path=path,
            saved_at=meta.saved_at,
            manifest=meta.manifest,
        )

    def save(
        self,
        path: PathLike,
        *,
        payloads: Sequence[str | os.PathLike[str]] = (),
        move: bool = False,
        hashes: bool = True,
        lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT,
    ) -> Location:
        """Save atomically to the checkpoint folder `path` (e.g. `checkpoints/checkpoint-1000`).

        A folder that a framework already filled is sealed (metadata.json written last); an
        existing checkpoint at `path` is replaced atomically, as the seed crate overwrites.
        """
        from .ops.save import save_checkpoint

        self.path = save_checkpoint(
            path,
            self._metadata(),
            payloads=[Path(p) for p in payloads],
            move=move,
            hashes=hashes,
            lock_timeout=lock_timeout,
        )
        return self.path

    @classmethod
    def load(cls, path: PathLike) -> Checkpoint:
        """Load and validate a checkpoint folder (or its metadata.json)."""
        from .ops.load import checkpoint_folder, read_metadata

        folder = checkpoint_folder(location(path))
        return cls._from_metadata(read_metadata(folder), folder)

    @classmethod
    def find_latest(cls, checkpoint_dir: PathLike) -> Checkpoint:
        """The valid checkpoint with the highest step; NotFoundError when there is none."""
        from .ops.latest import find_latest

        folder, meta = find_latest(location(checkpoint_dir))
        return cls._from_metadata(meta, folder)

    @staticmethod
    def cleanup_old(config: CheckpointConfig, *, delete_incomplete: bool = False) -> list[Location]:
        """Delete all but the newest `config.max_checkpoints` checkpoints; returns what went.

        Runs the same retention engine and safety rules as `ckpt prune --keep-last N`: the
        latest valid and the most recently saved are always kept, nothing that is not a
        checkpoint is touched, and a checkpoint folder that is incomplete or corrupt (another
        tool's, or a crash) is kept unless `delete_incomplete`, and then only once stale.
        """
        from .core.retention import RetentionPolicy
        from .ops.prune import prune_run_dir

        policy = RetentionPolicy(
            keep_last=config.max_checkpoints, delete_incomplete=delete_incomplete
        )
        result = prune_run_dir(location(config.output_dir), policy)
        return [entry.record.path for entry in result.deleted]


@dataclass
class CheckpointConfig:
    """Where checkpoints go and how many to keep, as in the seed crate."""

    output_dir: PathLike = "./checkpoints"
    save_every_n_steps: int = 500
    max_checkpoints: int = 3

    def should_save(self, step: int) -> bool:
        """True on the steps a checkpoint is due (every `save_every_n_steps`)."""
        return self.save_every_n_steps > 0 and step % self.save_every_n_steps == 0

    def checkpoint_path(self, step: int) -> Location:
        """The folder of the checkpoint at `step`: `output_dir/checkpoint-<step>`."""
        return location(self.output_dir) / checkpoint_name(step)
