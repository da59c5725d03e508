"""ckpt: a checkpoint manager for machine-learning training runs.

The Python API is the seed crate's: `Checkpoint` (save, load, find_latest, cleanup_old) and
`CheckpointConfig`, in `api.py`. Every error is a `CkptError`. The package, bottom to top:

- `core/`: the pure core: the format (metadata.json both ways), records, the retention engine,
  durations, errors, paths as values. No I/O, no typer, rich or fsspec.
- `storage/`: where the bytes live: one `Backend` interface, a local POSIX backend and an
  object-store backend (fsspec), chosen once from the path or URL.
- `layouts/`: how a folder is read: one module per layout (ckpt's own metadata.json first).
- `ops/`: the operations (scan, latest, load, save, prune, verify), each written once.
- `api.py`: the Python API; `cli/`: the `ckpt` command line (typer and rich live only there).
"""

from typing import TYPE_CHECKING, Any

from .core.errors import (
    CkptError,
    CkptFileSystemError,
    InvalidCheckpointError,
    LockTimeoutError,
    NotFoundError,
    UsageError,
)

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .api import Checkpoint, CheckpointConfig


def __getattr__(name: str) -> Any:
    # The API classes load on first use, so that `ckpt latest` does not import them (nor the
    # locking they need) at start-up; `from ckpt_cli import Checkpoint` works as ever.
    if name in ("Checkpoint", "CheckpointConfig"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Checkpoint",
    "CheckpointConfig",
    "CkptError",
    "CkptFileSystemError",
    "InvalidCheckpointError",
    "LockTimeoutError",
    "NotFoundError",
    "UsageError",
    "__version__",
]
