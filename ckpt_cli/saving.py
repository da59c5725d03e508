"""Saving a checkpoint: the commit protocol of DESIGN.md, with `metadata.json` as the marker.

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from . import atomic
from .errors import (
    CkptFileSystemError,
    NotFoundError,
    UsageError,
    fs_error,
)
from .format import Metadata, check_metadata, encode_metadata, format_timestamp
from .locking import DEFAULT_LOCK_TIMEOUT, run_lock
from .pruning import PruneResult, prune_locked
from .records import METADATA_NAME, STAGING_RE, TRASH_RE, checkpoint_name
from .retention import RetentionPolicy
from .rundir import find_latest
from .storage import Location, ObjectPath, Target, location

#: progress callback: bytes just copied
Progress = Callable[[int], None]


def _no_progress(_: int) -> None:
    return None


def _check_payloads(
    payloads: Sequence[Path], run_dir: Path | None = None
) -> list[tuple[Path, str]]:
    """The payloads with the names they take in the checkpoint; refuses what cannot go in.
    `run_dir` is the local run directory, which no payload may hold (None for a URL)."""
    from .manifest import check_recordable_name

    placed: dict[str, Path] = {}
    for source in payloads:
        name = source.name
        if not name or name in (".", ".."):
            raise UsageError(f"{source}: not a file name that can go into a checkpoint")
        if name == METADATA_NAME or STAGING_RE.fullmatch(name) or TRASH_RE.fullmatch(name):
            raise UsageError(f"{source}: the name {name!r} is reserved by ckpt")
        if not source.exists():
            raise CkptFileSystemError(f"{source}: no such payload file")
        check_recordable_name(source, name)
        if not (source.is_file() or source.is_dir()):
            raise UsageError(f"{source}: not a regular file or a folder")
        if run_dir is not None and _holds(source, run_dir):
            raise UsageError(
                f"{source}: holds the run directory, and a checkpoint cannot contain itself"
            )
        if name in placed:
            raise UsageError(f"{source}: two payloads are both named {name!r}")
        placed[name] = source
    return [(source, name) for name, source in placed.items()]


def _holds(source: Path, run_dir: Path) -> bool:
    """Whether the run directory is `source` or lies below it (copying it would recurse)."""
    resolved, target = source.resolve(), run_dir.resolve()
    return resolved == target or resolved in target.parents


def _payload_bytes(source: Path) -> int:
    if source.is_dir():
        return sum(p.stat().st_size for p in source.rglob("*") if p.is_file())
    return source.stat().st_size


def _check_space(run_dir: Path, payloads: list[tuple[Path, str]], move: bool, extra: int) -> None:
    """Fail early, before writing anything, when the payload clearly cannot fit."""
    needed = extra
    device = run_dir.stat().st_dev
    for source, _ in payloads:
        if move and source.stat().st_dev == device:
            continue  # a hard link on the same file system takes no space
        needed += _payload_bytes(source)
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
    committed, by `_remove_sources`), so that a save killed before its commit never leaves the
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


def _remove_path(path: Path) -> None:
    """Remove a file, a link (never followed) or a folder with all it holds."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _remove_temps(folder: Path) -> None:
    """Remove what a killed save left in a folder it was writing into: its temp files and
    half-placed payloads. The run lock is held, so no live save owns them."""
    for name in os.listdir(folder):
        if _is_temp(name):
            _remove_path(folder / name)


def _fill(folder: Path, payloads: list[tuple[Path, str]], move: bool, progress: Progress) -> None:
    """Put the payloads into `folder`, replacing same-named entries.

    Each payload is placed under a temp name and renamed to its own, so that even a kill -9
    never leaves a half-copied file under a payload's name (a seal writes into the
    framework's folder, where nothing else would clean it up).
    """
    for source, name in payloads:
        dest = folder / name
        temp = folder / f".{name}.tmp-{atomic.token()}"
        _place(source, temp, move, progress)
        if os.path.lexists(dest):
            # never write into an existing file: it may be a hard link shared with the old
            # checkpoint that is being replaced
            _remove_path(dest)
        os.rename(temp, dest)


def _remove_sources(payloads: list[tuple[Path, str]]) -> None:
    """The second half of a move, once the checkpoint is committed: remove the originals.

    Best effort: a source that cannot be removed is left where it was, which loses nothing.
    """
    for source, _ in payloads:
        with contextlib.suppress(OSError):
            _remove_path(source)
        atomic.fault_point("save:source-removed")


def _write_metadata(folder: Path, meta: Metadata, hashes: bool) -> None:
    from .manifest import build_manifest

    meta.manifest = build_manifest(folder, hashes=hashes)
    meta.saved_at = format_timestamp(time.time())
    data = encode_metadata(meta, state_checked=True)
    atomic.fault_point("save:before-metadata")
    atomic.write_file_atomic(folder / METADATA_NAME, data, point="save:metadata")


def save_checkpoint(
    folder: Path,
    meta: Metadata,
    *,
    payloads: Sequence[Path] = (),
    move: bool = False,
    force: bool = False,
    hashes: bool = True,
    progress: Progress = _no_progress,
) -> str:
    """Commit `meta` (and payload files) as the checkpoint at `folder`.

    Returns what happened: "saved" (a new folder), "sealed" (an existing folder without
    metadata got its marker) or "replaced" (with force). The caller holds the run lock.
    """
    # check every value up front, so that bad values fail before anything touches the disk;
    # the optimizer state is encoded once, by _write_metadata
    check_metadata(meta)
    run_dir = folder.parent
    placed = _check_payloads(payloads, run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise CkptFileSystemError(f"{run_dir}: not a directory") from None
    except OSError as exc:
        raise fs_error(exc, run_dir, "cannot create run directory") from None
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
            _remove_sources(placed)
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
    placed: list[tuple[Path, str]],
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
    placed: list[tuple[Path, str]],
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
    placed: list[tuple[Path, str]],
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


@dataclass
class SaveRequest:
    """What `ckpt save` was asked to record; unset values come from the latest checkpoint."""

    step: int
    epoch: int | None = None
    loss: float | None = None
    best_loss: float | None = None
    rng_state: int | None = None
    optimizer_state: list[float] = field(default_factory=list)


@dataclass
class SaveResult:
    """What a save did: the checkpoint's folder, how ("saved", "sealed", "replaced"), the
    best_loss it recorded, and the prune that followed when keep rules were given."""

    path: Location
    outcome: str
    best_loss: float
    prune: PruneResult | None = None


def resolve_best_loss(
    run_dir: Location, loss: float | None, best: float | None, previous: Metadata | None
) -> float:
    """DESIGN.md's rule: --best-loss outright; --loss as a running minimum over the latest
    checkpoint's best_loss; neither: the latest's carried forward, or a usage error."""
    if best is not None:
        return best
    if loss is not None:
        return min(loss, previous.best_loss) if previous is not None else loss
    if previous is not None:
        return previous.best_loss
    raise UsageError(
        f"{run_dir}: no earlier checkpoint to take best_loss from; give --loss or --best-loss"
    )


def metadata_for(run_dir: Location, request: SaveRequest, previous: Metadata | None) -> Metadata:
    """The metadata a save records: the request, with the epoch taken from the latest
    checkpoint (else 0) when not given, and best_loss by `resolve_best_loss`."""
    epoch = request.epoch if request.epoch is not None else (previous.epoch if previous else 0)
    return Metadata(
        epoch=epoch,
        global_step=request.step,
        best_loss=resolve_best_loss(run_dir, request.loss, request.best_loss, previous),
        optimizer_state=request.optimizer_state,
        rng_state=request.rng_state,
        loss=request.loss,
    )


def save_to_run(
    run_dir: Target,
    request: SaveRequest,
    *,
    payloads: Sequence[Path] = (),
    move: bool = False,
    force: bool = False,
    hashes: bool = True,
    policy: RetentionPolicy | None = None,
    lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT,
    progress: Progress = _no_progress,
) -> SaveResult:
    """`ckpt save`: under the run lock, fill in from the latest checkpoint, commit, then prune
    by `policy` (after the commit, never before). A URL goes to `remote.save_to_run`."""
    where = location(run_dir)
    if isinstance(where, ObjectPath):
        from . import remote

        return remote.save_to_run(
            where,
            request,
            payloads=payloads,
            move=move,
            force=force,
            hashes=hashes,
            policy=policy,
            lock_timeout=lock_timeout,
            progress=progress,
        )
    run_dir = where
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise CkptFileSystemError(f"{run_dir}: not a directory") from None
    except OSError as exc:
        raise fs_error(exc, run_dir, "cannot create run directory") from None
    with run_lock(run_dir, lock_timeout):
        try:
            previous: Metadata | None = find_latest(run_dir)[1]
        except NotFoundError:
            previous = None
        meta = metadata_for(run_dir, request, previous)
        folder = run_dir / checkpoint_name(request.step)
        outcome = save_checkpoint(
            folder,
            meta,
            payloads=payloads,
            move=move,
            force=force,
            hashes=hashes,
            progress=progress,
        )
        pruned = prune_locked(run_dir, policy) if policy is not None else None
    return SaveResult(folder, outcome, meta.best_loss, pruned)
