"""Megatron-LM's layout: `iter_<7 digits>/` folders and the tracker file
`latest_checkpointed_iteration.txt` (an iteration, or `release`) beside them.

- **Signature**: the torch_dist format's `.metadata`/`common.pt`/`metadata.json`, or the legacy
  format's `mp_rank_XX[_PPP]/model_optim_rng.pt`.
- **Complete** when it carries its own commit marker (torch_dist: DCP's `.metadata`, written
  after every rank, no `.metadata.tmp`, and then `metadata.json`, which rank 0 writes last and
  Megatron's loader recognises the format by), or when the tracker names it and its files
  are there (legacy: the tracker is written by rank 0 after a barrier, so it names only a
  finished save). A legacy folder the tracker does not name cannot be told complete:
  incomplete, kept.
- **Pointer**: the tracker, written with no temp file: a torn or unparsable one stops Megatron
  itself (`sys.exit`); here it is a warning, never a crash, and its target is always kept.
- **Record**: the step is the iteration; no epoch or loss outside the pickles.
"""

from __future__ import annotations

import re
from collections.abc import Container, Mapping, Sequence
from typing import TYPE_CHECKING

from ..core.errors import CkptError, IncompleteCheckpointError
from ..core.paths import Location
from .base import FolderLayout, Pointer, Reading, bare_reading

if TYPE_CHECKING:
    from ..storage.base import Backend
    from ..storage.listing import FileInfo

NAME = "megatron"
TRACKER = "latest_checkpointed_iteration.txt"
_LEGACY_RE = re.compile(r"mp_rank_[0-9]+(?:_[0-9]+)*/(?:model_optim_rng|distrib_optim)\.pt")
_DIST_FILES = (".metadata", "common.pt", "metadata.json", ".metadata.tmp")
_MAX_TRACKER = 4096


def _signed(files: Mapping[str, FileInfo]) -> bool:
    return any(n in files for n in _DIST_FILES) or any(_LEGACY_RE.fullmatch(n) for n in files)


def tracker_target(text: bytes) -> str | None:
    """The folder name a tracker's contents name, None when it does not parse (Megatron
    reads `int(...)` or the word `release`)."""
    try:
        value = text.decode("ascii").strip()
    except UnicodeDecodeError:
        return None
    if value == "release":
        return "release"
    if not value.isdigit():
        return None
    return f"iter_{int(value):07d}"


def _tracked(backend: Backend, run: Location) -> str | None:
    try:
        data = backend.read_file(run / TRACKER)
    except (OSError, CkptError):
        return None
    return tracker_target(data) if len(data) <= _MAX_TRACKER else None


def problem(name: str, files: Mapping[str, FileInfo], tracked: str | None) -> str | None:
    """Why an iteration folder is incomplete, else None."""
    if ".metadata.tmp" in files:
        return ".metadata.tmp is there: the commit of .metadata was interrupted"
    if ".metadata" in files:
        if "common.pt" in files and "metadata.json" not in files:
            # written last, by rank 0: Megatron's loader knows the format only by it
            return "no metadata.json (Megatron writes it after .metadata)"
        return None
    legacy = [n for n in files if _LEGACY_RE.fullmatch(n)]
    if not legacy:
        return "no .metadata (a torch_dist save in progress or a crash)"
    if name != tracked:
        return f"the legacy format has no commit marker and {TRACKER} does not name it"
    empty = sorted(n for n in legacy if files[n].size == 0)
    return f"{empty[0]} is empty" if empty else None


def _saved_at(files: Mapping[str, FileInfo]) -> float | None:
    times = [t for info in files.values() if (t := info.mtime) is not None]
    return max(times) if times else None


class MegatronLayout(FolderLayout):
    """Megatron-LM's `iter_<N>/` folders; the tracker is read once per listing."""

    name = NAME
    missing_signature = "no Megatron checkpoint files"

    def signed(self, name: str, files: Mapping[str, FileInfo]) -> bool:
        return _signed(files)

    def context(self, backend: Backend, run: Location) -> str | None:
        return _tracked(backend, run)

    def read(
        self,
        backend: Backend,
        folder: Location,
        step: int | None,
        files: Mapping[str, FileInfo],
        context: str | None,
        whole: bool,
    ) -> Reading:
        found = problem(folder.name, files, context)
        if found is not None:
            raise IncompleteCheckpointError(f"{folder}: incomplete Megatron checkpoint, {found}")
        return bare_reading(NAME, step, _saved_at(files))

    def pointers(
        self, backend: Backend, run: Location, files: Sequence[str], present: Container[str]
    ) -> list[Pointer]:
        label = "Megatron's tracker"
        source = run / TRACKER
        try:
            data = backend.read_file(source)
        except (OSError, CkptError) as exc:
            return [Pointer(TRACKER, label, None, f"{source}: cannot read {label}: {exc}")]
        target = tracker_target(data) if len(data) <= _MAX_TRACKER else None
        if target is None:
            shown = data[:40].decode("utf-8", "replace")
            return [Pointer(TRACKER, label, None, f"{source}: {label} does not parse ({shown!r})")]
        if target not in present:
            problem = f"{source}: {label} names {target}, which is not there: ignored"
            return [Pointer(TRACKER, label, None, problem)]
        return [Pointer(TRACKER, label, target)]


LAYOUT = MegatronLayout()
