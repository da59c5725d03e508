"""Crash-safe file and folder operations on a local POSIX file system.

Everything that makes a checkpoint appear or disappear goes through here: a file written by temp
file + flush + fsync + `os.replace` + directory fsync (as python-atomicwrites spells it), a folder
renamed into place and its parent fsynced, two folders swapped atomically (`renameat2` with
RENAME_EXCHANGE, where the kernel has it), and a folder removed by first renaming it aside to a
hidden name so that a half-deleted folder never looks like a checkpoint.

`fault_point(name)` marks each step of those protocols; the fault-injection tests set
`CKPT_FAULT_AT=<name>[:<n>]` to have the process SIGKILL itself at the n-th time it passes there.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
import secrets
import shutil
import signal
from collections.abc import Callable
from pathlib import Path

_FAULT_AT = os.environ.get("CKPT_FAULT_AT")
_fault_counts: dict[str, int] = {}


def fault_point(name: str) -> None:
    """Die here with SIGKILL when the tests ask for it (CKPT_FAULT_AT); a no-op otherwise."""
    if not _FAULT_AT:
        return
    want, _, nth = _FAULT_AT.rpartition(":")
    if not nth.isdigit():
        want, nth = _FAULT_AT, ""
    if want != name:
        return
    _fault_counts[name] = _fault_counts.get(name, 0) + 1
    if _fault_counts[name] >= (int(nth) if nth else 1):
        os.kill(os.getpid(), signal.SIGKILL)


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


def remove_tree(folder: Path) -> None:
    """Remove a folder that has already been renamed aside.

    shutil.rmtree on Linux removes through directory file descriptors and never follows a
    symlink (`rmtree.avoids_symlink_attacks`), so a link swapped in during the removal cannot
    redirect it outside the folder.
    """
    if not shutil.rmtree.avoids_symlink_attacks:  # pragma: no cover - not on Linux
        raise OSError(errno.ENOTSUP, "this platform cannot remove folders safely", str(folder))
    shutil.rmtree(folder)


def delete_folder(folder: Path, step: int | None) -> Path:
    """Delete a checkpoint folder so that no crash leaves a half-deleted one under its name.

    Rename aside to a hidden trash name (atomic), fsync the parent, then remove. A crash after
    the rename leaves a trash folder that the next prune finishes.
    """
    trash = trash_name(folder, step)
    os.rename(folder, trash)
    fault_point("delete:after-rename")
    fsync_dir(folder.parent)
    remove_tree(trash)
    return trash
