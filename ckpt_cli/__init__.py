"""ckpt: a checkpoint manager for machine-learning training runs.

The Python API is the seed crate's: `Checkpoint` (save, load, find_latest, cleanup_old) and
`CheckpointConfig`. Every error is a `CkptError`; the command line is `ckpt_cli.cli`.
"""

from typing import TYPE_CHECKING, Any

from .errors import (
    CkptError,
    CkptFileSystemError,
    InvalidCheckpointError,
    LockTimeoutError,
    NotFoundError,
    UsageError,
)

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .checkpoint import Checkpoint, CheckpointConfig


def __getattr__(name: str) -> Any:
    # The API classes load on first use, so that `ckpt latest` does not import them (nor the
    # locking they need) at start-up; `from ckpt_cli import Checkpoint` works as ever.
    if name in ("Checkpoint", "CheckpointConfig"):
        from . import checkpoint

        return getattr(checkpoint, name)
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
