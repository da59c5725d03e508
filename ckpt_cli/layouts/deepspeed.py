"""DeepSpeed's layout: `global_step<N>/` tags beside a `latest` file (`engine.save_checkpoint`),
also nested inside Trainer folders (`checkpoint-800/global_step800/`).

- **Signature**: a `*_model_states.pt` or `*_optim_states.pt` file in the tag folder.
- **Complete** when every rank's shards are there, whole: a model-states file, no gap in the
  model parallel (`mp_rank_XX`) and data parallel (`zero_pp_rank_D`) ranks, none empty (a
  power cut leaves 0-byte shards), each a whole torch archive (its zip end record is there),
  and an optimizer shard where ZeRO shards the optimizer. `load` and `verify` count the
  shards against what the model states record (`mp_world_size`, `dp_world_size`, the ZeRO
  stage of `ds_config`, read from the pickle's opcodes: a large model's pickle is long); a
  listing knows ZeRO by the `zero_to_fp32.py` that DeepSpeed copies beside the tags only then.
- **Record**: the step is the tag's; DeepSpeed records no epoch or loss outside its pickles.
  Saved at the newest shard's mtime.
- **Pointer**: `latest` names a tag; rank 0 writes it after its own shards only (before the
  other ranks finish), with no temp file. A hint: kept, never trusted (DESIGN.md).
- Nested in a Trainer folder, the Trainer layout asks `nested_problem` about its tag.
"""

from __future__ import annotations

import re
from collections.abc import Container, Mapping, Sequence
from typing import TYPE_CHECKING

from ..core.errors import CkptError, CkptFileSystemError, IncompleteCheckpointError
from ..core.namings import step_for
from ..core.paths import Location
from .base import FolderLayout, Pointer, Reading, bare_reading
from .torch_archive import archive_pickle, integer, is_whole, top_level

if TYPE_CHECKING:
    from ..storage.base import Backend
    from ..storage.listing import FileInfo

NAME = "deepspeed"
POINTER = "latest"
#: what DeepSpeed copies beside its tags, only when ZeRO (stage 1 and up) shards the optimizer
RECOVERY_SCRIPT = "zero_to_fp32.py"
_MODEL_RE = re.compile(r"(?:zero_pp_rank_([0-9]+)_)?mp_rank_([0-9]+)_model_states\.pt")
_OPTIM_RE = re.compile(r"(?:bf16_)?zero_pp_rank_([0-9]+)_mp_rank_([0-9]+)_optim_states\.pt")
#: a pointer file larger than this is no tag name
_MAX_POINTER = 4096


def _gap(ranks: set[int]) -> list[int]:
    return sorted(set(range(max(ranks) + 1)) - ranks) if ranks else []


def shards(files: Mapping[str, FileInfo]) -> list[str]:
    """The shard files of a tag folder (top level only)."""
    return [n for n in files if "/" not in n and (_MODEL_RE.fullmatch(n) or _OPTIM_RE.fullmatch(n))]


def world(
    backend: Backend, folder: Location, files: Mapping[str, FileInfo]
) -> tuple[int, int, int] | None:
    """(ZeRO stage, data parallel size, model parallel size) that the first model-states file
    records (its `ds_config`, `dp_world_size`, `mp_world_size`, read from the pickle's
    opcodes); None when it cannot be read (then a cut-short file)."""
    first = min((n for n in files if "/" not in n and _MODEL_RE.fullmatch(n)), default=None)
    if first is None:
        return None
    with backend.open_blob(folder / first, files[first].size) as blob:
        values = top_level(archive_pickle(blob))
    if values is None:
        return None
    config = values.get("ds_config")
    zero = config.get("zero_optimization") if isinstance(config, dict) else None
    stage = integer(zero.get("stage")) if isinstance(zero, dict) else 0
    dp = integer(values.get("dp_world_size")) or 1
    mp = integer(values.get("mp_world_size")) or 1
    return (stage or 0, dp, mp)


def problem(
    files: Mapping[str, FileInfo], recorded: tuple[int, int, int] | None = None
) -> str | None:
    """Why a tag folder with these files is incomplete, else None; `recorded` (from `world`)
    says how many shards there must be."""
    models = [m for n in files if "/" not in n and (m := _MODEL_RE.fullmatch(n))]
    optims = [m for n in files if "/" not in n and (m := _OPTIM_RE.fullmatch(n))]
    if not models:
        return "no *_model_states.pt (the save did not get that far)"
    mp = {int(m.group(2)) for m in models + optims}
    if _gap(mp):
        return f"model parallel rank {_gap(mp)[0]} has no shard"
    zero_models = {int(m.group(1)) for m in models if m.group(1) is not None}
    dp = {int(m.group(1)) for m in optims} | zero_models
    if _gap(dp):
        return f"data parallel rank {_gap(dp)[0]} has no shard"
    have = {(int(m.group(1)), int(m.group(2))) for m in optims}
    if optims and len(have) < len(dp) * len(mp):
        d, r = min((d, r) for d in dp for r in mp if (d, r) not in have)
        return f"no optimizer shard of data parallel rank {d}, model parallel rank {r}"
    if zero_models and len(zero_models) < len(dp):
        return f"no model shard of data parallel rank {min(dp - zero_models)}"
    empty = sorted(n for n in shards(files) if files[n].size == 0)
    if empty:
        return f"{empty[0]} is empty (a save cut short)"
    if recorded is not None:
        stage, dp_size, mp_size = recorded
        if len(mp) < mp_size:
            return f"model parallel rank {len(mp)} of {mp_size} has no shard"
        if stage >= 1 and len(have) < dp_size * mp_size:
            missing = dp_size * mp_size - len(have)
            return f"{missing} of {dp_size * mp_size} ZeRO optimizer shards missing"
    return None


def whole_problem(
    backend: Backend,
    folder: Location,
    files: Mapping[str, FileInfo],
    whole: bool,
    zero: bool,
) -> str | None:
    """Why a tag is incomplete: `problem`, then (`whole`: load, verify) with the world its
    model states record, else (a listing) with what the run says: DeepSpeed copies
    `zero_to_fp32.py` beside its tags only when ZeRO shards the optimizer (`zero`); then
    whether each shard is a whole torch archive."""
    found = problem(files)
    if found is not None:
        return found
    if whole:
        recorded = world(backend, folder, files)
        if recorded is None:
            return "its model states are cut short (no zip end record)"
        found = problem(files, recorded)
        if found is not None:
            return found
    elif zero and not any(_OPTIM_RE.fullmatch(n) for n in files):
        return f"no ZeRO optimizer shard (the run's {RECOVERY_SCRIPT} says ZeRO shards it)"
    for name in sorted(shards(files)):
        if not is_whole(backend, folder / name, files[name].size):
            return f"{name} is cut short (no zip end record)"
    return None


def read_pointer(backend: Backend, path: Location) -> str | None:
    """The tag a `latest` file names, or None when it names none (empty, not text)."""
    data = backend.read_file(path)
    if len(data) > _MAX_POINTER:
        return None
    try:
        tag = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        return None
    return tag or None


def _saved_at(files: Mapping[str, FileInfo]) -> float | None:
    times = [t for n in shards(files) if (t := files[n].mtime) is not None]
    return max(times) if times else None


def nested_problem(
    backend: Backend,
    folder: Location,
    step: int | None,
    files: Mapping[str, FileInfo],
    whole: bool,
) -> tuple[str | None, str | None]:
    """For a Trainer folder holding DeepSpeed's `latest` and tag: why its tag is incomplete
    (None when whole or absent), and a note when the tag's step is not the folder's
    (`checkpoint-800/global_step799`: DeepSpeed counts its own steps)."""
    if POINTER not in files:
        return None, None
    try:
        tag = read_pointer(backend, folder / POINTER)
    except OSError as exc:
        return f"cannot read DeepSpeed's latest: {exc}", None
    if tag is None or "/" in tag or tag in (".", ".."):
        return "DeepSpeed's latest names no tag folder", None
    inner = {n[len(tag) + 1 :]: info for n, info in files.items() if n.startswith(tag + "/")}
    if not inner:
        return f"DeepSpeed's latest names {tag}, which is not there", None
    try:
        found = whole_problem(backend, folder / tag, inner, whole, RECOVERY_SCRIPT in files)
    except OSError as exc:
        return f"cannot read DeepSpeed tag {tag}: {exc}", None
    if found is not None:
        return f"DeepSpeed tag {tag}: {found}", None
    tagged = step_for(NAME, tag)
    if tagged is not None and step is not None and tagged != step:
        return None, f"DeepSpeed tag {tag} in a folder of step {step} (its own step counter)"
    return None, None


class DeepSpeedLayout(FolderLayout):
    """DeepSpeed's `global_step<N>/` tags."""

    name = NAME
    missing_signature = "no DeepSpeed shard (*_model_states.pt)"

    def signed(self, name: str, files: Mapping[str, FileInfo]) -> bool:
        return bool(shards(files))

    def context(self, backend: Backend, run: Location) -> bool:
        return backend.state(run / RECOVERY_SCRIPT) == "file"

    def read(
        self,
        backend: Backend,
        folder: Location,
        step: int | None,
        files: Mapping[str, FileInfo],
        context: bool,
        whole: bool,
    ) -> Reading:
        try:
            found = whole_problem(backend, folder, files, whole, context)
        except OSError as exc:
            raise CkptFileSystemError(f"{folder}: cannot read a DeepSpeed shard: {exc}") from None
        if found is not None:
            raise IncompleteCheckpointError(f"{folder}: incomplete DeepSpeed tag, {found}")
        return bare_reading(NAME, step, _saved_at(files))

    def pointers(
        self, backend: Backend, run: Location, files: Sequence[str], present: Container[str]
    ) -> list[Pointer]:
        label = "DeepSpeed's latest"
        source = run / POINTER
        try:
            tag = read_pointer(backend, source)
        except (OSError, CkptError) as exc:
            return [Pointer(POINTER, label, None, f"{source}: cannot read {label}: {exc}")]
        if tag is None:
            return [Pointer(POINTER, label, None, f"{source}: {label} names no tag: ignored")]
        if "/" in tag or tag in (".", ".."):
            problem = f"{source}: {label} leads outside the run directory ({tag!r}): not followed"
            return [Pointer(POINTER, label, None, problem)]
        if tag not in present:
            problem = f"{source}: {label} names {tag}, which is not there: ignored"
            return [Pointer(POINTER, label, None, problem)]
        return [Pointer(POINTER, label, tag)]


LAYOUT = DeepSpeedLayout()
