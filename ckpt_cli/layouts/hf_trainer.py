"""The Hugging Face Trainer's layout (also TRL, axolotl, LLaMA-Factory): `checkpoint-<step>/`
with `trainer_state.json`, written last (no temp file, no fsync, no commit marker).

- **Signature**: `trainer_state.json` in the folder.
- **Complete** when it parses (Python's NaN and Infinity allowed), its `global_step` is the
  folder's step (else corrupt), and the per-rank `rng_state_<r>.pth` files have no gap (else
  incomplete: a rank died before writing its own).
- **Record**: global_step; epoch (the Trainer's float, kept as `epoch_exact`; the format's
  integer is the epochs completed); own loss (the eval loss logged at that step, else the
  training loss); best loss (the lowest own loss up to that step); saved at the mtime of
  trainer_state.json.
- **Protects** the checkpoint the Trainer names as best (`best_global_step`, or the folder
  name in `best_model_checkpoint`, which is relative to the training's working directory) in
  the newest complete checkpoint's state and in the run directory's own final one; a name that
  leads outside the run protects nothing.
- **Temporary**: `tmp-checkpoint-<step>/` (some 4.x releases wrote there first; the pattern
  is in the registry, `layouts.TEMPORARY`): never complete, removed once stale.

`list` reads each state's head and the end of its history since the checkpoint before it
(`hf_trainer_state.py`), so that a 4 MB history costs a few kB per checkpoint.
"""

from __future__ import annotations

import math
import re
from collections.abc import Container, Mapping, Sequence
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from ..core.errors import (
    CkptError,
    CkptFileSystemError,
    IncompleteCheckpointError,
    InvalidCheckpointError,
    NoCheckpointFolderError,
    NoSignatureError,
)
from ..core.format import Metadata
from ..core.paths import Location
from ..core.records import CHECKPOINT_RE, checkpoint_name
from .base import Pointer, Reading, entry_files
from .base import as_metadata as framework_metadata
from .hf_trainer_state import (
    STATE_NAME,
    TrainerState,
    continued,
    parse_state,
    split_head,
    tail_entries,
)

if TYPE_CHECKING:
    from ..storage.base import Backend
    from ..storage.listing import Entry, FileInfo

NAME = "hf-trainer"
_RNG_RE = re.compile(r"rng_state_([0-9]+)\.pth")
#: a state up to this size is read whole; a larger one by its head and the end of its history
_SMALL = 64 * 1024
_HEAD = 4 * 1024
_TAIL = 16 * 1024


def _rank_gap(files: Mapping[str, FileInfo]) -> str | None:
    ranks = {int(m.group(1)) for name in files if (m := _RNG_RE.fullmatch(name))}
    missing = sorted(set(range(max(ranks) + 1)) - ranks) if ranks else []
    if not missing:
        return None
    return ", ".join(f"rng_state_{r}.pth" for r in missing)


def _check(
    backend: Backend,
    folder: Location,
    step: int,
    state: TrainerState,
    files: Mapping[str, FileInfo],
    whole: bool,
) -> str | None:
    """Raise when the folder is corrupt or incomplete (`whole`: every check, for load);
    else a note for the listing (a nested DeepSpeed tag of another step), if any."""
    if state.global_step != step:
        raise InvalidCheckpointError(
            f"{folder}: folder name says step {step} but {STATE_NAME} says {state.global_step}"
        )
    gap = _rank_gap(files)
    if gap is not None:
        raise IncompleteCheckpointError(
            f"{folder}: incomplete Trainer checkpoint, {gap} missing (a rank did not finish)"
        )
    if "latest" not in files:
        return None
    from .deepspeed import nested_problem  # DeepSpeed nests its tag here (`global_step<N>/`)

    problem, note = nested_problem(backend, folder, step, files, whole)
    if problem is not None:
        raise IncompleteCheckpointError(f"{folder}: incomplete Trainer checkpoint, {problem}")
    return note


def _reading(state: TrainerState, saved_at: float | None, whole: bool) -> Reading:
    epoch = state.epoch
    return Reading(
        global_step=state.global_step,
        epoch=math.floor(epoch) if epoch is not None and math.isfinite(epoch) else None,
        loss=state.loss,
        best_loss=state.best_loss,
        rng_state=None,
        saved_at=saved_at,
        whole=whole,
        layout=NAME,
        epoch_exact=epoch,
        best_metric=state.best_metric,
        best_global_step=state.best_global_step,
        best_model_checkpoint=state.best_model_checkpoint,
        last_entry=state.last_entry,
    )


def _read_state(
    backend: Backend, folder: Location, info: FileInfo, previous: TrainerState | None
) -> tuple[TrainerState, bool]:
    """The state of one folder (whole, or continued from `previous`), and whether whole."""
    path = folder / STATE_NAME
    source = str(path)
    with backend.open_blob(path, info.size) as blob:
        if previous is None or blob.size <= _SMALL:
            return parse_state(blob.read_all(), source), True
        found = split_head(blob.read(0, min(_HEAD, blob.size)))
        if found is not None:
            head, start = found
            size = _TAIL
            while True:
                size = min(size, blob.size - start)
                parsed = tail_entries(blob.read(blob.size - size, blob.size))
                if parsed is None:
                    break
                entries, reached_start = parsed
                state = continued(head, entries, previous, source)
                if state is not None:
                    return state, False
                if reached_start or size >= blob.size - start:
                    break
                size *= 2
        return parse_state(blob.read_all(), source), True


class TrainerLayout:
    """The Hugging Face Trainer's `checkpoint-<step>/trainer_state.json`."""

    name = NAME

    def summaries(
        self, backend: Backend, run: Location, claimed: Sequence[tuple[Entry, int | None]]
    ) -> list[Reading | CkptError | None]:
        """In ascending step order, each state continued from the one before it."""
        order = sorted(range(len(claimed)), key=lambda i: claimed[i][1] or 0)
        out: list[Reading | CkptError | None] = [None] * len(claimed)
        previous: TrainerState | None = None
        for i in order:
            entry, named_step = claimed[i]
            step = named_step or 0
            folder = run / entry.name
            try:
                files = entry_files(backend, folder, entry)
                info = files.get(STATE_NAME)
                if info is None:
                    continue  # not the Trainer's (no signature)
                state, whole = _read_state(backend, folder, info, previous)
                note = _check(backend, folder, step, state, files, False)
            except FileNotFoundError:
                continue
            except CkptError as exc:
                out[i] = exc
                continue
            except OSError as exc:
                out[i] = CkptFileSystemError(f"{folder}: cannot read {STATE_NAME}: {exc}")
                continue
            previous = state
            reading = _reading(state, info.mtime, whole)
            reading.note = note
            out[i] = reading
        return out

    def load(self, backend: Backend, folder: Location) -> Metadata:
        """The state read whole and checked, as the metadata `load` and `latest` show."""
        files = backend.files(folder)
        if not files and backend.state(folder, follow=True) == "missing":
            raise NoCheckpointFolderError(f"{folder}: no such checkpoint folder")
        if STATE_NAME not in files:
            raise NoSignatureError(f"{folder}: no {STATE_NAME}")
        match = CHECKPOINT_RE.fullmatch(folder.name)
        try:
            data = backend.read_file(folder / STATE_NAME, about=folder)
        except FileNotFoundError:
            raise NoSignatureError(f"{folder}: no {STATE_NAME}") from None
        except OSError as exc:
            raise CkptFileSystemError(f"{folder}: cannot read {STATE_NAME}: {exc}") from None
        state = parse_state(data, str(folder / STATE_NAME))
        reading = _reading(state, files[STATE_NAME].mtime, True)
        if match is not None:
            reading.note = _check(backend, folder, int(match.group(1)), state, files, True)
        return as_metadata(reading)

    def pins(
        self, backend: Backend, run: Location, readings: Mapping[str, Reading], names: set[str]
    ) -> dict[str, str]:
        """The checkpoint the Trainer names as best, by the newest complete checkpoint's state
        and by the run directory's own final trainer_state.json."""
        mine = [(r.global_step, name, r) for name, r in readings.items() if r.layout == NAME]
        namers: list[Reading] = [max(mine)[2]] if mine else []
        if STATE_NAME in names:
            try:
                final = parse_state(backend.read_file(run / STATE_NAME), str(run / STATE_NAME))
                namers.append(_reading(final, None, True))
            except (CkptError, OSError):
                pass  # a final state that cannot be read protects nothing
        pinned = {}
        for reading in namers:
            best = named_best(run, reading, names)
            if best is not None:
                pinned[best] = "Trainer's best"
        return pinned

    def pointers(
        self, backend: Backend, run: Location, files: Sequence[str], present: Container[str]
    ) -> list[Pointer]:
        return []  # the Trainer's best is a pin (`pins`), not a pointer to resume from


def named_best(run: Location, reading: Reading, names: set[str]) -> str | None:
    """The folder of this run that a Trainer state names as its best, if any."""
    if reading.best_global_step is not None:
        name = checkpoint_name(reading.best_global_step)
        if name in names:
            return name
    written = reading.best_model_checkpoint
    if not written:
        return None
    path = PurePosixPath(written)
    if path.name not in names or CHECKPOINT_RE.fullmatch(path.name) is None:
        return None
    parent = str(path.parent)
    # relative to the training's working directory: the run directory is its parent's name
    # (`out/checkpoint-20` for a run in out/); absolute: the run directory itself
    if parent in (".", "") or (path.is_absolute() and parent == str(run)):
        return path.name
    if not path.is_absolute() and PurePosixPath(parent).name == run.name and ".." not in path.parts:
        return path.name
    return None


def as_metadata(reading: Reading) -> Metadata:
    """A Trainer checkpoint's values in the format's shape: the Trainer's own values go with
    it as extra keys."""
    return framework_metadata(
        reading,
        epoch_exact=reading.epoch_exact,
        best_metric=reading.best_metric,
        best_global_step=reading.best_global_step,
        best_model_checkpoint=reading.best_model_checkpoint,
    )


LAYOUT = TrainerLayout()
