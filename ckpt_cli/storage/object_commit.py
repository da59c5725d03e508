"""The commit protocol on an object store, where there is no rename, and crash-safe deletion.

- **Commit without rename.** Every object appears whole or not at all, so the payload objects
  go first and `metadata.json` last: the marker appears only once the payload is complete.
  Killed at any instant, a save leaves either no marker (an *incomplete* checkpoint: `latest`
  skips it) or a whole one. A `--force` replace removes the old marker first, so the step is
  briefly incomplete (the previous checkpoint is then the latest), never mixed.
- **Deletion the other way round.** A checkpoint is first condemned by a tombstone object
  (`.ckpt-deleting`, the object-store form of the local rename aside), then its marker goes,
  then the rest: a half-deleted checkpoint is never valid, and the next prune finishes what a
  killed one condemned. The tombstones go last, in one bulk delete.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Sequence

from ..core.errors import CkptFileSystemError, UsageError
from ..core.format import ManifestEntry, Metadata, encode_metadata, format_timestamp
from ..core.paths import ObjectPath
from ..core.records import METADATA_NAME
from ..core.retention import PlanEntry
from . import atomic
from .base import ByteProgress, DeleteProgress, Guard
from .fsspec_support import translated
from .hashing import sha256_file
from .listing import Deletion, Entry, Payload
from .object_store import DELETING_MARK, Store
from .payloads import local_files, remove_sources


def _upload(
    store: Store,
    folder: ObjectPath,
    placed: Sequence[Payload],
    hashes: bool,
    progress: ByteProgress,
) -> dict[str, ManifestEntry]:
    root = store.key(folder)
    uploaded: dict[str, ManifestEntry] = {}
    for payload in placed:
        for relative, path in local_files(payload):
            size = path.stat().st_size
            digest = sha256_file(path) if hashes else None
            store.fs.put_file(os.fspath(path), f"{root}/{relative}")
            uploaded[relative] = ManifestEntry(relative, size, digest)
            progress(size)
            atomic.fault_point("remote:payload-uploaded")
    return uploaded


def commit(
    store: Store,
    folder: ObjectPath,
    meta: Metadata,
    placed: Sequence[Payload],
    move: bool,
    force: bool,
    hashes: bool,
    progress: ByteProgress,
    guard: Guard,
) -> str:
    """Commit `meta` (and payload files) as the checkpoint at `folder`: payload objects first,
    metadata.json last. Returns "saved", "sealed" or "replaced", as locally."""
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
            guard.check()
            # the old checkpoint stops being valid before any of its objects changes
            store.fs.rm_file(f"{root}/{METADATA_NAME}")
            del existing[METADATA_NAME]
            atomic.fault_point("remote:replace:after-unmark")
        uploaded = _upload(store, folder, placed, hashes, progress)
        replaced = {payload.name for payload in placed}
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
                digest = store.sha256(f"{root}/{relative}", size) if hashes else None
                entry = ManifestEntry(relative, size, digest)
            manifest.append(entry)
        meta.manifest = manifest
        meta.saved_at = format_timestamp(time.time())
        data = encode_metadata(meta)
        atomic.fault_point("remote:before-metadata")
        guard.check()
        store.fs.pipe_file(f"{root}/{METADATA_NAME}", data)
    if move:
        remove_sources(placed)
    return outcome


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


def _delete_one(
    store: Store, run: ObjectPath, entry: PlanEntry, listed: Entry | None, guard: Guard
) -> tuple[list[str], list[str]]:
    """Delete one entry's objects, condemning a checkpoint first and its marker next; returns
    its tombstone and directory keys (see `_folder_keys`), which go once the rest is gone."""
    name = entry.record.name
    keys = list(listed.keys) if listed is not None else []
    folder = f"{store.key(run)}/{name}"
    marker = [k for k in keys if k == f"{folder}/{METADATA_NAME}"]
    tombstone = f"{folder}/{DELETING_MARK}"
    guard.check()
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


def delete(
    store: Store,
    run: ObjectPath,
    doomed: Sequence[tuple[PlanEntry, Entry | None]],
    progress: DeleteProgress,
    guard: Guard,
) -> Deletion:
    """Delete each doomed entry (the caller holds the lock object)."""
    done = Deletion()
    tombstones: list[str] = []
    emptied: list[str] = []
    for entry, listed in doomed:
        try:
            with translated(entry.record.path, "cannot delete"):
                condemned, folders = _delete_one(store, run, entry, listed, guard)
        except CkptFileSystemError as exc:
            done.failed.append((entry, str(exc).split(": ", 1)[-1]))
            continue
        tombstones += condemned
        emptied += folders
        freed = listed.size if listed is not None else None
        done.deleted.append((entry, freed))
        progress(entry, freed)
    # tidiness only: a folder holding just its tombstone is finished by the next prune, and an
    # emptied directory is never taken for a checkpoint
    for keys in (tombstones, emptied):
        if keys:
            with contextlib.suppress(CkptFileSystemError), translated(run, "cannot delete"):
                store.remove(keys)
    return done
