"""The payload manifest: what files a checkpoint held when it was saved, and checking them now.

`save` records every file of the checkpoint folder but `metadata.json` (path relative to the
folder, size, sha256); `verify` recomputes it and reports each missing, changed or extra file.
Hashing is imported here and only here, so commands that don't hash never load it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import CkptError, InvalidCheckpointError, NotFoundError, VerifyError
from .format import ManifestEntry, leaves_folder
from .records import METADATA_NAME, display_name
from .storage import Location, ObjectPath, Target, local, location

_CHUNK = 1 << 20
#: called with the number of bytes just hashed, for progress bars
Progress = Callable[[int], None]


def _no_progress(_: int) -> None:
    return None


def iter_payload_files(folder: Path) -> Iterator[tuple[str, Path]]:
    """(relative POSIX path, path) of every regular file below `folder` but metadata.json and
    ckpt's own temp files, sorted; symlinks are neither followed nor listed."""
    found: list[tuple[str, Path]] = []
    stack = [folder]
    while stack:
        current = stack.pop()
        with os.scandir(current) as entries:
            for entry in entries:
                path = Path(entry.path)
                relative = path.relative_to(folder).as_posix()
                if entry.is_dir(follow_symlinks=False):
                    stack.append(path)
                elif entry.is_file(follow_symlinks=False):
                    if relative == METADATA_NAME or _is_ckpt_temp(entry.name):
                        continue
                    found.append((relative, path))
    found.sort()
    yield from found


def check_recordable_name(path: Path, name: str) -> None:
    """Refuse a file name that metadata.json (UTF-8 JSON) cannot record."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidCheckpointError(
            f"{display_name(str(path))}: the file name is not valid UTF-8, so the checkpoint's "
            "manifest cannot record it; rename the file"
        ) from None


def _is_ckpt_temp(name: str) -> bool:
    return name.startswith(".") and ".tmp-" in name


def sha256_file(path: Path, progress: Progress = _no_progress) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            progress(len(chunk))
    return digest.hexdigest()


def build_manifest(folder: Path, *, hashes: bool = True) -> list[ManifestEntry]:
    """The manifest of a checkpoint folder as it is now.

    Raises InvalidCheckpointError for a file name that is not UTF-8: JSON cannot hold it, and
    a manifest that skipped it would not describe the checkpoint.
    """
    entries = []
    for relative, path in iter_payload_files(folder):
        check_recordable_name(path, relative)
        size = path.stat().st_size
        digest = sha256_file(path) if hashes else None
        entries.append(ManifestEntry(relative, size, digest))
    return entries


@dataclass(frozen=True)
class ManifestProblem:
    """One way a checkpoint's files differ from its manifest."""

    path: str
    problem: str  # "missing", "replaced by a symlink", "size changed", "content changed", ...

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


def unsafe_path(relative: str) -> bool:
    """True when a manifest path would leave the checkpoint folder (absolute or with `..`)."""
    return leaves_folder(relative) or relative.startswith("\\")


def compare_manifest(
    manifest: list[ManifestEntry],
    size_of: Callable[[str], int | str],
    digest_of: Callable[[ManifestEntry], str],
    present: Iterable[str],
    progress: Progress,
) -> list[ManifestProblem]:
    """The problems of a checkpoint against its recorded manifest, on any medium.

    `size_of(path)` is the size of the file at a manifest path, or the problem that stands
    for it ("missing", ...); `digest_of(entry)` its sha256 (reporting its own progress);
    `present` the payload files there now (to find extra ones), read after the entries."""
    problems = []
    recorded = set()
    for entry in manifest:
        if unsafe_path(entry.path):
            problems.append(
                ManifestProblem(entry.path, "unsafe path (leaves the checkpoint folder)")
            )
            continue
        recorded.add(entry.path)
        size = size_of(entry.path)
        if isinstance(size, str):
            problem = size
        elif size != entry.size:
            problem = f"size changed ({entry.size} -> {size})"
        else:
            if entry.sha256 is not None and digest_of(entry) != entry.sha256:
                problems.append(ManifestProblem(entry.path, "content changed (sha256 differs)"))
            continue
        problems.append(ManifestProblem(entry.path, problem))
        progress(entry.size)  # the bytes that will not be hashed
    for relative in present:
        if relative not in recorded:
            problems.append(ManifestProblem(relative, "extra (not in the manifest)"))
    return problems


def check_manifest(
    folder: Path, manifest: list[ManifestEntry], progress: Progress = _no_progress
) -> list[ManifestProblem]:
    """Compare a folder with its recorded manifest; an empty list means it matches."""

    def size_of(relative: str) -> int | str:
        path = folder / relative
        if path.is_symlink():
            return "replaced by a symlink (not followed)"
        if not path.is_file():
            return "missing"
        return path.stat().st_size

    return compare_manifest(
        manifest,
        size_of,
        lambda entry: sha256_file(folder / entry.path, progress),
        (relative for relative, _ in iter_payload_files(folder)),
        progress,
    )


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

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_target(
    target: Target, progress: Progress = _no_progress
) -> tuple[bool, list[VerifyReport]]:
    """Verify a checkpoint folder (or its metadata.json), or every checkpoint of a run directory.

    Returns whether `target` was a single checkpoint, and one report per checkpoint.
    """
    from .records import step_from_name
    from .rundir import checkpoint_folder, read_metadata, scan

    where = location(target)
    if isinstance(where, ObjectPath):
        from . import remote

        return remote.verify_target(where, progress)
    folder = local(checkpoint_folder(where))
    single = (folder / METADATA_NAME).exists() or step_from_name(folder.name) is not None
    if single:
        folders = [folder]
    else:
        folders = [local(r.path) for r in scan(folder) if r.kind == "checkpoint"]
        if not folders:
            raise NotFoundError(f"{folder}: no checkpoint to verify")
    reports = []
    for current in folders:
        try:
            meta = read_metadata(current)
        except CkptError as exc:
            incomplete = isinstance(exc, InvalidCheckpointError) and not os.path.lexists(
                current / METADATA_NAME
            )
            status = "incomplete" if incomplete else "corrupt"
            step = step_from_name(current.name)
            reports.append(VerifyReport(current, [str(exc)], exc, step, status))
            continue
        problems = [] if meta.manifest is None else check_manifest(current, meta.manifest, progress)
        error = VerifyError(f"{current}: {problems[0]}") if problems else None
        reports.append(VerifyReport(current, [str(p) for p in problems], error, meta.global_step))
    return single, reports
