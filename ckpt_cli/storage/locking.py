"""The per-run-directory lock that `save` and `prune` take to exclude each other.

A hidden `.ckpt.lock` file in the run directory, locked with filelock (flock on POSIX), never
deleted: deleting a lock file races with a process that is about to lock it. Where a framework
counts every entry of the run directory (Accelerate's rotation fails on a name without a
digit), the lock file goes beside the run directory instead: `.<run name>.ckpt.lock` in its
parent. Readers take no
lock; the commit protocol alone keeps them from seeing a half-made checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..core.errors import LockTimeoutError, fs_error
from ..core.records import DEFAULT_LOCK_TIMEOUT, LOCK_NAME


def lock_path(run_dir: Path, beside: bool = False) -> Path:
    """Where the run directory's lock file is: in it, or `beside` it."""
    return run_dir.parent / f".{run_dir.name}{LOCK_NAME}" if beside else run_dir / LOCK_NAME


@contextmanager
def run_lock(
    run_dir: Path, timeout: float | None = DEFAULT_LOCK_TIMEOUT, beside: bool = False
) -> Iterator[None]:
    """Hold the run directory's lock; LockTimeoutError after `timeout` seconds (None: forever)."""
    from filelock import FileLock, Timeout

    path = lock_path(run_dir, beside)
    lock = FileLock(path, timeout=-1 if timeout is None else timeout)
    try:
        lock.acquire()
    except Timeout:
        raise LockTimeoutError(
            f"{run_dir}: another ckpt save or prune held the lock for more than {timeout:g}s"
        ) from None
    except OSError as exc:
        raise fs_error(exc, path, "cannot lock run directory") from None
    try:
        yield
    finally:
        lock.release()
