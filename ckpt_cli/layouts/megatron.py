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

from ..core.errors import (
    CkptError,
    IncompleteCheckpointError,
    NoCheckpointFolderError,
    NoSignatureError,
)
from ..core.paths import Location
from .base import Pointer, Reading, as_metadata

if TYPE_CHECKING:
    from ..core.format import Metadata
    from ..storage.base import Backend
    from ..storage.listing import Entry, FileInfo

NAME = "megatron"
TRACKER = "latest_checkpointed_iteration.txt"
_LEGACY_RE = re.compile(r"mp_rank_[0-9]+(?:_[0-9]+)*/(?:model_optim_rng|distrib_optim)\.pt")
_DIST_FILES = (".metadata", "common.pt", "metadata.json", ".metadata.tmp")
_MAX_TRACKER = 4096


def _files(backend: Backend, folder: Location, entry: Entry | None) -> dict[str, FileInfo]:
    if entry is not None and entry.files is not None:
        return dict(entry.files)
    return backend.files(folder)


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


def _reading(step: int | None, files: Mapping[str, FileInfo]) -> Reading:
    times = [i.mtime for i in files.values() if i.mtime is not None]
    return Reading(
        global_step=step or 0,
        epoch=None,
        loss=None,
        best_loss=None,
        rng_state=None,
        saved_at=max(t for t in times if t is not None) if times else None,
        layout=NAME,
    )


class MegatronLayout:
    """Megatron-LM's `iter_<N>/` folders."""

    name = NAME

    def summaries(
        self, backend: Backend, run: Location, claimed: Sequence[tuple[Entry, int | None]]
    ) -> list[Reading | CkptError | None]:
        tracked = _tracked(backend, run)

        def one(item: tuple[Entry, int | None]) -> Reading | CkptError | None:
            entry, step = item
            folder = run / entry.name
            try:
                files = _files(backend, folder, entry)
            except CkptError as exc:
                return exc
            if not _signed(files):
                return None
            found = problem(entry.name, files, tracked)
            if found is not None:
                return IncompleteCheckpointError(
                    f"{folder}: incomplete Megatron checkpoint, {found}"
                )
            return _reading(step, files)

        return list(backend.map(one, claimed))

    def load(self, backend: Backend, folder: Location) -> Metadata:
        files = backend.files(folder)
        if not files and backend.state(folder, follow=True) == "missing":
            raise NoCheckpointFolderError(f"{folder}: no such checkpoint folder")
        if not _signed(files):
            raise NoSignatureError(f"{folder}: no Megatron checkpoint files")
        found = problem(folder.name, files, _tracked(backend, folder.parent))
        if found is not None:
            raise IncompleteCheckpointError(f"{folder}: incomplete Megatron checkpoint, {found}")
        match = re.fullmatch(r"iter_([0-9]+)", folder.name)
        return as_metadata(_reading(int(match.group(1)) if match else None, files))

    def pins(
        self, backend: Backend, run: Location, readings: Mapping[str, Reading], names: set[str]
    ) -> dict[str, str]:
        return {}

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
