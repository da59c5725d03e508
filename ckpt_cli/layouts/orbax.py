"""Orbax's layout (`orbax.checkpoint.CheckpointManager`; JAX: MaxText, t5x, axlearn): step
folders `<step>/` or `<prefix>_<step>/` (zero padding allowed), one subfolder per item.

- **Signature**: `_CHECKPOINT_METADATA` or `commit_success.txt` in the folder; a bare number is
  nobody's checkpoint without one.
- **Complete** by the rule of the storage it is on: on a local disk Orbax writes into
  `<name>.orbax-checkpoint-tmp` and renames, so a folder under its final name is finalized
  (its `_CHECKPOINT_METADATA` must still parse); on an object store it writes in place and
  `commit_success.txt` last, so without that file a folder is incomplete (kept, never
  deleted: Orbax itself deleted such copies, orbax #394).
- **Temporary**: `*.orbax-checkpoint-tmp` and the older `*.orbax-checkpoint-tmp-<timestamp>`
  (in `core/namings.py`): removed once stale. The `todelete` subfolder is not a step: untouched.
  A folder whose `_CHECKPOINT_METADATA` says it was never committed (`commit_timestamp_nsecs`
  null) and has no `commit_success.txt` is incomplete on either.
- **Record**: the step is the folder's; the loss is the `loss` (else `eval_loss`, `val_loss`)
  of the `metrics` item (`<step>/metrics/metrics`, written when the manager has a `best_fn`);
  best loss the lowest up to that step; epoch from the metrics or `custom_metadata`; saved at
  `commit_timestamp_nsecs`, else the file's mtime.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

from ..core.errors import (
    CkptError,
    CkptFileSystemError,
    IncompleteCheckpointError,
    InvalidCheckpointError,
)
from ..core.paths import Location
from .base import FolderLayout, Reading, running_best

if TYPE_CHECKING:
    from ..storage.base import Backend
    from ..storage.listing import FileInfo

NAME = "orbax"
MARKER = "_CHECKPOINT_METADATA"
COMMIT = "commit_success.txt"
METRICS = "metrics/metrics"
_LOSS_KEYS = ("loss", "eval_loss", "val_loss", "train_loss")
_MAX_MARKER = 1024 * 1024


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _read(
    backend: Backend, folder: Location, step: int | None, files: Mapping[str, FileInfo]
) -> Reading:
    """The record of a folder whose signature is there; raises IncompleteCheckpointError or
    InvalidCheckpointError by Orbax's rule."""
    if not backend.real_folders and COMMIT not in files:
        raise IncompleteCheckpointError(
            f"{folder}: incomplete Orbax checkpoint, no {COMMIT} (on an object store Orbax "
            "writes it last)"
        )
    info = files.get(MARKER)
    meta: dict[str, Any] = {}
    if info is not None:
        if info.size > _MAX_MARKER:
            raise InvalidCheckpointError(f"{folder}: {MARKER} is {info.size} bytes")
        try:
            found = orjson.loads(backend.read_file(folder / MARKER, about=folder))
        except orjson.JSONDecodeError as exc:
            raise InvalidCheckpointError(f"{folder}: {MARKER} does not parse: {exc}") from None
        except FileNotFoundError:
            raise IncompleteCheckpointError(f"{folder}: {MARKER} vanished") from None
        except OSError as exc:
            raise CkptFileSystemError(f"{folder}: cannot read {MARKER}: {exc}") from None
        if not isinstance(found, dict):
            raise InvalidCheckpointError(f"{folder}: {MARKER} is not a JSON object")
        meta = found
    if "commit_timestamp_nsecs" in meta and meta["commit_timestamp_nsecs"] is None:
        if COMMIT not in files:  # written in place (the commit-file protocol) and cut short
            raise IncompleteCheckpointError(
                f"{folder}: incomplete Orbax checkpoint, never committed "
                f"(no commit time in {MARKER}, no {COMMIT})"
            )
    metrics = _metrics(backend, folder, meta, files)
    loss = next((v for k in _LOSS_KEYS if (v := _number(metrics.get(k))) is not None), None)
    custom = meta.get("custom_metadata")
    epoch = _number(metrics.get("epoch"))
    if epoch is None and isinstance(custom, dict):
        epoch = _number(custom.get("epoch"))
    committed = _number(meta.get("commit_timestamp_nsecs"))
    saved_at = committed / 1e9 if committed else (info.mtime if info is not None else None)
    return Reading(
        global_step=step or 0,
        epoch=math.floor(epoch) if epoch is not None and math.isfinite(epoch) else None,
        loss=loss,
        best_loss=None,
        rng_state=None,
        saved_at=saved_at,
        layout=NAME,
    )


def _metrics(
    backend: Backend, folder: Location, meta: dict[str, Any], files: Mapping[str, FileInfo]
) -> dict[str, Any]:
    """The metrics Orbax recorded: the `metrics` item (`metrics/metrics`, written when the
    manager has a `best_fn`), else those of `_CHECKPOINT_METADATA` (empty in 0.12)."""
    info = files.get(METRICS)
    if info is not None and info.size <= _MAX_MARKER:
        try:
            found = orjson.loads(backend.read_file(folder / METRICS, about=folder))
        except (orjson.JSONDecodeError, OSError):
            found = None
        if isinstance(found, dict) and found:
            return found
    recorded = meta.get("metrics")
    return recorded if isinstance(recorded, dict) else {}


class OrbaxLayout(FolderLayout):
    """Orbax step folders (its own best and keep policies live in the training process)."""

    name = NAME
    missing_signature = f"no Orbax {MARKER}"

    def signed(self, name: str, files: Mapping[str, FileInfo]) -> bool:
        return MARKER in files or COMMIT in files

    def read(
        self,
        backend: Backend,
        folder: Location,
        step: int | None,
        files: Mapping[str, FileInfo],
        context: object,
        whole: bool,
    ) -> Reading:
        return _read(backend, folder, step, files)

    def finish(self, found: list[Reading | CkptError | None], steps: list[int | None]) -> None:
        running_best(found, steps)


LAYOUT = OrbaxLayout()
