"""The storage interface: the small verbs every operation of ckpt is written against.

A `Backend` is where the bytes of one run directory live (restic's `Backend`, Orbax's two
`TemporaryPath` strategies). The operations in `ckpt_cli.ops` never ask which one they have:
they list, read, commit, delete and lock through these verbs, and the backend does each by its
own protocol (rename and fsync on a local disk; payload first, marker last on an object store).
Two implementations: `storage.local.LocalBackend` and `storage.objects.ObjectStoreBackend`.
What the verbs return (entries of a listing, file sizes, payloads) is plain data, in
`listing.py`.

A new backend (sftp, a mounted bucket with its own rules, ...) implements `Backend`, and
`storage.backend_for` learns to pick it from a path or URL; nothing else changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol, TypeVar

if TYPE_CHECKING:  # for the types only: `ckpt latest` loads none of these
    from ..core.format import Metadata
    from ..core.paths import Location
    from ..core.retention import PlanEntry
    from .listing import Deletion, Entry, FileInfo, Payload

T = TypeVar("T")
R = TypeVar("R")

#: progress callbacks: bytes just copied or hashed; a plan entry just deleted, with the bytes
#: it freed where known
ByteProgress = Callable[[int], None]
DeleteProgress = Callable[["PlanEntry", "int | None"], None]


class NotRegularFile(OSError):
    """A path that exists but is a FIFO, a device or a socket: never read (a FIFO would hang)."""


class DanglingLink(FileNotFoundError):
    """A file that is a symlink to nothing (only a local disk has links)."""


class Blob(Protocol):
    """A file open for reading by ranges: a large metadata.json is read by its two ends."""

    size: int

    def read(self, start: int, end: int) -> bytes:
        """Bytes `start` to `end` (exclusive)."""

    def read_all(self) -> bytes:
        """The whole file."""


class Guard(Protocol):
    """A held run lock. `check()` raises LockTimeoutError when it was lost (an object store's
    lock can be taken over from a holder that stalled); a local lock is never lost."""

    def check(self) -> None: ...


class Backend(Protocol):
    """The verbs. Paths are `Location`s of this backend's kind; errors are ckpt's own
    (`CkptFileSystemError` and friends), except where a verb says it raises an OSError."""

    #: whether a folder can be renamed atomically (local disks: staging, then rename)
    atomic_rename: bool
    #: whether a listing names only what is there (a local directory); an object store may
    #: list a prefix that was just emptied, so a folder missing on read is skipped, not relisted
    exact_listing: bool
    #: whether an entry can be a symlink (never followed by latest, never deleted through)
    links: bool
    #: whether a folder exists by itself (a file system), not only as the prefix of objects
    real_folders: bool

    # ---- reading ---------------------------------------------------------------------------

    def names(self, run: Location) -> list[str]:
        """The entry names of a run directory: one listing, nothing more (`latest`).
        Raises NoRunDirError when there is no such run directory."""

    def entries(self, run: Location) -> list[Entry]:
        """Every entry of a run directory but hidden ones that are not ckpt's own leftovers
        (the lock): one listing (`list`, `prune`, `verify`). Raises NoRunDirError."""

    def state(
        self, path: Location, follow: bool = False
    ) -> Literal["dir", "file", "link", "missing"]:
        """What is at `path` now (a link is followed only with `follow`)."""

    def read_file(self, path: Location, about: Location | None = None) -> bytes:
        """The bytes of a regular file. Raises FileNotFoundError, IsADirectoryError,
        NotADirectoryError, NotRegularFile or another OSError, for the caller to word; a
        failure of the store itself (access, connection) is a CkptFileSystemError naming
        `about` (default: `path`)."""

    def open_blob(self, path: Location, size: int | None = None) -> AbstractContextManager[Blob]:
        """A regular file open for range reads (`size` from a listing saves asking for it).
        Raises as `read_file` does."""

    def link_target(self, path: Location) -> str | None:
        """What a symlink says (never followed), None when `path` is no symlink."""

    def files(self, folder: Location) -> dict[str, FileInfo]:
        """Every file below a folder by relative POSIX path (links listed, not followed);
        empty when there is no such folder."""

    def folder_size(self, entry: Entry, path: Location) -> int:
        """Bytes of the regular files below a folder (free when the listing told them)."""

    def sha256(self, path: Location, size: int, progress: ByteProgress) -> str:
        """The sha256 of a file, read in chunks, reporting progress."""

    def saved_later(
        self,
        run: Location,
        latest: Location,
        lower: Callable[[], Sequence[str]],
        markers: Sequence[str],
    ) -> str | None:
        """The name among `lower()` (the folders below the latest step) whose marker (the
        first of `markers` that it holds) was written well after `latest`'s, if any: a run
        restarted from a lower step. `lower` is called only when a cheap check says it is
        worth it; a backend that cannot tell cheaply returns None."""

    def map(self, function: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        """`map`, concurrently where requests are slow (an object store), in order."""

    # ---- run directories -------------------------------------------------------------------

    def glob(self, pattern: str) -> list[Location]:
        """The directories a shell-style glob matches, sorted."""

    def run_dirs_below(self, root: Location) -> list[Location]:
        """Directories under `root` that hold checkpoint folders (not descending into them,
        nor into hidden folders, nor through links)."""

    def require_run(self, run: Location) -> None:
        """Raise the one clear error when `run` is no run directory (before taking a lock)."""

    def create_run(self, run: Location) -> None:
        """Make sure a save can create checkpoints in `run` (a local mkdir -p)."""

    def local_run(self, run: Location) -> Path | None:
        """The run directory as a local path, which no payload may hold; None elsewhere."""

    # ---- writing ---------------------------------------------------------------------------

    def lock(
        self, run: Location, timeout: float | None, beside: bool = False
    ) -> AbstractContextManager[Guard]:
        """Hold the run directory's lock (save and prune exclude each other); `beside` puts
        the lock file beside the run directory, not in it, where the backend can."""

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
        """Commit `meta` and the payloads as the checkpoint at `folder`, by this backend's
        protocol, and record the manifest. Returns "saved", "sealed" or "replaced". A `move`
        removes each payload's source once the checkpoint is committed."""

    def delete(
        self,
        run: Location,
        doomed: Sequence[tuple[PlanEntry, Entry | None]],
        progress: DeleteProgress,
        guard: Guard,
    ) -> Deletion:
        """Delete entries so that no crash leaves a half-deleted folder that looks like a
        checkpoint; the bytes freed of each where known."""


class NoGuard:
    """The guard of a lock that cannot be lost (flock on a local disk)."""

    def check(self) -> None:
        return None
