"""Hugging Face Accelerate's layout (`Accelerator.save_state`): `checkpoints/checkpoint_<i>/`
with automatic naming, where `<i>` is a save counter (0, 1, 2, ...), not a step; the diffusers
training scripts name theirs `checkpoint-<global_step>/`.

- **Signature**: `random_states_<r>.pkl`, `optimizer*.bin` or `scheduler*.bin`.
- **Complete** when the files `save_state` writes are there: a model file (`model*.safetensors`,
  `pytorch_model*.bin` or FSDP's), and every rank's `random_states_<r>.pkl` with no gap (each
  rank writes its own, after the model, optimizer and scheduler), none empty. No marker, no
  temp folder: a last rank that never wrote, or a custom object registered for
  checkpointing whose file is missing, cannot be seen.
- **Record**: ordered by the counter and shown as one (`save_index`). The training step is
  recorded nowhere readable without unpickling: `step` in `random_states_0.pkl` (read from the
  pickle's opcodes, to check the file is whole) is the Accelerator's batch count within the
  epoch, not the training step, so `global_step` is null for such a folder.
- Accelerate's rotation counts every entry of `checkpoints/` and fails on a name without a
  digit: ckpt keeps its lock beside that folder (`ops/locks.py`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..core.errors import CkptFileSystemError, IncompleteCheckpointError, InvalidCheckpointError
from ..core.paths import Location
from .base import FolderLayout, Reading, bare_reading
from .torch_archive import file_pickle, integer, top_level

if TYPE_CHECKING:
    from ..storage.base import Backend
    from ..storage.listing import FileInfo

NAME = "accelerate"
_RANDOM_RE = re.compile(r"random_states_([0-9]+)\.pkl")
_SIGNATURE_RE = re.compile(
    r"random_states_[0-9]+\.pkl|optimizer(?:_[0-9]+)?\.bin|scheduler(?:_[0-9]+)?\.bin"
)
_MODEL_RE = re.compile(
    r"model(?:_[0-9]+)?\.safetensors|pytorch_model(?:_[0-9]+)?\.bin|pytorch_model_fsdp.*"
)
_COUNTER_RE = re.compile(r"checkpoint_([0-9]+)")


def problem(files: Mapping[str, FileInfo]) -> str | None:
    """Why a save_state folder with these files is incomplete, else None."""
    top = [n for n in files if "/" not in n]
    if not any(_MODEL_RE.fullmatch(n) for n in top) and not any(
        n.startswith("pytorch_model_fsdp") for n in files
    ):
        return "no model file (the save did not get that far)"
    ranks = {int(m.group(1)) for n in top if (m := _RANDOM_RE.fullmatch(n))}
    if not ranks:
        return "no random_states_0.pkl (written after the model and optimizer)"
    missing = sorted(set(range(max(ranks) + 1)) - ranks)
    if missing:
        return f"random_states_{missing[0]}.pkl missing (a rank did not finish)"
    empty = sorted(n for n in top if files[n].size == 0)
    return f"{empty[0]} is empty (a save cut short)" if empty else None


def _accelerator_step(
    backend: Backend, folder: Location, files: Mapping[str, FileInfo]
) -> int | None:
    """`step` in random_states_0.pkl (a torch.save archive), read without unpickling: the
    Accelerator's batch count within an epoch, not the training step. None when the file is
    no whole archive."""
    info = files.get("random_states_0.pkl")
    if info is None:
        return None
    with backend.open_blob(folder / "random_states_0.pkl", info.size) as blob:
        values = top_level(file_pickle(blob), frozenset(("step",)))
    return integer(values.get("step")) if values is not None else None


class AccelerateLayout(FolderLayout):
    """Accelerate's save_state folders."""

    name = NAME
    missing_signature = "no Accelerate random_states_0.pkl"

    def signed(self, name: str, files: Mapping[str, FileInfo]) -> bool:
        return any(_SIGNATURE_RE.fullmatch(n) for n in files)

    def read(
        self,
        backend: Backend,
        folder: Location,
        step: int | None,
        files: Mapping[str, FileInfo],
        context: object,
        whole: bool,
    ) -> Reading:
        found = problem(files)
        if found is not None:
            raise IncompleteCheckpointError(f"{folder}: incomplete Accelerate checkpoint, {found}")
        try:
            readable = _accelerator_step(backend, folder, files)
        except OSError as exc:
            raise CkptFileSystemError(f"{folder}: cannot read random_states_0.pkl: {exc}") from None
        if readable is None:
            raise InvalidCheckpointError(
                f"{folder}: random_states_0.pkl is no whole torch archive (a save cut short?)"
            )
        times = [t for n in files if _RANDOM_RE.fullmatch(n) and (t := files[n].mtime) is not None]
        reading = bare_reading(NAME, step, max(times) if times else None)
        # `checkpoint_<i>`: the step is a save counter, and the training step is recorded
        # nowhere that can be read without unpickling; `checkpoint-<step>` (diffusers'
        # scripts) says its step
        if _COUNTER_RE.fullmatch(folder.name):
            reading.save_index = step
        return reading


LAYOUT = AccelerateLayout()
