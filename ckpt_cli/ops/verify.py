"""Verifying: a checkpoint's metadata valid, and its files matching the manifest recorded at
save time (size, then sha256), written once over any storage backend."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .. import layouts
from ..core.errors import (
    CkptError,
    IncompleteCheckpointError,
    InvalidCheckpointError,
    NoSignatureError,
    NotFoundError,
    VerifyError,
)
from ..core.format import ManifestEntry
from ..core.manifest import ManifestProblem, compare_manifest
from ..core.namings import any_step, named_as_checkpoint, namings_of
from ..core.paths import Location, Target
from ..core.records import MAX_U64, METADATA_NAME, CheckpointRecord
from ..layouts.base import Reading
from ..layouts.ckpt import incomplete
from ..storage import backend_for
from ..storage.base import Backend
from ..storage.listing import FileInfo
from .load import folder_of
from .scan import scan_run

#: called with the number of bytes just hashed, for progress bars
Progress = Callable[[int], None]


def _no_progress(_: int) -> None:
    return None


@dataclass
class VerifyReport:
    """The verdict on one checkpoint: its problems (empty when it is whole) and, when it
    failed, the error that stands for them (exit 3 for data, 4 for the file system)."""

    path: Location
    problems: list[str]
    error: CkptError | None = None
    #: the checkpoint's step: its metadata's global_step, else the one its name says
    step: int | None = None
    #: valid / incomplete / corrupt: the state of its marker (`ok` judges the payload too)
    status: str = "valid"
    #: the layout that read it (None when none could)
    layout: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def _is_temp(name: str) -> bool:
    """ckpt's own temp files (a save in progress): not payload."""
    return name.rpartition("/")[2].startswith(".") and ".tmp-" in name


def check_files(
    backend: Backend,
    folder: Location,
    manifest: list[ManifestEntry],
    files: Mapping[str, FileInfo],
    progress: Progress = _no_progress,
) -> list[ManifestProblem]:
    """Compare what is below a folder now (`files`, from a listing) with its manifest."""

    def size_of(relative: str) -> int | str:
        info = files.get(relative)
        if info is None:
            return "missing"
        if info.kind == "link":
            return "replaced by a symlink (not followed)"
        return info.size

    def digest_of(entry: ManifestEntry) -> str:
        return backend.sha256(folder / entry.path, entry.size, progress)

    present = (
        relative
        for relative, info in files.items()
        if info.kind == "file" and relative != METADATA_NAME and not _is_temp(relative)
    )
    return compare_manifest(manifest, size_of, digest_of, present, progress)


def verify_target(
    target: Target, progress: Progress = _no_progress, layout: str | None = None
) -> tuple[bool, list[VerifyReport]]:
    """Verify a checkpoint folder (or its metadata.json), or every checkpoint of a run directory.

    Returns whether `target` was a single checkpoint, and one report per checkpoint. `layout`
    reads each by that layout alone.
    """
    backend, where = backend_for(target)
    folder = folder_of(backend, where)
    files: dict[str, FileInfo] | None = None
    if named_as_checkpoint(folder.name):
        single = True
    elif namings_of(folder.name, "dir"):  # a bare number (Orbax's): its signature decides
        single = _signed(backend, folder, layout)
    elif backend.real_folders:
        single = backend.state(folder / METADATA_NAME, follow=True) != "missing"
    else:  # an object store: one listing says it, and serves the check below
        files = backend.files(folder)
        single = METADATA_NAME in files
    if single:
        return True, [_verify_one(backend, folder, files, None, None, progress, layout)]
    listing = scan_run(backend, folder, layout=layout)
    reports = [
        _verify_one(
            backend,
            r.path,
            listing.entries[r.name].files,
            r,
            listing.readings.get(r.name),
            progress,
            layout,
        )
        for r in listing.records
        if r.kind == "checkpoint"
    ]
    if not reports:
        raise NotFoundError(f"{folder}: no checkpoint to verify")
    return False, reports


def _signed(backend: Backend, folder: Location, layout: str | None) -> bool:
    try:
        layouts.load(backend, folder, layout)
    except NoSignatureError:
        return False
    except CkptError:
        return True
    return True


def _verify_one(
    backend: Backend,
    folder: Location,
    files: Mapping[str, FileInfo] | None,
    record: CheckpointRecord | None,
    found: Reading | None,
    progress: Progress,
    layout: str | None,
) -> VerifyReport:
    step = record.step if record is not None else any_step(folder.name)
    try:
        if record is not None and record.status == "incomplete":
            # the layout's own words where one said why (a DeepSpeed shard missing, ...)
            raise IncompleteCheckpointError(record.error) if record.error else incomplete(folder)
        if record is not None and (record.step or 0) > MAX_U64 and record.error:
            raise InvalidCheckpointError(record.error)
        # a corrupt one is read again, for the error of its own kind (data or file system)
        # what the scan read whole and validated need not be read again
        known = found.metadata if found is not None and found.whole else None
        meta = known if known is not None else layouts.load(backend, folder, layout)
    except CkptError as exc:
        status = "incomplete" if isinstance(exc, IncompleteCheckpointError) else "corrupt"
        return VerifyReport(folder, [str(exc)], exc, step, status)
    problems: list[ManifestProblem] = []
    if meta.manifest is not None:
        listed = files if files is not None else backend.files(folder)
        problems = check_files(backend, folder, meta.manifest, listed, progress)
    error = VerifyError(f"{folder}: {problems[0]}") if problems else None
    layout = str(meta.extra.get("layout", "ckpt"))
    return VerifyReport(
        folder, [str(p) for p in problems], error, meta.global_step, "valid", layout
    )
