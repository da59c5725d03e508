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
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..core.errors import CkptFileSystemError, IncompleteCheckpointError, InvalidCheckpointError
from ..core.paths import Location
from .base import FolderLayout, Reading, bare_reading

if TYPE_CHECKING:
    from ..storage.base import Backend
    from ..storage.listing import FileInfo

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


def _data_problem(backend: Backend, folder: Location, files: Mapping[str, FileInfo]) -> str | None:
    """Whether every data file that `.metadata` maps chunks to is there, not empty: the names
    are read from the pickle's bytes, never unpickled."""
    try:
        data = backend.read_file(folder / MARKER, about=folder)
    except OSError as exc:
        raise CkptFileSystemError(f"{folder}: cannot read {MARKER}: {exc}") from None
    for name in sorted({n.decode() for n in _DATA_NAMES_RE.findall(data)}):
        info = files.get(name)
        if info is None or info.size == 0:
            return f"{name}, named by {MARKER}, is {'missing' if info is None else 'empty'}"
    return None


class DcpLayout(FolderLayout):
    """PyTorch DCP folders. A listing checks the commit marker; `load` and `verify` also
    the data files it names."""

    name = NAME
    missing_signature = "no DCP .metadata"

    def signed(self, name: str, files: Mapping[str, FileInfo]) -> bool:
        return _signed(name, files)

    def read(
        self,
        backend: Backend,
        folder: Location,
        step: int | None,
        files: Mapping[str, FileInfo],
        context: object,
        whole: bool,
    ) -> Reading:
        found = problem(folder.name, files)
        if found is not None:
            raise IncompleteCheckpointError(f"{folder}: incomplete DCP checkpoint, {found}")
        if whole and MARKER in files:
            missing = _data_problem(backend, folder, files)
            if missing is not None:
                raise InvalidCheckpointError(f"{folder}: {missing}")
        marker = files.get(MARKER) or files.get(_HF_INDEX)
        return bare_reading(NAME, step, marker.mtime if marker is not None else None)


LAYOUT = DcpLayout()
