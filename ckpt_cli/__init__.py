"""ckpt: a checkpoint manager for machine-learning training runs.

The Python API is the seed crate's: `Checkpoint` (save, load, find_latest, cleanup_old) and
`CheckpointConfig`. Every error is a `CkptError`; the command line is `ckpt_cli.cli`.
"""

from .checkpoint import Checkpoint, CheckpointConfig
from .errors import (
    CkptError,
    CkptFileSystemError,
    InvalidCheckpointError,
    LockTimeoutError,
    NotFoundError,
    UsageError,
)

__version__ = "0.1.0"

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
