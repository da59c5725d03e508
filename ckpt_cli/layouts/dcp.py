"""PyTorch Distributed Checkpoint's layout (`torch.distributed.checkpoint`), as TorchTitan
names it: `step-<N>/` folders (and DCP folders named as ckpt's, `checkpoint-<N>/`).

- **Signature**: `.metadata`, `.metadata.tmp`, rank-local `__<r>.metadata` or `__<r>_<n>.distcp`
  data files (for `step-<N>/` also the HF storage writer's `model.safetensors.index.json`).
- **Complete** when `.metadata` is there: the coordinator writes it last, after every rank's
  data, by temp file + fsync + rename. A `.metadata.tmp` beside it or alone is an interrupted
  commit (incomplete). Rank-local mode writes `__<r>.metadata` per rank and no global one:
  complete when those have no gap (a last rank that never wrote cannot be seen). `load` and
  `verify` also check that every data file that `.metadata` names is there.
- **Record**: the step is the folder's; DCP records no epoch or loss outside its pickles.
  Saved at `.metadata`'s mtime.
"""

from __future__ import annotations

import re
from collections.abc import Container, Mapping, Sequence
from typing import TYPE_CHECKING

from ..core.errors import (
    CkptError,
    CkptFileSystemError,
    IncompleteCheckpointError,
    InvalidCheckpointError,
    NoCheckpointFolderError,
    NoSignatureError,
)
from ..core.paths import Location
from .base import Pointer, Reading, as_metadata

if TYPE_CHECKING:
    from ..core.format import Metadata
    from ..storage.base import Backend
    from ..storage.listing import Entry, FileInfo

NAME = "dcp"
MARKER = ".metadata"
_TMP = ".metadata.tmp"
_RANK_META_RE = re.compile(r"__([0-9]+)\.metadata")
_DATA_RE = re.compile(r"__[0-9]+_[0-9]+\.distcp")
_DATA_NAMES_RE = re.compile(rb"__[0-9]+_[0-9]+\.distcp")
_HF_INDEX = "model.safetensors.index.json"


def _signed(name: str, files: Mapping[str, FileInfo]) -> bool:
    top = [n for n in files if "/" not in n]
    if any(n in (MARKER, _TMP) or _RANK_META_RE.fullmatch(n) or _DATA_RE.fullmatch(n) for n in top):
        return True
    return name.startswith("step-") and _HF_INDEX in files


def problem(name: str, files: Mapping[str, FileInfo]) -> str | None:
    """Why a DCP folder with these files is incomplete, else None."""
    if _TMP in files:
        return f"{_TMP} is there: the commit of .metadata was interrupted"
    if MARKER in files:
        return None
    ranks = {int(m.group(1)) for n in files if (m := _RANK_META_RE.fullmatch(n))}
    if ranks:
        missing = sorted(set(range(max(ranks) + 1)) - ranks)
        return f"__{missing[0]}.metadata missing (a rank did not finish)" if missing else None
    if name.startswith("step-") and _HF_INDEX in files:
        return None  # TorchTitan's last save in HF safetensors: the index is written last
    return "no .metadata (a save in progress or a crash)"


def _files(backend: Backend, folder: Location, entry: Entry | None) -> dict[str, FileInfo]:
    if entry is not None and entry.files is not None:
        return dict(entry.files)
    return backend.files(folder)


def _reading(step: int | None, files: Mapping[str, FileInfo]) -> Reading:
    marker = files.get(MARKER) or files.get(_HF_INDEX)
    return Reading(
        global_step=step or 0,
        epoch=None,
        loss=None,
        best_loss=None,
        rng_state=None,
        saved_at=marker.mtime if marker is not None else None,
        layout=NAME,
    )


def _step_of(name: str) -> int | None:
    match = re.fullmatch(r"(?:step-|checkpoint-)([0-9]+)", name)
    return int(match.group(1)) if match else None


class DcpLayout:
    """PyTorch DCP folders."""

    name = NAME

    def summaries(
        self, backend: Backend, run: Location, claimed: Sequence[tuple[Entry, int | None]]
    ) -> list[Reading | CkptError | None]:
        def one(item: tuple[Entry, int | None]) -> Reading | CkptError | None:
            entry, step = item
            folder = run / entry.name
            try:
                files = _files(backend, folder, entry)
            except CkptError as exc:
                return exc
            if not _signed(entry.name, files):
                return None
            found = problem(entry.name, files)
            if found is not None:
                return IncompleteCheckpointError(f"{folder}: incomplete DCP checkpoint, {found}")
            return _reading(step, files)

        return list(backend.map(one, claimed))

    def load(self, backend: Backend, folder: Location) -> Metadata:
        files = backend.files(folder)
        if not files and backend.state(folder, follow=True) == "missing":
            raise NoCheckpointFolderError(f"{folder}: no such checkpoint folder")
        if not _signed(folder.name, files):
            raise NoSignatureError(f"{folder}: no DCP .metadata")
        found = problem(folder.name, files)
        if found is not None:
            raise IncompleteCheckpointError(f"{folder}: incomplete DCP checkpoint, {found}")
        if MARKER in files:
            try:
                data = backend.read_file(folder / MARKER, about=folder)
            except OSError as exc:
                raise CkptFileSystemError(f"{folder}: cannot read {MARKER}: {exc}") from None
            # the data files it maps chunks to, by name (read from the pickle's bytes, never
            # unpickled); each must be there and not empty
            for name in sorted({n.decode() for n in _DATA_NAMES_RE.findall(data)}):
                info = files.get(name)
                if info is None or info.size == 0:
                    state = "missing" if info is None else "empty"
                    raise InvalidCheckpointError(f"{folder}: {name}, named by {MARKER}, is {state}")
        return as_metadata(_reading(_step_of(folder.name), files))

    def pins(
        self, backend: Backend, run: Location, readings: Mapping[str, Reading], names: set[str]
    ) -> dict[str, str]:
        return {}

    def pointers(
        self, backend: Backend, run: Location, files: Sequence[str], present: Container[str]
    ) -> list[Pointer]:
        return []


LAYOUT = DcpLayout()
