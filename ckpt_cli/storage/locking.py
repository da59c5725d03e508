"""The per-run-directory lock that `save` and `prune` take to exclude each other.

A hidden `.ckpt.lock` file in the run directory, locked with filelock (flock on POSIX), never
deleted: deleting a lock file races with a process that is about to lock it. Readers take no
lock; the commit protocol alone keeps them from seeing a half-made checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..core.errors import LockTimeoutError, fs_error
from ..core.records import DEFAULT_LOCK_TIMEOUT, LOCK_NAME


@contextmanager
def run_lock(run_dir: Path, timeout: float | None = DEFAULT_LOCK_TIMEOUT) -> Iterator[None]:
    """Hold the run directory's lock; LockTimeoutError after `timeout` seconds (None: forever)."""
    from filelock import FileLock, Timeout

    lock = FileLock(run_dir / LOCK_NAME, timeout=-1 if timeout is None else timeout)
    try:
        lock.acquire()
    except Timeout:
        raise LockTimeoutError(
            f"{run_dir}: another ckpt save or prune held the lock for more than {timeout:g}s"
        ) from None
    except OSError as exc:
        raise fs_error(exc, run_dir / LOCK_NAME, "cannot lock run directory") from None
    try:
        yield
    finally:
        lock.release()
