"""Crash-safe file and folder operations on a local POSIX file system.

Everything that makes a checkpoint appear or disappear goes through here: a file written by temp
file + flush + fsync + `os.replace` + directory fsync (as python-atomicwrites spells it), a folder
renamed into place and its parent fsynced, two folders swapped atomically (`renameat2` with
RENAME_EXCHANGE, where the kernel has it), and a folder removed by first renaming it aside to a
hidden name so that a half-deleted folder never looks like a checkpoint.

`fault_point(name)` marks each step of those protocols (all of them are listed in
`FAULT_POINTS`). The fault-injection tests set `CKPT_FAULT_AT=<name>[:<n>]` to have the process
SIGKILL itself the n-th time it passes there (`CKPT_FAULT_ACTION=stop`: SIGSTOP instead, so that a
test can tamper with the disk and let it go on), and `CKPT_FAULT_TRACE=<file>` to have every point
passed appended to a file, which is how they enumerate the points of an operation.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
import secrets
import signal
import stat
from collections.abc import Callable
from pathlib import Path

#: Every fault point, by protocol step. The harness in tests/faults.py checks that it reaches
#: each one and that no other name is ever passed.
FAULT_POINTS = frozenset(
    {
        # save into a new folder (staging, then publish by rename)
        "save:staging-created",
        "save:file-copied",
        "save:payload-copied",
        "save:before-metadata",
        "save:metadata:temp-created",
        "save:metadata:before-fsync",
        "save:metadata:before-rename",
        "save:metadata:before-dir-fsync",
        "save:before-publish",
        "save:before-run-dir-fsync",
        "save:committed",
        "save:source-removed",
        # seal a folder a framework filled
        "seal:before-run-dir-fsync",
        # replace an existing checkpoint (--force)
        "replace:staging-linked",
        "replace:exchanged",
        "replace:old-renamed-aside",
        "replace:before-delete-old",
        # delete one folder (prune, or the old copy after a replace)
        "delete:after-rename",
        "delete:before-remove",
        "delete:removed",
        # prune: before each folder is renamed aside (between entries)
        "prune:before-delete",
    }
)

_fault_counts: dict[str, int] = {}


def fault_point(name: str) -> None:
    """Die here with SIGKILL when the tests ask for it (CKPT_FAULT_AT); a no-op otherwise.

    The environment is read on every call (a few dozen per save), so that a forked test child
    can set it after ckpt was imported.
    """
    trace = os.environ.get("CKPT_FAULT_TRACE")
    if trace:
        with open(trace, "a", encoding="utf-8") as handle:
            handle.write(name + "\n")
    fault_at = os.environ.get("CKPT_FAULT_AT")
    if not fault_at:
        return
    want, _, nth = fault_at.rpartition(":")
    if not nth.isdigit():
        want, nth = fault_at, ""
    if want != name:
        return
    _fault_counts[name] = _fault_counts.get(name, 0) + 1
    if _fault_counts[name] == (int(nth) if nth else 1):
        stop = os.environ.get("CKPT_FAULT_ACTION") == "stop"
        os.kill(os.getpid(), signal.SIGSTOP if stop else signal.SIGKILL)


def token() -> str:
    """A short random token for hidden staging, temp and trash names."""
    return secrets.token_hex(6)


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (creations, renames) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file_atomic(path: Path, data: bytes, *, point: str = "write") -> None:
    """Write `path` so that it holds either its old content or all of `data`, never a part.

    Temp file in the same directory, write, flush, fsync, rename over, fsync the directory;
    the temp file is removed on any failure.
    """
    tmp = path.with_name(f".{path.name}.tmp-{token()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        try:
            fault_point(f"{point}:temp-created")
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            fault_point(f"{point}:before-fsync")
            os.fsync(fd)
        finally:
            os.close(fd)
        fault_point(f"{point}:before-rename")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fault_point(f"{point}:before-dir-fsync")
    fsync_dir(path.parent)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
_renameat2: Callable[..., int] | None = None


def _load_renameat2() -> Callable[..., int] | None:
    global _renameat2
    if _renameat2 is None:
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            function = libc.renameat2
            function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
            function.argtypes += [ctypes.c_uint]
            function.restype = ctypes.c_int
            _renameat2 = function
        except (OSError, AttributeError):
            return None
    return _renameat2


def exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (renameat2 RENAME_EXCHANGE). False where unsupported."""
    function = _load_renameat2()
    if function is None:
        return False
    result = function(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(a), None, str(b))


def trash_name(folder: Path, step: int | None) -> Path:
    """The hidden name a folder is renamed to before it is removed."""
    label = step if step is not None else 0
    return folder.with_name(f".checkpoint-{label}.deleting-{token()}")


def remove_tree(folder: Path) -> int:
    """Remove a folder that has already been renamed aside; returns the bytes of the regular
    files it held.

    Removal goes through directory file descriptors: each subfolder is opened relative to its
    parent's descriptor with O_NOFOLLOW, so a symlink swapped in during the removal makes it
    fail rather than reach outside the folder. Files are measured as they are removed (one
    pass, not a measuring walk and then shutil.rmtree's walk).
    """
    parent = os.open(folder.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        freed = _empty_folder(parent, folder.name)
        os.rmdir(folder.name, dir_fd=parent)
    finally:
        os.close(parent)
    return freed


def remove_entry(path: Path) -> int:
    """`remove_tree` for a folder; a checkpoint that is a regular file (Lightning's) is
    unlinked. Either was renamed aside first. Returns the bytes freed."""
    info = os.lstat(path)
    if stat.S_ISREG(info.st_mode):
        os.unlink(path)
        return info.st_size
    return remove_tree(path)


_SWAPPED = "a symlink or a file took the place of a folder being removed; not followed"
_OPEN_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _empty_folder(parent: int, name: str) -> int:
    try:
        fd = os.open(name, _OPEN_FOLDER, dir_fd=parent)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):  # it became a link (or a file) meanwhile
            raise OSError(exc.errno, _SWAPPED, name) from None
        raise
    freed = 0
    try:
        with os.scandir(fd) as listing:
            entries = list(listing)
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                freed += _empty_folder(fd, entry.name)
                os.rmdir(entry.name, dir_fd=fd)
                continue
            if entry.is_file(follow_symlinks=False):
                freed += entry.stat(follow_symlinks=False).st_size
            os.unlink(entry.name, dir_fd=fd)
    finally:
        os.close(fd)
    return freed


def delete_folder(folder: Path, step: int | None) -> Path:
    """Delete a checkpoint folder so that no crash leaves a half-deleted one under its name.

    Rename aside to a hidden trash name (atomic), fsync the parent, then remove. A crash after
    the rename leaves a trash folder that the next prune finishes.
    """
    trash = trash_name(folder, step)
    os.rename(folder, trash)
    fault_point("delete:after-rename")
    fsync_dir(folder.parent)
    fault_point("delete:before-remove")
    remove_tree(trash)
    fault_point("delete:removed")
    return trash
