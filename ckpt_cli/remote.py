"""Checkpoints on object stores (s3:// and any fsspec URL): the same contract without rename.

The core's entry points (`rundir.find_latest/scan/read_metadata`, `saving.save_to_run`,
`pruning.prune_run_dir`, `manifest.verify_target`, `Checkpoint.*`) hand `ObjectPath`s here; the
pure pieces (format, records, retention, views) are shared with local folders.

- **Commit without rename.** An object store has no rename, but every object appears whole or
  not at all. `save` uploads the payload objects first and `metadata.json` last: the marker
  appears only once the payload is complete, so a reader never sees a checkpoint whose marker
  exists before its payload. Killed at any instant, a save leaves either no marker (an
  *incomplete* checkpoint: `latest` skips it, `prune` removes it once stale) or a whole one.
- **Deletion the other way round.** The marker goes first, then the rest: a half-deleted
  checkpoint is incomplete, never valid. A `--force` replace also removes the old marker first,
  so the step is briefly incomplete (the previous checkpoint is then the latest), never mixed.
- **Cost.** `latest` lists the run prefix once with a delimiter (one request per 1,000
  checkpoints) and reads metadata.json from the highest step down: normally 2 requests.
  `list`, `prune` and `verify` list the prefix once recursively (sizes, markers and ages all
  come from that listing) and read the metadata.json files concurrently. Object ages are the
  store's LastModified.
- **Locking** is `remote_lock.ObjectLock`: a lock object created by a conditional write.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob as globlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from . import atomic
from .errors import (
    CkptError,
    CkptFileSystemError,
    InvalidCheckpointError,
    NoRunDirError,
    NotFoundError,
    UsageError,
)
from .format import (
    ManifestEntry,
    Metadata,
    decode_metadata,
    encode_metadata,
    format_timestamp,
    parse_timestamp,
)
from .locking import DEFAULT_LOCK_TIMEOUT
from .manifest import ManifestProblem, VerifyReport, compare_manifest
from .pruning import PruneResult
from .records import (
    DELETING_MARK,
    MAX_U64,
    METADATA_NAME,
    CheckpointRecord,
    checkpoint_name,
    display_name,
    step_from_name,
)
from .remote_lock import DEFAULT_TTL, ObjectLock, object_lock
from .retention import PlanEntry, RetentionPlan, RetentionPolicy, plan_retention
from .saving import SaveRequest, SaveResult, metadata_for
from .saving import _check_payloads as check_payloads
from .saving import _remove_sources as remove_sources
from .storage import ObjectPath, filesystem, translated

Warn = Callable[[str], None]
Progress = Callable[[int], None]

#: concurrent requests when reading many small objects (metadata.json of every checkpoint)
_READ_CONCURRENCY = 32
_HASH_CHUNK = 8 << 20


def _ignore(_: object) -> None:
    return None


class Store:
    """One fsspec filesystem for one command, and the keys of locations on it."""

    def __init__(self, target: ObjectPath) -> None:
        self.fs = filesystem(target)
        self.protocol = target.protocol

    @property
    def read_options(self) -> dict[str, Any]:
        # s3fs asks for an object's size (a HEAD) before every read, to split big ones into
        # parallel ranges; a metadata.json is read whole, in one GET
        return {"max_concurrency": 1} if self.protocol in ("s3", "s3a") else {}

    def read(self, path: str) -> bytes:
        """One object's content."""
        return bytes(self.fs.cat_file(path, **self.read_options))

    def key(self, where: ObjectPath) -> str:
        return str(self.fs._strip_protocol(str(where))).rstrip("/")

    def children(self, run: ObjectPath) -> list[str]:
        """Names of the entries directly under `run` (one delimited, paginated listing);
        empty when nothing is there."""
        root = self.key(run)
        try:
            entries = self.fs.ls(root, detail=True)
        except FileNotFoundError as exc:
            if "bucket" in str(exc).lower():
                raise
            return []
        names = []
        for entry in entries:
            name = str(entry["name"]).rstrip("/")
            if name.startswith(root + "/"):
                names.append(name[len(root) + 1 :])
        return names

    def objects(self, where: ObjectPath) -> dict[str, dict[str, Any]]:
        """Every object below `where`, by path relative to it (one recursive listing)."""
        root = self.key(where)
        parent, sep, name = root.rpartition("/")
        if self.protocol in ("s3", "s3a") and sep and parent:
            # as a prefix of the parent: s3fs then lists once, and does not follow an empty
            # listing with a HEAD and another listing to see whether `root` is a file
            found = self.fs.find(parent, detail=True, prefix=f"{name}/")
        else:
            found = self.fs.find(root, detail=True)
        out = {}
        for name, info in found.items():
            name = str(name)
            if info.get("type") == "directory" or name.endswith("/"):
                continue
            if name.startswith(root + "/"):
                out[name[len(root) + 1 :]] = info
        return out

    def read_many(self, paths: Sequence[str]) -> list[bytes | BaseException]:
        """The content of each object (or the exception reading it raised), concurrently where
        the filesystem is asynchronous (s3fs), keys taken literally (no glob expansion)."""
        if not paths:
            return []
        if getattr(self.fs, "async_impl", False):
            from fsspec.asyn import sync  # type: ignore[import-untyped]

            return list(sync(self.fs.loop, _gather, self.fs, list(paths), self.read_options))
        out: list[bytes | BaseException] = []
        for path in paths:
            try:
                out.append(self.read(path))
            except Exception as exc:  # noqa: BLE001 - returned to the caller, as gather does
                out.append(exc)
        return out

    def remove(self, keys: Sequence[str]) -> None:
        """Delete objects (bulk deletes of up to 1,000 keys per request on S3)."""
        literal = [k for k in keys if not globlib.has_magic(k)]
        if literal:
            self.fs.rm(literal)
        for key in keys:
            if globlib.has_magic(key):
                self.fs.rm_file(key)


async def _gather(
    fs: Any, paths: list[str], options: dict[str, Any]
) -> list[bytes | BaseException]:
    limit = asyncio.Semaphore(_READ_CONCURRENCY)

    async def one(path: str) -> bytes:
        async with limit:
            return bytes(await fs._cat_file(path, **options))

    return list(await asyncio.gather(*(one(p) for p in paths), return_exceptions=True))


def _mtime(info: dict[str, Any]) -> float | None:
    for key in ("LastModified", "mtime", "last_modified", "created", "updated"):
        value = info.get(key)
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                return parse_timestamp(value)
    return None


def _no_run(run: ObjectPath) -> NoRunDirError:
    return NoRunDirError(f"{run}: no such run directory (nothing under this prefix)")


# ---- reading -------------------------------------------------------------------------------


def checkpoint_folder(path: ObjectPath) -> ObjectPath:
    """The checkpoint a user named: the folder itself, or the folder of a metadata.json."""
    return path.parent if path.name == METADATA_NAME else path


def _decode_marker(folder: ObjectPath, data: bytes | BaseException) -> Metadata:
    source = str(folder / METADATA_NAME)
    if isinstance(data, BaseException):
        with translated(source, "cannot read metadata"):
            raise data
    return decode_metadata(data, source)


def _incomplete(folder: ObjectPath) -> InvalidCheckpointError:
    return InvalidCheckpointError(
        f"{folder}: incomplete checkpoint, no {METADATA_NAME} (a save in progress or a crash)"
    )


def read_metadata(folder: ObjectPath, store: Store | None = None) -> Metadata:
    """Load and validate `folder/metadata.json` (one GET; one listing more when it is missing,
    to tell an incomplete checkpoint from a missing one)."""
    store = store or Store(folder)
    with translated(folder):
        try:
            data = store.read(store.key(folder / METADATA_NAME))
        except FileNotFoundError as exc:
            if "bucket" in str(exc).lower():
                raise
            if store.children(folder):
                raise _incomplete(folder) from None
            raise CkptFileSystemError(f"{folder}: no such checkpoint folder") from None
    return decode_metadata(data, str(folder / METADATA_NAME))


def _candidates(names: Sequence[str]) -> list[tuple[int, str]]:
    found = [(step, name) for name in names if (step := step_from_name(name)) is not None]
    found.sort(key=lambda item: (-item[0], item[1] != checkpoint_name(item[0]), item[1]))
    return found


def find_latest(
    run: ObjectPath, warn: Warn = _ignore, store: Store | None = None
) -> tuple[ObjectPath, Metadata]:
    """The valid checkpoint with the highest step: one delimited listing of the run prefix,
    then metadata.json from the highest step down (skipping, with a warning, what is
    incomplete or corrupt)."""
    store = store or Store(run)
    with translated(run):
        names = store.children(run)
    if not names:
        raise _no_run(run)
    for step, name in _candidates(names):
        folder = run / name
        if step > MAX_U64:
            warn(f"skipping {run / display_name(name)}: step number past 2^64-1")
            continue
        try:
            with translated(folder / METADATA_NAME, "cannot read metadata"):
                try:
                    data = store.read(store.key(folder / METADATA_NAME))
                except FileNotFoundError:
                    if not store.children(folder):
                        continue  # an emptied directory that some stores still list: nothing
                    raise _incomplete(folder) from None
            meta = decode_metadata(data, str(folder / METADATA_NAME))
        except (InvalidCheckpointError, CkptFileSystemError) as exc:
            warn(f"skipping {exc}")
            continue
        if meta.global_step != step:
            warn(f"{folder}: folder name says step {step} but metadata says {meta.global_step}")
        return folder, meta
    raise NotFoundError(f"{run}: no valid checkpoint")


@dataclass
class _Listing:
    """A run prefix as one recursive listing showed it: records, and each entry's keys."""

    records: list[CheckpointRecord]
    keys: dict[str, list[str]]
    markers: dict[str, Metadata]


def _scan(
    store: Store, run: ObjectPath, objects: dict[str, dict[str, Any]] | None = None
) -> _Listing:
    if objects is None:
        with translated(run):
            objects = store.objects(run)
    if not objects:
        raise _no_run(run)
    root = store.key(run)
    groups: dict[str, dict[str, dict[str, Any]]] = {}
    for relative, info in objects.items():
        name, sep, rest = relative.partition("/")
        if name.startswith("."):
            continue  # the lock object and anything hidden: never a checkpoint, never touched
        groups.setdefault(name, {})[rest if sep else ""] = info
    to_read = [
        name
        for name, group in groups.items()
        if METADATA_NAME in group and (step := step_from_name(name)) is not None and step <= MAX_U64
    ]
    contents = store.read_many([f"{root}/{name}/{METADATA_NAME}" for name in to_read])
    read = dict(zip(to_read, contents, strict=True))
    records, keys, markers = [], {}, {}
    for name, group in groups.items():
        keys[name] = [f"{root}/{name}/{rest}" if rest else f"{root}/{name}" for rest in group]
        record, meta = _classify(run, name, group, read.get(name))
        records.append(record)
        if meta is not None:
            markers[name] = meta
    records.sort(key=lambda r: (r.step is None, r.step or 0, r.name))
    return _Listing(records, keys, markers)


def _classify(
    run: ObjectPath,
    name: str,
    group: dict[str, dict[str, Any]],
    marker: bytes | BaseException | None,
) -> tuple[CheckpointRecord, Metadata | None]:
    path = run / name
    size = sum(int(info.get("size") or 0) for info in group.values())
    times = [t for info in group.values() if (t := _mtime(info)) is not None]
    newest = max(times) if times else None
    step = step_from_name(name)
    if step is None or set(group) == {""}:
        return CheckpointRecord(path, name, "other", "valid", step=step, size=size), None
    if DELETING_MARK in group:  # condemned by a prune that was interrupted
        record = CheckpointRecord(
            path, name, "trash", "incomplete", step=step, saved_at=newest, size=size
        )
        return record, None
    if step > MAX_U64:
        error = f"{display_name(name)}: step number past 2^64-1"
        record = CheckpointRecord(
            path, name, "checkpoint", "corrupt", step=step, saved_at=newest, size=size, error=error
        )
        return record, None
    if marker is None or (isinstance(marker, FileNotFoundError)):
        record = CheckpointRecord(
            path, name, "checkpoint", "incomplete", step=step, saved_at=newest, size=size
        )
        return record, None
    try:
        meta = _decode_marker(path, marker)
    except CkptError as exc:
        record = CheckpointRecord(
            path,
            name,
            "checkpoint",
            "corrupt",
            step=step,
            saved_at=newest,
            size=size,
            error=str(exc),
        )
        return record, None
    from .rundir import valid_record

    return valid_record(path, name, step, meta, _mtime(group[METADATA_NAME]), size), meta


def scan(run: ObjectPath, *, sizes: bool = False) -> list[CheckpointRecord]:
    """Every entry of a run prefix, classified, in ascending step order; sizes always come
    with the listing, so `sizes` costs nothing here."""
    return _scan(Store(run), run).records


# ---- saving --------------------------------------------------------------------------------


def _hash_object(store: Store, key: str, size: int) -> str:
    """sha256 of an object of known size (from the listing), in ranged GETs of 8 MB: no HEAD,
    no read-ahead, never the whole object in memory."""
    import hashlib

    digest = hashlib.sha256()
    for start in range(0, size, _HASH_CHUNK):
        end = min(start + _HASH_CHUNK, size)
        digest.update(store.fs.cat_file(key, start=start, end=end, **store.read_options))
    return digest.hexdigest()


def _local_files(source: Path, name: str) -> Iterator[tuple[str, Path]]:
    """(relative path in the checkpoint, local file) for a payload file or folder; links are
    neither followed nor uploaded, as locally they are not hashed."""
    if not source.is_dir():
        yield name, source
        return
    for current, dirs, files in os.walk(source, followlinks=False):
        dirs.sort()
        for file in sorted(files):
            path = Path(current) / file
            if path.is_file() and not path.is_symlink():
                yield f"{name}/{path.relative_to(source).as_posix()}", path


def _upload(
    store: Store,
    folder: ObjectPath,
    placed: list[tuple[Path, str]],
    hashes: bool,
    progress: Progress,
) -> dict[str, ManifestEntry]:
    from .manifest import sha256_file

    root = store.key(folder)
    uploaded: dict[str, ManifestEntry] = {}
    for source, name in placed:
        for relative, path in _local_files(source, name):
            size = path.stat().st_size
            digest = sha256_file(path) if hashes else None
            store.fs.put_file(os.fspath(path), f"{root}/{relative}")
            uploaded[relative] = ManifestEntry(relative, size, digest)
            progress(size)
            atomic.fault_point("remote:payload-uploaded")
    return uploaded


def save_checkpoint(
    folder: ObjectPath,
    meta: Metadata,
    *,
    payloads: Sequence[Path] = (),
    move: bool = False,
    force: bool = False,
    hashes: bool = True,
    progress: Progress = _ignore,
    store: Store | None = None,
    lock: ObjectLock | None = None,
) -> str:
    """Commit `meta` (and payload files) as the checkpoint at `folder`: payload objects first,
    metadata.json last. Returns "saved", "sealed" or "replaced", as locally."""
    encode_metadata(meta)
    placed = check_payloads(payloads)
    store = store or Store(folder)
    root = store.key(folder)
    with translated(folder, "cannot save checkpoint"):
        existing = store.objects(folder)
        if DELETING_MARK in existing:
            # what an interrupted prune condemned is finished first, never sealed or replaced
            store.remove(
                [f"{root}/{relative}" for relative in existing if relative != DELETING_MARK]
            )
            store.fs.rm_file(f"{root}/{DELETING_MARK}")
            existing = {}
        has_marker = METADATA_NAME in existing
        if has_marker and not force:
            raise UsageError(
                f"{folder}: a checkpoint already exists at this step (use --force to replace it)"
            )
        outcome = "replaced" if has_marker else "sealed" if existing else "saved"
        if has_marker:
            if lock is not None:
                lock.check()
            # the old checkpoint stops being valid before any of its objects changes
            store.fs.rm_file(f"{root}/{METADATA_NAME}")
            del existing[METADATA_NAME]
            atomic.fault_point("remote:replace:after-unmark")
        uploaded = _upload(store, folder, placed, hashes, progress)
        replaced = {name for _, name in placed}
        leftovers = [
            relative
            for relative in existing
            if relative.partition("/")[0] in replaced and relative not in uploaded
        ]
        if leftovers:  # a payload folder replaces the old one whole, as locally
            store.remove([f"{root}/{relative}" for relative in leftovers])
        manifest = []
        for relative in sorted({*existing, *uploaded} - set(leftovers)):
            if relative == METADATA_NAME or relative.endswith("/"):
                continue
            entry = uploaded.get(relative)
            if entry is None:
                size = int(existing[relative].get("size") or 0)
                digest = _hash_object(store, f"{root}/{relative}", size) if hashes else None
                entry = ManifestEntry(relative, size, digest)
            manifest.append(entry)
        meta.manifest = manifest
        meta.saved_at = format_timestamp(time.time())
        data = encode_metadata(meta)
        atomic.fault_point("remote:before-metadata")
        if lock is not None:
            lock.check()
        store.fs.pipe_file(f"{root}/{METADATA_NAME}", data)
    if move:
        remove_sources(placed)
    return outcome


@contextmanager
def run_lock(
    run: ObjectPath,
    timeout: float | None = DEFAULT_LOCK_TIMEOUT,
    *,
    store: Store | None = None,
    ttl: float = DEFAULT_TTL,
) -> Iterator[ObjectLock]:
    """Hold the run prefix's lock object (`<run>/.ckpt.lock`)."""
    store = store or Store(run)
    with object_lock(store.fs, run, store.key(run), timeout, ttl) as lock:
        yield lock


def save_to_run(
    run: ObjectPath,
    request: SaveRequest,
    *,
    payloads: Sequence[Path] = (),
    move: bool = False,
    force: bool = False,
    hashes: bool = True,
    policy: RetentionPolicy | None = None,
    lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT,
    progress: Progress = _ignore,
) -> SaveResult:
    """`ckpt save` on a run prefix: under the lock object, fill in from the latest checkpoint,
    commit, then prune by `policy`."""
    store = Store(run)
    check_payloads(payloads)  # before the lock: a typo in a file name costs no request
    with run_lock(run, lock_timeout, store=store) as lock:
        try:
            previous: Metadata | None = find_latest(run, store=store)[1]
        except (NotFoundError, NoRunDirError):  # the first save creates the run
            previous = None
        meta = metadata_for(run, request, previous)
        folder = run / checkpoint_name(request.step)
        outcome = save_checkpoint(
            folder,
            meta,
            payloads=payloads,
            move=move,
            force=force,
            hashes=hashes,
            progress=progress,
            store=store,
            lock=lock,
        )
        pruned = prune_locked(run, policy, store=store, lock=lock) if policy is not None else None
    return SaveResult(folder, outcome, meta.best_loss, pruned)


def save_locked(
    folder: ObjectPath,
    meta: Metadata,
    *,
    payloads: Sequence[Path] = (),
    move: bool = False,
    hashes: bool = True,
    lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT,
) -> None:
    """`Checkpoint.save` to a URL: replace-or-create under the run's lock object."""
    store = Store(folder)
    with run_lock(folder.parent, lock_timeout, store=store) as lock:
        save_checkpoint(
            folder,
            meta,
            payloads=payloads,
            move=move,
            force=True,
            hashes=hashes,
            store=store,
            lock=lock,
        )


# ---- pruning -------------------------------------------------------------------------------


def _folder_keys(keys: Sequence[str], folder: str) -> list[str]:
    """The "directories" of a folder's objects, deepest first. Stores backed by a file system
    (SeaweedFS's filer) keep an emptied directory and list it as a prefix until it is deleted
    by its name; on AWS S3 deleting a key that does not exist is a no-op."""
    dirs = {folder}
    for key in keys:
        head = key.rpartition("/")[0]
        while head.startswith(folder + "/"):
            dirs.add(head)
            head = head.rpartition("/")[0]
    return sorted(dirs, key=lambda d: (-d.count("/"), d))


def _delete(
    store: Store, run: ObjectPath, listing: _Listing, entry: PlanEntry, lock: ObjectLock | None
) -> tuple[list[str], list[str]]:
    """Delete one entry's objects, condemning a checkpoint first and its marker next; returns
    its tombstone and directory keys (see `_folder_keys`), which go once the rest is gone."""
    name = entry.record.name
    keys = listing.keys.get(name, [])
    folder = f"{store.key(run)}/{name}"
    marker = [k for k in keys if k == f"{folder}/{METADATA_NAME}"]
    tombstone = f"{folder}/{DELETING_MARK}"
    if lock is not None:
        lock.check()
    if entry.record.kind == "checkpoint":
        # Condemned first: a prune killed from here on leaves an interrupted deletion, which
        # the next prune finishes, rather than an incomplete folder that it must keep.
        store.fs.pipe_file(tombstone, b"")
        atomic.fault_point("remote:delete:after-tombstone")
    if marker:  # the marker next: from here on the checkpoint is incomplete, never valid
        store.fs.rm_file(marker[0])
        atomic.fault_point("remote:delete:after-marker")
    rest = [k for k in keys if k not in marker and k != tombstone]
    if rest:
        store.remove(rest)
    if entry.record.kind not in ("checkpoint", "trash"):
        return [], []
    # The tombstones go in one bulk delete at the end, before the emptied folders: should that
    # fail, a folder holds nothing but its tombstone, and the next prune finishes the job.
    return [tombstone], _folder_keys(keys, folder)


def prune_locked(
    run: ObjectPath,
    policy: RetentionPolicy,
    *,
    now: float | None = None,
    progress: Callable[[PlanEntry], None] = _ignore,
    store: Store | None = None,
    lock: ObjectLock | None = None,
) -> PruneResult:
    """Plan and delete; the caller holds the lock object."""
    store = store or Store(run)
    listing = _scan(store, run)
    plan = plan_retention(listing.records, policy, time.time() if now is None else now)
    result = PruneResult(run, plan, dry_run=False)
    tombstones: list[str] = []
    emptied: list[str] = []
    for entry in plan.entries:
        if entry.decision != "delete":
            continue
        try:
            with translated(entry.record.path, "cannot delete"):
                condemned, folders = _delete(store, run, listing, entry, lock)
        except CkptFileSystemError as exc:
            result.failed.append((entry, str(exc).split(": ", 1)[-1]))
            continue
        tombstones += condemned
        emptied += folders
        result.deleted.append(entry)
        progress(entry)
    # tidiness only: a folder holding just its tombstone is finished by the next prune, and an
    # emptied directory is never taken for a checkpoint
    for keys in (tombstones, emptied):
        if keys:
            with contextlib.suppress(CkptFileSystemError), translated(run, "cannot delete"):
                store.remove(keys)
    return result


def plan_run_dir(
    run: ObjectPath,
    policy: RetentionPolicy,
    *,
    now: float | None = None,
    store: Store | None = None,
) -> RetentionPlan:
    """The plan for a run prefix as it is now; touches nothing."""
    records = _scan(store or Store(run), run).records
    return plan_retention(records, policy, time.time() if now is None else now)


def prune_run_dir(
    run: ObjectPath,
    policy: RetentionPolicy,
    *,
    dry_run: bool = False,
    lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT,
    now: float | None = None,
    progress: Callable[[PlanEntry], None] = _ignore,
) -> PruneResult:
    """Plan and (unless `dry_run`) delete, holding the lock object throughout."""
    store = Store(run)
    if dry_run:
        plan = plan_run_dir(run, policy, now=now, store=store)
        result = PruneResult(run, plan, dry_run=True)
        result.deleted = [entry for entry in plan.entries if entry.decision == "delete"]
        return result
    # never create a lock object (or, on some stores, a bucket) where there is no run at all
    with translated(run, "cannot list run directory"):
        if not store.children(run):
            raise _no_run(run)
    with run_lock(run, lock_timeout, store=store) as lock:
        return prune_locked(run, policy, now=now, progress=progress, store=store, lock=lock)


# ---- verifying -----------------------------------------------------------------------------


def _check_manifest(
    store: Store,
    folder: ObjectPath,
    manifest: list[ManifestEntry],
    objects: dict[str, dict[str, Any]],
    progress: Progress,
) -> list[ManifestProblem]:
    root = store.key(folder)

    def size_of(relative: str) -> int | str:
        info = objects.get(relative)
        return "missing" if info is None else int(info.get("size") or 0)

    def digest_of(entry: ManifestEntry) -> str:
        with translated(folder / entry.path, "cannot read payload"):
            digest = _hash_object(store, f"{root}/{entry.path}", entry.size)
        progress(entry.size)
        return digest

    present = (relative for relative in sorted(objects) if relative != METADATA_NAME)
    return compare_manifest(manifest, size_of, digest_of, present, progress)


def verify_target(
    target: ObjectPath, progress: Progress = _ignore
) -> tuple[bool, list[VerifyReport]]:
    """Verify a checkpoint (or its metadata.json), or every checkpoint of a run prefix."""
    from .errors import VerifyError

    folder = checkpoint_folder(target)
    store = Store(folder)
    with translated(folder, "cannot list"):
        objects = store.objects(folder)
    single = step_from_name(folder.name) is not None or METADATA_NAME in objects
    markers: dict[str, Metadata] = {}  # what a scan of the run prefix has read already
    if single:
        if not objects:
            raise CkptFileSystemError(f"{folder}: no such checkpoint folder")
        checks: list[tuple[ObjectPath, dict[str, dict[str, Any]], CheckpointRecord | None]]
        checks = [(folder, objects, None)]
    else:
        listing = _scan(store, folder, objects)
        markers = listing.markers
        checks = []
        for record in listing.records:
            if record.kind != "checkpoint":
                continue
            prefix = f"{record.name}/"
            below = {k[len(prefix) :]: v for k, v in objects.items() if k.startswith(prefix)}
            assert isinstance(record.path, ObjectPath)
            checks.append((record.path, below, record))
        if not checks:
            raise NotFoundError(f"{folder}: no checkpoint to verify")
    reports = []
    for current, below, known in checks:
        try:
            if known is not None and known.status == "incomplete":
                raise _incomplete(current)
            if known is not None and known.status == "corrupt" and known.error:
                raise InvalidCheckpointError(known.error)
            meta = markers.get(known.name) if known is not None else None
            if meta is None:
                meta = read_metadata(current, store)
        except CkptError as exc:
            incomplete = isinstance(exc, InvalidCheckpointError) and METADATA_NAME not in below
            status = "incomplete" if incomplete else "corrupt"
            step = step_from_name(current.name)
            reports.append(VerifyReport(current, [str(exc)], exc, step, status))
            continue
        problems = (
            []
            if meta.manifest is None
            else _check_manifest(store, current, meta.manifest, below, progress)
        )
        error = VerifyError(f"{current}: {problems[0]}") if problems else None
        reports.append(VerifyReport(current, [str(p) for p in problems], error, meta.global_step))
    return single, reports


# ---- several run prefixes ------------------------------------------------------------------


def expand(pattern: str, recursive: bool, warn: Warn = _ignore) -> list[ObjectPath]:
    """Run prefixes named by a URL, a URL glob (`s3://bucket/runs/*/checkpoints`) and, with
    `recursive`, every run prefix below them. Raises CkptFileSystemError when a glob matches
    nothing."""
    base = ObjectPath.parse(pattern)
    if globlib.has_magic(base.path):
        store = Store(base)
        with translated(pattern, "cannot list"):
            found = store.fs.glob(store.key(base), detail=True)
        matches = sorted(
            ObjectPath(base.protocol, _as_written(base, str(name)))
            for name, info in found.items()
            if info.get("type") == "directory"
        )
        if not matches:
            raise CkptFileSystemError(f"{pattern}: no run directory matches")
    else:
        matches = [base]
    if not recursive:
        return matches
    out = []
    for root in matches:
        found_runs = find_run_dirs(root)
        if not found_runs:
            warn(f"{root}: no run directory below it")
        out.extend(found_runs)
    return out


def _as_written(base: ObjectPath, native: str) -> str:
    """A path that a listing returned, spelled as the user spelled the URL (fsspec-native
    paths of some filesystems, memory:// for one, start with a slash)."""
    return native.lstrip("/") if not base.path.startswith("/") else native


def find_run_dirs(root: ObjectPath) -> list[ObjectPath]:
    """Prefixes under `root` that hold checkpoint folders (one recursive listing); hidden and
    checkpoint folders are not descended into."""
    store = Store(root)
    with translated(root, "cannot list"):
        objects = store.objects(root)
    runs: set[str] = set()
    for relative in objects:
        parts = relative.split("/")[:-1]
        prefix: list[str] = []
        for part in parts:
            if part.startswith("."):
                break
            if step_from_name(part) is not None:
                runs.add("/".join(prefix))
                break
            prefix.append(part)
    return [root / run if run else root for run in sorted(runs)]
