"""The object-store backend (s3:// and any fsspec URL): the same verbs without rename.

- **Listing.** `names` is one delimited listing of the run prefix (one request per 1,000
  checkpoints); `entries` one recursive listing, which tells every folder's objects, sizes and
  times at once, so `list` and `prune` need no request per folder to know what is there.
- **Reading** is one GET per file (s3fs's HEAD before a read is skipped); large files are read
  by ranges; `map` reads many files concurrently (32 at a time).
- **Commit and deletion** (`object_commit.py`): payload objects first and `metadata.json`
  last; a deletion condemns the folder with a tombstone, then removes the marker, then the rest.
- **Locking** is `object_lock.ObjectLock`: a lock object created by a conditional write.
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Literal, TypeVar

from ..core.errors import NoRunDirError
from ..core.format import Metadata
from ..core.namings import named_as_checkpoint
from ..core.paths import Location, ObjectPath
from ..core.retention import PlanEntry
from .base import ByteProgress, DeleteProgress, Guard
from .fsspec_support import translated
from .listing import Deletion, Entry, FileInfo, Payload
from .object_store import DELETING_MARK, READ_CONCURRENCY, Store, mtime_of

T = TypeVar("T")
R = TypeVar("R")


def remote(where: Location) -> ObjectPath:
    """A location that the caller has already dispatched as an object-store one."""
    if not isinstance(where, ObjectPath):
        raise TypeError(f"{where} is not an object-store location")
    return where


def _no_run(run: ObjectPath) -> NoRunDirError:
    return NoRunDirError(f"{run}: no such run directory (nothing under this prefix)")


class _ObjectBlob:
    def __init__(self, store: Store, path: ObjectPath, key: str, size: int) -> None:
        self._store, self._path, self._key, self.size = store, path, key, size

    def read(self, start: int, end: int) -> bytes:
        with translated(self._path, "cannot read"):
            return self._store.read(self._key, start, end)

    def read_all(self) -> bytes:
        with translated(self._path, "cannot read"):
            return self._store.read(self._key)


class ObjectStoreBackend:
    """Run directories under an fsspec URL prefix. One filesystem per protocol and process."""

    atomic_rename = False
    exact_listing = False
    links = False
    real_folders = False

    def __init__(self, where: ObjectPath) -> None:
        self.store = Store(where)

    # ---- reading ---------------------------------------------------------------------------

    def names(self, run: Location) -> list[str]:
        run = remote(run)
        with translated(run):
            names = self.store.children(run)
        if not names:
            raise _no_run(run)
        return names

    def entries(self, run: Location) -> list[Entry]:
        run = remote(run)
        with translated(run):
            objects = self.store.objects(run)
        if not objects:
            raise _no_run(run)
        return self.entries_of(run, objects)

    def entries_of(self, run: ObjectPath, objects: dict[str, dict[str, Any]]) -> list[Entry]:
        """The entries of a run prefix from a recursive listing of it."""
        root = self.store.key(run)
        groups: dict[str, dict[str, dict[str, Any]]] = {}
        for relative, info in objects.items():
            name, sep, rest = relative.partition("/")
            if name.startswith("."):
                continue  # the lock object and anything hidden: never a checkpoint, never touched
            groups.setdefault(name, {})[rest if sep else ""] = info
        found = []
        for name, group in groups.items():
            files = {
                rest: FileInfo(int(info.get("size") or 0), mtime_of(info))
                for rest, info in group.items()
                if rest
            }
            times = [t for info in group.values() if (t := mtime_of(info)) is not None]
            keys = tuple(f"{root}/{name}/{rest}" if rest else f"{root}/{name}" for rest in group)
            found.append(
                Entry(
                    name,
                    "file" if set(group) == {""} else "dir",
                    max(times) if times else None,
                    size=sum(int(info.get("size") or 0) for info in group.values()),
                    files=files,
                    condemned=DELETING_MARK in group,
                    keys=keys,
                )
            )
        return found

    def state(
        self, path: Location, follow: bool = False
    ) -> Literal["dir", "file", "link", "missing"]:
        path = remote(path)
        with translated(path):
            if self.store.children(path):
                return "dir"
            try:
                info = self.store.fs.info(self.store.key(path))
            except FileNotFoundError:
                return "missing"
        # an emptied prefix that a store still lists is nothing, on an object store
        return "missing" if info.get("type") == "directory" else "file"

    def read_file(self, path: Location, about: Location | None = None) -> bytes:
        path = remote(path)
        with translated(about or path):
            try:
                return self.store.read(self.store.key(path))
            except FileNotFoundError as exc:
                if "bucket" in str(exc).lower():
                    raise
        # outside `translated`, which would word it: the caller says what a missing file means
        raise FileNotFoundError(errno.ENOENT, "no such object", str(path))

    @contextmanager
    def _blob(self, path: ObjectPath, size: int | None) -> Iterator[_ObjectBlob]:
        key = self.store.key(path)
        known = size
        if known is None:
            with translated(path):
                try:
                    known = int(self.store.fs.size(key))
                except FileNotFoundError as exc:
                    if "bucket" in str(exc).lower():
                        raise
            if known is None:
                raise FileNotFoundError(errno.ENOENT, "no such object", str(path))
        yield _ObjectBlob(self.store, path, key, known)

    def open_blob(
        self, path: Location, size: int | None = None
    ) -> AbstractContextManager[_ObjectBlob]:
        return self._blob(remote(path), size)

    def link_target(self, path: Location) -> str | None:
        return None  # an object store has no links

    def files(self, folder: Location) -> dict[str, FileInfo]:
        folder = remote(folder)
        with translated(folder, "cannot list"):
            objects = self.store.objects(folder)
        return {
            relative: FileInfo(int(info.get("size") or 0), mtime_of(info))
            for relative, info in sorted(objects.items())
        }

    def folder_size(self, entry: Entry, path: Location) -> int:
        if entry.size is not None:
            return entry.size
        return sum(f.size for f in self.files(path).values())

    def sha256(self, path: Location, size: int, progress: ByteProgress) -> str:
        path = remote(path)
        with translated(path, "cannot read payload"):
            return self.store.sha256(self.store.key(path), size, progress)

    def saved_later(
        self,
        run: Location,
        latest: Location,
        lower: Callable[[], Sequence[str]],
        markers: Sequence[str],
    ) -> str | None:
        return None  # it would take a request per folder: not worth a warning

    def map(self, function: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        from concurrent.futures import ThreadPoolExecutor

        work = list(items)
        if len(work) <= 1:
            return map(function, work)
        with ThreadPoolExecutor(min(READ_CONCURRENCY, len(work))) as pool:
            return iter(list(pool.map(function, work)))

    # ---- run directories -------------------------------------------------------------------

    def glob(self, pattern: str) -> list[Location]:
        base = ObjectPath.parse(pattern)
        with translated(pattern, "cannot list"):
            found = self.store.fs.glob(self.store.key(base), detail=True)
        return sorted(
            ObjectPath(base.protocol, _as_written(base, str(name)))
            for name, info in found.items()
            if info.get("type") == "directory"
        )

    def run_dirs_below(self, root: Location) -> list[Location]:
        root = remote(root)
        with translated(root, "cannot list"):
            objects = self.store.objects(root)
        runs: set[str] = set()
        for relative in objects:
            parts = relative.split("/")
            prefix: list[str] = []
            for depth, part in enumerate(parts):
                if part.startswith("."):
                    break
                if named_as_checkpoint(part, "file" if depth == len(parts) - 1 else "dir"):
                    runs.add("/".join(prefix))
                    break
                prefix.append(part)
        return [root / run if run else root for run in sorted(runs)]

    def require_run(self, run: Location) -> None:
        # never create a lock object (or, on some stores, a bucket) where there is no run
        run = remote(run)
        with translated(run, "cannot list run directory"):
            if not self.store.children(run):
                raise _no_run(run)

    def create_run(self, run: Location) -> None:
        return None  # a prefix exists once something is written under it

    def local_run(self, run: Location) -> Path | None:
        return None

    # ---- writing ---------------------------------------------------------------------------

    def lock(
        self,
        run: Location,
        timeout: float | None,
        beside: bool = False,
        ttl: float | None = None,
    ) -> AbstractContextManager[Guard]:
        """The lock object `<run>/.ckpt.lock` (`beside` is for local folders: the frameworks
        that count every entry write to local disks); `ttl` (seconds without renewal after
        which it counts as abandoned) is the tests' to shorten."""
        from .object_lock import DEFAULT_TTL, object_lock

        run = remote(run)
        return object_lock(self.store.fs, run, self.store.key(run), timeout, ttl or DEFAULT_TTL)

    def commit(
        self,
        folder: Location,
        meta: Metadata,
        payloads: Sequence[Payload],
        *,
        move: bool,
        force: bool,
        hashes: bool,
        progress: ByteProgress,
        guard: Guard,
    ) -> str:
        from .object_commit import commit

        return commit(
            self.store, remote(folder), meta, payloads, move, force, hashes, progress, guard
        )

    def delete(
        self,
        run: Location,
        doomed: Sequence[tuple[PlanEntry, Entry | None]],
        progress: DeleteProgress,
        guard: Guard,
    ) -> Deletion:
        from .object_commit import delete

        return delete(self.store, remote(run), doomed, progress, guard)


def _as_written(base: ObjectPath, native: str) -> str:
    """A path that a listing returned, spelled as the user spelled the URL (fsspec-native
    paths of some filesystems, memory:// for one, start with a slash)."""
    return native.lstrip("/") if not base.path.startswith("/") else native
