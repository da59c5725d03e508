"""The local POSIX backend: a run directory on a disk, with every guarantee rename gives.

Listing is one `os.listdir` (latest) or `os.scandir` (list, prune, verify); reads never block
on a FIFO and never read a device; the run lock is filelock's flock on `.ckpt.lock`; a commit
builds in a hidden staging folder and renames it into place (`local_commit.py`); a deletion
renames folders aside to hidden trash names, fsyncs once per batch, then removes them through
directory descriptors that never follow a link (`atomic.py`).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Literal, TypeVar

from ..core.errors import CkptFileSystemError, NoRunDirError, fs_error
from ..core.namings import named_as_checkpoint
from ..core.paths import Location, local
from ..core.records import STAGING_RE, TRASH_RE
from .base import DanglingLink, NoGuard, NotRegularFile

if TYPE_CHECKING:  # `ckpt latest` loads none of these: it lists and reads one file
    from ..core.format import Metadata
    from ..core.retention import PlanEntry
    from .base import ByteProgress, DeleteProgress, Guard
    from .listing import Deletion, Entry, EntryType, FileInfo, Payload

T = TypeVar("T")
R = TypeVar("R")

_CHUNK = 1 << 20
# A save commits by renaming into the run directory, which updates the directory's mtime; a
# directory that changed well after the latest checkpoint did is the cue to look for a newer
# save at a lower step. Only then are the other folders' markers stat'ed.
_MTIME_SLACK = 2.0


@contextmanager
def _listing(run_dir: Path) -> Iterator[None]:
    """One clear error when a run directory cannot be listed."""
    try:
        yield
    except FileNotFoundError:
        raise NoRunDirError(f"{run_dir}: no such run directory") from None
    except NotADirectoryError:
        raise CkptFileSystemError(f"{run_dir}: not a directory") from None
    except OSError as exc:
        raise fs_error(exc, run_dir, "cannot list run directory") from None


def _open_regular(path: Path) -> tuple[BinaryIO, int]:
    """`path` opened for reading, and its size, checked to be a regular file first: opened
    without blocking, since a FIFO would block forever waiting for a writer (and /dev/zero
    fill the memory)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        if os.path.lexists(path):
            raise DanglingLink(errno.ENOENT, "a symlink to nothing", str(path)) from None
        raise
    handle = open(fd, "rb")  # noqa: SIM115 - returned to the caller, who closes it
    info = os.fstat(fd)
    mode = info.st_mode
    if stat.S_ISREG(mode):
        return handle, info.st_size
    handle.close()
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    raise NotRegularFile(errno.EINVAL, "not a regular file", str(path))


class _FileBlob:
    """A regular file open for range reads; a context manager that closes it."""

    def __init__(self, path: Path) -> None:
        self._handle, self.size = _open_regular(path)

    def __enter__(self) -> _FileBlob:
        return self

    def __exit__(self, *_: object) -> None:
        self._handle.close()

    def read(self, start: int, end: int) -> bytes:
        self._handle.seek(start)
        return self._handle.read(end - start)

    def read_all(self) -> bytes:
        self._handle.seek(0)
        return self._handle.read()


def _entry_type(mode: int) -> EntryType:
    if stat.S_ISLNK(mode):
        return "link"
    if stat.S_ISDIR(mode):
        return "dir"
    return "file" if stat.S_ISREG(mode) else "other"


class LocalBackend:
    """Run directories on a local POSIX file system."""

    atomic_rename = True
    exact_listing = True
    links = True
    real_folders = True

    # ---- reading ---------------------------------------------------------------------------

    def names(self, run: Location) -> list[str]:
        run_dir = local(run)
        with _listing(run_dir):
            return os.listdir(run_dir)

    def entries(self, run: Location) -> list[Entry]:
        from .listing import Entry

        run_dir = local(run)
        found = []
        with _listing(run_dir), os.scandir(run_dir) as listing:
            for item in listing:
                name = item.name
                if name.startswith(".") and not (
                    STAGING_RE.fullmatch(name) or TRASH_RE.fullmatch(name)
                ):
                    continue  # the lock file, and hidden files that are not ckpt's
                try:
                    info = item.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # deleted since the listing (a prune beside us): not there
                except OSError:
                    found.append(Entry(name, "other", None))
                    continue
                found.append(Entry(name, _entry_type(info.st_mode), info.st_mtime))
        return found

    def state(
        self, path: Location, follow: bool = False
    ) -> Literal["dir", "file", "link", "missing"]:
        try:
            mode = (os.stat if follow else os.lstat)(local(path)).st_mode
        except OSError:
            return "missing"
        kind = _entry_type(mode)
        return "file" if kind == "other" else kind

    def read_file(self, path: Location, about: Location | None = None) -> bytes:
        handle, _ = _open_regular(local(path))
        with handle:
            return handle.read()

    def open_blob(self, path: Location, size: int | None = None) -> _FileBlob:
        return _FileBlob(local(path))

    def link_target(self, path: Location) -> str | None:
        try:
            return os.readlink(local(path))
        except OSError:  # not a link, or gone
            return None

    def files(self, folder: Location) -> dict[str, FileInfo]:
        from .listing import FileInfo

        found: dict[str, FileInfo] = {}
        # (folder, its path relative to the root with a trailing "/"): strings, not Paths, as
        # `list` walks every checkpoint folder of a run
        stack = [(str(local(folder)), "")]
        while stack:
            current, prefix = stack.pop()
            try:
                listing = list(os.scandir(current))
            except OSError:
                continue
            for item in listing:
                relative = prefix + item.name
                try:
                    if item.is_symlink():
                        found[relative] = FileInfo(0, kind="link")
                    elif item.is_dir(follow_symlinks=False):
                        stack.append((item.path, relative + "/"))
                    elif item.is_file(follow_symlinks=False):
                        info = item.stat(follow_symlinks=False)
                        found[relative] = FileInfo(info.st_size, info.st_mtime)
                except OSError:
                    continue
        return dict(sorted(found.items()))

    def folder_size(self, entry: Entry, path: Location) -> int:
        if entry.type == "file":  # a checkpoint that is a file (Lightning's)
            try:
                return os.stat(local(path), follow_symlinks=False).st_size
            except OSError:
                return 0
        if entry.files is not None:  # the layout walked it already (`layouts.base.entry_files`)
            return sum(info.size for info in entry.files.values() if info.kind == "file")
        return folder_bytes(local(path))

    def sha256(self, path: Location, size: int, progress: ByteProgress) -> str:
        import hashlib  # hashing is loaded only by what hashes (save, verify)

        digest = hashlib.sha256()
        with open(local(path), "rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
                progress(len(chunk))
        return digest.hexdigest()

    def saved_later(
        self,
        run: Location,
        latest: Location,
        lower: Callable[[], Sequence[str]],
        markers: Sequence[str],
    ) -> str | None:
        run_dir, latest_dir = local(run), local(latest)
        try:
            latest_mtime = latest_dir.stat().st_mtime
            if run_dir.stat().st_mtime <= latest_mtime + _MTIME_SLACK:
                return None
            run_fd = os.open(run_dir, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            return None
        newest: tuple[float, str] | None = None
        try:
            for name in lower():
                mtime = _marker_mtime(run_fd, name, markers)
                if mtime is None:
                    continue
                if mtime > latest_mtime + _MTIME_SLACK and (newest is None or mtime > newest[0]):
                    newest = (mtime, name)
        finally:
            os.close(run_fd)
        return None if newest is None else newest[1]

    def map(self, function: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        return map(function, items)

    # ---- run directories -------------------------------------------------------------------

    def glob(self, pattern: str) -> list[Location]:
        import glob  # only prune takes globs; kept off the start-up path of `latest`

        return [Path(m) for m in sorted(glob.glob(pattern)) if Path(m).is_dir()]

    def run_dirs_below(self, root: Location) -> list[Location]:
        found: list[Location] = []
        for current, dirs, files in os.walk(local(root), followlinks=False):
            named = [d for d in dirs if named_as_checkpoint(d, "dir")]
            if named or any(named_as_checkpoint(f, "file") for f in files):
                found.append(Path(current))
            dirs[:] = sorted(d for d in dirs if d not in named and not d.startswith("."))
        return found

    def require_run(self, run: Location) -> None:
        run_dir = local(run)
        if not run_dir.is_dir():
            self.names(run_dir)  # raises the one clear error for a missing directory or a file
            raise CkptFileSystemError(f"{run_dir}: not a directory")

    def create_run(self, run: Location) -> None:
        run_dir = local(run)
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise CkptFileSystemError(f"{run_dir}: not a directory") from None
        except OSError as exc:
            raise fs_error(exc, run_dir, "cannot create run directory") from None

    def local_run(self, run: Location) -> Path | None:
        return local(run)

    # ---- writing ---------------------------------------------------------------------------

    @contextmanager
    def _lock(self, run_dir: Path, timeout: float | None, beside: bool) -> Iterator[Guard]:
        from .locking import run_lock

        with run_lock(run_dir, timeout, beside):
            yield NoGuard()

    def lock(
        self, run: Location, timeout: float | None, beside: bool = False
    ) -> AbstractContextManager[Guard]:
        return self._lock(local(run), timeout, beside)

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
        from .local_commit import commit

        return commit(local(folder), meta, payloads, move, force, hashes, progress)

    def delete(
        self,
        run: Location,
        doomed: Sequence[tuple[PlanEntry, Entry | None]],
        progress: DeleteProgress,
        guard: Guard,
    ) -> Deletion:
        """Doomed folders are renamed aside, then one fsync of the run directory makes the
        renames durable, then they are removed: the guarantee of `atomic.delete_folder` (no
        half-deleted folder under a checkpoint's name) without its fsync per folder, which was
        most of the time of a large prune. Batches double (1, 2, 4, ...): oldest first, a few
        fsyncs in all, and a prune killed midway leaves at most half of what it finished as
        hidden trash."""
        from . import atomic
        from .listing import Deletion

        run_dir = local(run)
        done = Deletion()
        pending = [entry for entry, _ in doomed]
        batch = 1
        while pending:
            current, pending = pending[:batch], pending[batch:]
            batch *= 2
            for entry, trash in _rename_aside(run_dir, current, done):
                atomic.fault_point("delete:before-remove")
                try:
                    freed = atomic.remove_entry(trash)
                except OSError as exc:
                    done.failed.append((entry, exc.strerror or str(exc)))
                    continue
                atomic.fault_point("delete:removed")
                done.deleted.append((entry, freed))
                progress(entry, freed)
        return done


def _marker_mtime(run_fd: int, name: str, markers: Sequence[str]) -> float | None:
    for marker in markers:
        try:
            # relative to the run directory's descriptor: one path component less to resolve
            # per folder, which is most of the cost over 100k folders
            return os.stat(f"{name}/{marker}", dir_fd=run_fd).st_mtime
        except OSError:
            continue
    return None


def folder_bytes(path: Path) -> int:
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


def _rename_aside(
    run_dir: Path, entries: Sequence[PlanEntry], done: Deletion
) -> list[tuple[PlanEntry, Path]]:
    """Rename each folder to a hidden trash name and fsync the run directory once; returns
    (the entry, the trash path) for each one that can now be removed."""
    from . import atomic

    trashed: list[tuple[PlanEntry, Path]] = []
    for entry in entries:
        folder = local(entry.record.path)
        if entry.record.kind == "trash":
            trashed.append((entry, folder))
            continue
        trash = atomic.trash_name(folder, entry.record.step)
        atomic.fault_point("prune:before-delete")
        try:
            os.rename(folder, trash)
        except OSError as exc:
            done.failed.append((entry, exc.strerror or str(exc)))
            continue
        atomic.fault_point("delete:after-rename")
        trashed.append((entry, trash))
    if len(trashed) > sum(1 for entry, _ in trashed if entry.record.kind == "trash"):
        atomic.fsync_dir(run_dir)
    return trashed
