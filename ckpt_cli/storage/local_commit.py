"""The commit protocol on a local disk: staging, `metadata.json` last, rename into place.

Three cases, chosen by what is at the target folder:
- nothing: build the checkpoint in a hidden staging folder in the same run directory (payload,
  then metadata.json by temp + fsync + rename), fsync it, rename it into place, fsync the run dir;
- a folder without metadata.json (a framework already wrote the weights): *seal* it, copying any
  given payload in first and writing metadata.json last;
- a checkpoint (valid or corrupt metadata.json): only with `force`; the new one is built in
  staging (unchanged files hard-linked from the old one) and swapped in atomically.
Killed at any instant, a save leaves either no `checkpoint-<step>` or a complete one, plus at
most a hidden staging or trash folder that prune clears once it is stale.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import stat
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from ..core.errors import CkptFileSystemError, UsageError, fs_error
from ..core.format import ManifestEntry, Metadata, encode_metadata, format_timestamp
from ..core.manifest import check_recordable_name
from ..core.records import METADATA_NAME
from . import atomic
from .base import ByteProgress
from .hashing import sha256_file
from .listing import Payload
from .payloads import remove_path, remove_sources

Progress = ByteProgress


def _payload_bytes(source: Path) -> int:
    if source.is_dir():
        return sum(p.stat().st_size for p in source.rglob("*") if p.is_file())
    return source.stat().st_size


def _check_space(run_dir: Path, payloads: Sequence[Payload], move: bool, extra: int) -> None:
    """Fail early, before writing anything, when the payload clearly cannot fit."""
    needed = extra
    device = run_dir.stat().st_dev
    for payload in payloads:
        if move and payload.source.stat().st_dev == device:
            continue  # a hard link on the same file system takes no space
        needed += _payload_bytes(payload.source)
    free = shutil.disk_usage(run_dir).free
    if needed > free:
        raise CkptFileSystemError(
            f"{run_dir}: not enough space: the checkpoint needs {needed} bytes, {free} are free"
        )


def _copy_file(source: Path, dest: Path, progress: Progress) -> None:
    # opened without blocking and checked: a FIFO in a payload folder would hang the save
    fd = os.open(source, os.O_RDONLY | os.O_NONBLOCK)
    with open(fd, "rb") as src:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UsageError(f"{source}: not a regular file or a folder")
        _copy_data(src, dest, progress)
    shutil.copystat(source, dest)
    atomic.fault_point("save:file-copied")


def _copy_data(src: BinaryIO, dest: Path, progress: Progress) -> None:
    with open(dest, "xb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
            progress(len(chunk))
        dst.flush()
        os.fsync(dst.fileno())


def _place(source: Path, dest: Path, move: bool, progress: Progress) -> None:
    """Put one payload (file or folder) at `dest`, which must not exist.

    A move hard-links where it can (the source is removed only once the checkpoint is
    committed, by `remove_sources`), so that a save killed before its commit never leaves the
    user's files inside a staging folder that prune later deletes; elsewhere it copies.
    """

    def copy_one(file_source: str, file_dest: str) -> None:
        if move:
            try:
                os.link(file_source, file_dest)
                atomic.fault_point("save:file-copied")
                return
            except OSError:
                pass  # another file system, or no hard links there: copy
        _copy_file(Path(file_source), Path(file_dest), progress)

    if source.is_dir():
        _copy_tree(source, dest, copy_one, keep_links=move)
    else:
        copy_one(os.fspath(source), os.fspath(dest))
    atomic.fault_point("save:payload-copied")


def _copy_tree(
    source: Path, dest: Path, copy_one: Callable[[str, str], None], *, keep_links: bool
) -> None:
    """shutil.copytree without its error batching: copytree goes on after a failed file and
    then raises one shutil.Error whose message is the word 'Error', so a full disk was
    reported as 'cannot save checkpoint: Error'. Here the first failure stops the copy and
    propagates as itself (ENOSPC, EFBIG, ...). Symlinks are followed, as copytree does,
    unless `keep_links` (a move keeps them as they are)."""
    os.mkdir(dest)
    with os.scandir(source) as listing:
        entries = sorted(listing, key=lambda entry: entry.name)
    for entry in entries:
        target = dest / entry.name
        if keep_links and entry.is_symlink():
            os.symlink(os.readlink(entry.path), target)
        elif entry.is_dir():
            _copy_tree(Path(entry.path), target, copy_one, keep_links=keep_links)
        else:
            copy_one(entry.path, os.fspath(target))
    shutil.copystat(source, dest)


def _link_or_copy(source: str, dest: str) -> None:
    try:
        os.link(source, dest)
    except OSError:
        shutil.copy2(source, dest)


#: the temp names ckpt writes in a checkpoint folder (atomic.write_file_atomic, _fill)
_TEMP_RE = re.compile(r"\..+\.tmp-[0-9a-f]{12}")


def _is_temp(name: str) -> bool:
    return _TEMP_RE.fullmatch(name) is not None


def _remove_temps(folder: Path) -> None:
    """Remove what a killed save left in a folder it was writing into: its temp files and
    half-placed payloads. The run lock is held, so no live save owns them."""
    for name in os.listdir(folder):
        if _is_temp(name):
            remove_path(folder / name)


def _fill(folder: Path, payloads: Sequence[Payload], move: bool, progress: Progress) -> None:
    """Put the payloads into `folder`, replacing same-named entries.

    Each payload is placed under a temp name and renamed to its own, so that even a kill -9
    never leaves a half-copied file under a payload's name (a seal writes into the
    framework's folder, where nothing else would clean it up).
    """
    for payload in payloads:
        dest = folder / payload.name
        temp = folder / f".{payload.name}.tmp-{atomic.token()}"
        _place(payload.source, temp, move, progress)
        if os.path.lexists(dest):
            # never write into an existing file: it may be a hard link shared with the old
            # checkpoint that is being replaced
            remove_path(dest)
        os.rename(temp, dest)


def _write_metadata(folder: Path, meta: Metadata, hashes: bool) -> None:
    meta.manifest = build_manifest(folder, hashes=hashes)
    meta.saved_at = format_timestamp(time.time())
    data = encode_metadata(meta, state_checked=True)
    atomic.fault_point("save:before-metadata")
    atomic.write_file_atomic(folder / METADATA_NAME, data, point="save:metadata")


def commit(
    folder: Path,
    meta: Metadata,
    placed: Sequence[Payload],
    move: bool,
    force: bool,
    hashes: bool,
    progress: Progress,
) -> str:
    """Commit `meta` (and payload files) as the checkpoint at `folder`.

    Returns what happened: "saved" (a new folder), "sealed" (an existing folder without
    metadata got its marker) or "replaced" (with force). The caller holds the run lock, has
    created the run directory and has checked the values (`check_metadata`) and payloads.
    """
    run_dir = folder.parent  # made by `LocalBackend.create_run`
    try:
        if folder.is_symlink():
            raise CkptFileSystemError(f"{folder}: is a symlink; ckpt does not write through links")
        if folder.exists() and not folder.is_dir():
            raise CkptFileSystemError(f"{folder}: exists and is not a directory")
        _check_space(run_dir, placed, move, extra=len(meta.optimizer_state) * 24 + 4096)
        if not folder.exists():
            _save_new(folder, meta, placed, move, hashes, progress)
            outcome = "saved"
        elif not os.path.lexists(folder / METADATA_NAME):
            _seal(folder, meta, placed, move, hashes, progress)
            outcome = "sealed"
        elif not force:
            raise UsageError(
                f"{folder}: a checkpoint already exists at this step (use --force to replace it)"
            )
        else:
            _replace(folder, meta, placed, move, hashes, progress)
            outcome = "replaced"
        atomic.fault_point("save:committed")
        if move:
            remove_sources(placed)
        return outcome
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise fs_error(exc, folder, "disk full while saving") from None
        raise fs_error(exc, None, "cannot save checkpoint") from None


def _new_staging(run_dir: Path, step: int) -> Path:
    staging = run_dir / f".checkpoint-{step}.staging-{atomic.token()}"
    os.mkdir(staging)
    return staging


def _save_new(
    folder: Path,
    meta: Metadata,
    placed: Sequence[Payload],
    move: bool,
    hashes: bool,
    progress: Progress,
) -> None:
    run_dir = folder.parent
    staging = _new_staging(run_dir, meta.global_step)
    try:
        atomic.fault_point("save:staging-created")
        _fill(staging, placed, move, progress)
        _write_metadata(staging, meta, hashes)
        atomic.fault_point("save:before-publish")
        os.rename(staging, folder)
    except BaseException:
        with contextlib.suppress(OSError):
            atomic.remove_tree(staging)
        raise
    atomic.fault_point("save:before-run-dir-fsync")
    atomic.fsync_dir(run_dir)


def _seal(
    folder: Path,
    meta: Metadata,
    placed: Sequence[Payload],
    move: bool,
    hashes: bool,
    progress: Progress,
) -> None:
    _remove_temps(folder)
    try:
        _fill(folder, placed, move, progress)
    except BaseException:
        with contextlib.suppress(OSError):
            _remove_temps(folder)
        raise
    _write_metadata(folder, meta, hashes)
    atomic.fault_point("seal:before-run-dir-fsync")
    atomic.fsync_dir(folder.parent)


def _replace(
    folder: Path,
    meta: Metadata,
    placed: Sequence[Payload],
    move: bool,
    hashes: bool,
    progress: Progress,
) -> None:
    run_dir = folder.parent
    staging = run_dir / f".checkpoint-{meta.global_step}.staging-{atomic.token()}"
    try:
        shutil.copytree(
            folder,
            staging,
            symlinks=True,
            copy_function=_link_or_copy,
            ignore=lambda _dir, names: [n for n in names if n == METADATA_NAME or _is_temp(n)],
        )
        atomic.fault_point("replace:staging-linked")
        _fill(staging, placed, move, progress)
        _write_metadata(staging, meta, hashes)
        atomic.fault_point("save:before-publish")
        if atomic.exchange(staging, folder):
            old = staging
            atomic.fault_point("replace:exchanged")
        else:  # no renameat2: a short window without the folder, never a half-made one
            old = atomic.trash_name(folder, meta.global_step)
            os.rename(folder, old)
            atomic.fault_point("replace:old-renamed-aside")
            os.rename(staging, folder)
    except BaseException:
        with contextlib.suppress(OSError):
            atomic.remove_tree(staging)
        raise
    atomic.fsync_dir(run_dir)
    atomic.fault_point("replace:before-delete-old")
    atomic.delete_folder(old, meta.global_step)


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


def _is_ckpt_temp(name: str) -> bool:
    return name.startswith(".") and ".tmp-" in name


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
