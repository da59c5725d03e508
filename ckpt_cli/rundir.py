"""Reading a run directory: its entries and their status, one checkpoint's metadata, the latest.

A run directory holds `checkpoint-<step>` folders; a folder is a checkpoint only if its
`metadata.json` is complete and valid (the commit marker). `scan` classifies every entry;
`find_latest` finds the highest valid step with one directory listing and, normally, a single
metadata read, skipping (with a warning) what is incomplete or corrupt.
"""

from __future__ import annotations

import errno
import glob
import os
import re
import stat
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from .errors import (
    CkptError,
    CkptFileSystemError,
    InvalidCheckpointError,
    NotFoundError,
    fs_error,
)
from .format import Metadata, decode_metadata, parse_timestamp
from .records import (
    MAX_U64,
    METADATA_NAME,
    STAGING_RE,
    TRASH_RE,
    CheckpointRecord,
    EntryKind,
    checkpoint_name,
    display_name,
    step_from_name,
)

Warn = Callable[[str], None]


def _ignore(_: str) -> None:
    return None


def checkpoint_folder(path: Path) -> Path:
    """The checkpoint folder a user named: the folder itself, or the folder of a metadata.json."""
    if path.name == METADATA_NAME and not path.is_dir():
        return path.parent
    return path


def read_metadata(folder: Path) -> Metadata:
    """Load and validate `folder/metadata.json`.

    Raises InvalidCheckpointError when the file is missing, not a file, or invalid, and
    CkptFileSystemError when the folder cannot be read at all.
    """
    meta_file = folder / METADATA_NAME
    try:
        data = _read_regular_file(meta_file)
    except FileNotFoundError:
        if not folder.exists():
            raise CkptFileSystemError(f"{folder}: no such checkpoint folder") from None
        if not folder.is_dir():
            raise CkptFileSystemError(f"{folder}: not a directory") from None
        if os.path.lexists(meta_file):
            raise InvalidCheckpointError(
                f"invalid metadata in {meta_file}: a symlink to nothing"
            ) from None
        raise InvalidCheckpointError(
            f"{folder}: incomplete checkpoint, no {METADATA_NAME} (a save in progress or a crash)"
        ) from None
    except IsADirectoryError:
        raise InvalidCheckpointError(
            f"invalid metadata in {meta_file}: it is a directory"
        ) from None
    except NotADirectoryError:
        raise CkptFileSystemError(f"{folder}: not a directory") from None
    except OSError as exc:
        raise fs_error(exc, meta_file, "cannot read metadata") from None
    if data is None:
        raise InvalidCheckpointError(
            f"invalid metadata in {meta_file}: not a regular file (a FIFO, a device or a socket)"
        )
    return decode_metadata(data, str(meta_file))


def _read_regular_file(path: Path) -> bytes | None:
    """The bytes of a regular file; None when `path` is something else that can be opened.

    A FIFO would block `latest` forever waiting for a writer and /dev/zero would fill the
    memory, so the file is opened without blocking and checked before it is read.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with open(fd, "rb") as handle:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        if not stat.S_ISREG(mode):
            return None
        return handle.read()


def list_names(run_dir: Path) -> list[str]:
    """The entry names of a run directory, with one clear error when it cannot be listed."""
    try:
        return os.listdir(run_dir)
    except FileNotFoundError:
        raise CkptFileSystemError(f"{run_dir}: no such run directory") from None
    except NotADirectoryError:
        raise CkptFileSystemError(f"{run_dir}: not a directory") from None
    except OSError as exc:
        raise fs_error(exc, run_dir, "cannot list run directory") from None


def _candidates(names: list[str]) -> list[tuple[int, str]]:
    """Checkpoint names with their steps, highest step first; canonical names before padded."""
    found = []
    for name in names:
        step = step_from_name(name)
        if step is not None:
            found.append((step, name))
    found.sort(key=lambda item: (-item[0], item[1] != checkpoint_name(item[0]), item[1]))
    return found


#: how many times find_latest lists the run directory again when a folder it listed is gone
_RELISTS = 10


class _Vanished(Exception):
    """A folder of the listing was deleted (by a concurrent prune) before it could be read."""


def find_latest(run_dir: Path, warn: Warn = _ignore) -> tuple[Path, Metadata]:
    """The valid checkpoint with the highest step, and its metadata.

    Orders by the step in the folder name and validates from the top down, so the cost is one
    listing plus a metadata read per skipped folder. Raises NotFoundError when none is valid.

    A folder that vanishes between the listing and its read was deleted by a prune that ran
    meanwhile, which may have followed a save of a higher step: the listing is stale, so it is
    taken again (rather than skip down, possibly to "nothing found" while checkpoints exist).
    """
    for attempt in range(_RELISTS + 1):
        warnings: list[str] = []
        try:
            found = _latest_in(run_dir, list_names(run_dir), warnings.append, attempt < _RELISTS)
        except _Vanished:
            continue  # what a stale listing warned about does not matter
        except NotFoundError:
            for message in warnings:
                warn(message)
            raise
        for message in warnings:
            warn(message)
        return found
    raise AssertionError("unreachable")  # pragma: no cover - the last attempt never relists


def _latest_in(run_dir: Path, names: list[str], warn: Warn, relist: bool) -> tuple[Path, Metadata]:
    for step, name in _candidates(names):
        folder = run_dir / name
        shown = display_name(name)
        if step > MAX_U64:
            warn(f"skipping {run_dir / shown}: step number past 2^64-1")
            continue
        if folder.is_symlink():
            warn(f"skipping {run_dir / shown}: a symlink (ckpt does not follow links)")
            continue
        try:
            meta = read_metadata(folder)
        except (InvalidCheckpointError, CkptFileSystemError) as exc:
            if relist and not os.path.lexists(folder):
                raise _Vanished from None
            warn(f"skipping {exc}")
            continue
        if meta.global_step != step:
            warn(f"{folder}: folder name says step {step} but metadata says {meta.global_step}")
        _warn_if_stale(run_dir, folder, step, names, warn)
        return folder, meta
    raise NotFoundError(f"{run_dir}: no valid checkpoint")


# A save commits by renaming into the run directory, which updates the directory's mtime; a
# directory that changed well after the latest checkpoint did is the cue to look for a newer
# save at a lower step. Only then does find_latest stat the other folders.
_MTIME_SLACK = 2.0


def _warn_if_stale(run_dir: Path, latest: Path, step: int, names: list[str], warn: Warn) -> None:
    try:
        latest_mtime = latest.stat().st_mtime
        if run_dir.stat().st_mtime <= latest_mtime + _MTIME_SLACK:
            return
    except OSError:
        return
    newest: tuple[float, Path] | None = None
    for other_step, name in _candidates(names):
        if other_step >= step:
            continue
        try:
            mtime = os.stat(run_dir / name / METADATA_NAME).st_mtime
        except OSError:
            continue
        if mtime > latest_mtime + _MTIME_SLACK and (newest is None or mtime > newest[0]):
            newest = (mtime, run_dir / name)
    if newest is not None:
        warn(
            f"{newest[1].name} was saved after {latest.name}, which has a higher step: "
            f"{latest.name} may be left over from an earlier run"
        )


_HIDDEN_KINDS: tuple[tuple[re.Pattern[str], EntryKind], ...] = (
    (STAGING_RE, "staging"),
    (TRASH_RE, "trash"),
)


def _classify(run_dir: Path, entry: os.DirEntry[str]) -> CheckpointRecord | None:
    """The record of one entry; None when it was deleted or renamed since the listing (a save
    or prune ran beside the scan): it is not there, and it was never broken."""
    name = entry.name
    path = run_dir / name
    try:
        info = entry.stat(follow_symlinks=False)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return CheckpointRecord(path, name, "other", "corrupt", error=str(exc))
    if stat.S_ISLNK(info.st_mode):
        return CheckpointRecord(path, name, "symlink", "valid", step=step_from_name(name))
    is_dir = stat.S_ISDIR(info.st_mode)
    for pattern, kind in _HIDDEN_KINDS:
        match = pattern.fullmatch(name)
        if match and is_dir:
            return CheckpointRecord(
                path, name, kind, "incomplete", step=int(match.group(1)), saved_at=info.st_mtime
            )
    step = step_from_name(name)
    if step is None or not is_dir:
        return CheckpointRecord(path, name, "other", "valid", step=step)
    if step > MAX_U64:
        return CheckpointRecord(
            path,
            name,
            "checkpoint",
            "corrupt",
            step=step,
            saved_at=info.st_mtime,
            error=f"{display_name(name)}: step number past 2^64-1",
        )
    try:
        meta = read_summary(path)
    except InvalidCheckpointError as exc:
        incomplete = not os.path.lexists(path / METADATA_NAME)
        return CheckpointRecord(
            path,
            name,
            "checkpoint",
            "incomplete" if incomplete else "corrupt",
            step=step,
            saved_at=info.st_mtime,
            error=None if incomplete else str(exc),
        )
    except CkptFileSystemError as exc:
        if not os.path.lexists(path):
            return None
        return CheckpointRecord(
            path, name, "checkpoint", "corrupt", step=step, saved_at=info.st_mtime, error=str(exc)
        )
    saved_at = info.st_mtime
    if meta.saved_at is not None:
        saved_at = parse_timestamp(meta.saved_at)
    mismatch = None
    if meta.global_step != step:
        mismatch = f"folder name says step {step} but metadata says {meta.global_step}"
    return CheckpointRecord(
        path,
        name,
        "checkpoint",
        "valid",
        step=step,
        epoch=meta.epoch,
        loss=meta.loss,
        best_loss=meta.best_loss,
        saved_at=saved_at,
        error=mismatch,
    )


def read_summary(folder: Path) -> Metadata:
    """The metadata that listings need (everything but, where it can be avoided, the optimizer
    state). Same validation and errors as `read_metadata`."""
    return read_metadata(folder)


def folder_size(path: Path) -> int:
    """Bytes of the regular files below a folder, links not followed."""
    total = 0
    stack = [path]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(Path(entry.path))
                        elif entry.is_file(follow_symlinks=False):
                            total += entry.stat(follow_symlinks=False).st_size
                    except OSError:
                        continue
        except OSError:
            continue
    return total


def scan(run_dir: Path, *, sizes: bool = False) -> list[CheckpointRecord]:
    """Every entry of a run directory, classified, in ascending step order (stepless last).

    The lock file and other hidden files that are not ckpt's are left out: they are not the
    user's checkpoints and never touched.
    """
    try:
        with os.scandir(run_dir) as entries:
            classified = [
                _classify(run_dir, entry)
                for entry in entries
                if not entry.name.startswith(".")
                or STAGING_RE.fullmatch(entry.name)
                or TRASH_RE.fullmatch(entry.name)
            ]
            records = [record for record in classified if record is not None]
    except FileNotFoundError:
        raise CkptFileSystemError(f"{run_dir}: no such run directory") from None
    except NotADirectoryError:
        raise CkptFileSystemError(f"{run_dir}: not a directory") from None
    except OSError as exc:
        raise fs_error(exc, run_dir, "cannot list run directory") from None
    if sizes:
        records = [_with_size(record) for record in records]
    records.sort(key=_order)
    return records


def _with_size(record: CheckpointRecord) -> CheckpointRecord:
    if record.kind not in ("checkpoint", "staging", "trash"):
        return record
    return replace(record, size=folder_size(record.path))


def _order(record: CheckpointRecord) -> tuple[bool, int, str]:
    return (record.step is None, record.step or 0, record.name)


def expand_run_dirs(
    patterns: Sequence[str], recursive: bool = False, warn: Warn = _ignore
) -> tuple[list[Path], list[CkptError]]:
    """Run directories named by paths and quoted shell globs (and, with `recursive`, every run
    directory below them), in order and without repeats; plus an error per glob that matched
    nothing. A plain path is passed through, so that a missing one fails where it is used."""
    targets: list[Path] = []
    failures: list[CkptError] = []
    for pattern in patterns:
        if glob.has_magic(pattern):
            matches = sorted(glob.glob(pattern))
            if not matches:
                failures.append(CkptFileSystemError(f"{pattern}: no run directory matches"))
            paths = [Path(m) for m in matches if Path(m).is_dir()]
        else:
            paths = [Path(pattern)]
        for path in paths:
            if recursive and path.is_dir():
                found = find_run_dirs(path)
                if not found:
                    warn(f"{path}: no run directory below it")
                targets.extend(found)
            else:
                targets.append(path)
    return list(dict.fromkeys(targets)), failures


def find_run_dirs(root: Path) -> list[Path]:
    """Directories under `root` that hold checkpoint folders; links are not followed, and
    neither checkpoint folders nor hidden folders are descended into."""
    found = []
    for current, dirs, _files in os.walk(root, followlinks=False):
        if any(step_from_name(d) is not None for d in dirs):
            found.append(Path(current))
        dirs[:] = sorted(d for d in dirs if step_from_name(d) is None and not d.startswith("."))
    return found
