"""Which lock a save or prune takes: the run directory's, in it or beside it.

A framework that counts every entry of its folder must find nothing of ckpt's there once a
command ends (Accelerate's rotation sorts `checkpoints/` whole by each name's last number and
fails on `.ckpt.lock`), so where its folders are, the lock file goes beside the run directory.
Only a local disk has such frameworks; an object store's lock stays in the run.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

from ..core.errors import NoRunDirError
from ..core.namings import counts_every_entry
from ..core.paths import Location
from ..storage.base import Backend, Guard


def lock_beside(backend: Backend, run: Location, names: list[str] | None = None) -> bool:
    """Whether the run's lock goes beside it (a local run where Accelerate writes); `names`,
    the run's listing when the caller has it."""
    if not backend.links:  # an object store: no framework counts its prefixes
        return False
    try:
        return counts_every_entry(backend.names(run) if names is None else names)
    except NoRunDirError:
        return False


def run_lock(
    backend: Backend, run: Location, timeout: float | None, names: list[str] | None = None
) -> AbstractContextManager[Guard]:
    """The lock of `run`, wherever it goes."""
    return backend.lock(run, timeout, beside=lock_beside(backend, run, names))
