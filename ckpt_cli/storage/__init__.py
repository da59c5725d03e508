"""Where the bytes live: one `Backend` interface (`base.py`) and its implementations.

- `local.py` (with `local_commit.py`, `atomic.py`, `locking.py`): a POSIX directory: rename,
  fsync, flock, deletes through directory descriptors that never follow a link.
- `objects.py` (with `object_commit.py`, `object_lock.py`, `fsspec_support.py`): an object
  store through fsspec: payload first, marker last, marker deleted after a tombstone, a lock
  object taken by a conditional write.

`backend_for` makes the choice once, at the edge, from the path or URL; the operations above
never ask which backend they have. A new backend implements `base.Backend` and is chosen here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..core.paths import Location, ObjectPath, Target, location

if TYPE_CHECKING:
    from .base import Backend


def backend_for(target: Target) -> tuple[Backend, Location]:
    """The backend that serves `target`, and the location it names (a `Path` or an
    `ObjectPath`). fsspec is imported only for a URL."""
    where = location(target)
    if isinstance(where, ObjectPath):
        from .objects import ObjectStoreBackend

        return ObjectStoreBackend(where), where
    from .local import LocalBackend

    return LocalBackend(), where


__all__ = ["backend_for"]
