"""The errors ckpt raises, one class per kind of failure, each carrying its exit code.

The CLI maps every `CkptError` to one line on stderr (`ckpt: error: <message>`) and the exit
code below, in one place (`cli.app.CkptGroup.main`); the Python API lets them propagate.
Codes are DESIGN.md's.
"""

from __future__ import annotations


class CkptError(Exception):
    """Base of every error ckpt reports; `exit_code` is what the CLI exits with."""

    exit_code = 1


class NotFoundError(CkptError):
    """No valid checkpoint where one was asked for."""

    exit_code = 1


class UsageError(CkptError):
    """Bad arguments: a bad flag value, a bad duration, no retention rule."""

    exit_code = 2


class InvalidCheckpointError(CkptError):
    """A checkpoint's metadata.json is missing, corrupt or of the wrong types."""

    exit_code = 3


class IncompleteCheckpointError(InvalidCheckpointError):
    """A checkpoint folder without its completeness marker (a save in progress or a crash)."""


class NoSignatureError(IncompleteCheckpointError):
    """A checkpoint folder without what a layout writes: another layout may read it."""


class VerifyError(InvalidCheckpointError):
    """A checkpoint's files do not match the manifest recorded at save time."""


class CkptFileSystemError(CkptError):
    """The file system refused: a missing directory, permission denied, disk full."""

    exit_code = 4


class NoRunDirError(CkptFileSystemError):
    """The run directory (or object-store prefix) does not exist; a save creates it."""


class NoCheckpointFolderError(CkptFileSystemError):
    """The checkpoint folder named does not exist (or vanished: a prune deleted it meanwhile)."""


class LockTimeoutError(CkptError):
    """Another save or prune held the run directory's lock for longer than --lock-timeout."""

    exit_code = 5


class PartialFailureError(CkptError):
    """Some of several run directories failed; the others were processed."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def describe_os_error(exc: OSError, path: object | None = None) -> str:
    """One line for an OSError: what failed and where, without Python's repr noise."""
    where = path if path is not None else exc.filename
    reason = exc.strerror or exc.__class__.__name__
    if where is None:
        return reason
    return f"{where}: {reason}"


def fs_error(
    exc: OSError, path: object | None = None, action: str | None = None
) -> CkptFileSystemError:
    """Wrap an OSError as a CkptFileSystemError with a one-line message naming the path."""
    text = describe_os_error(exc, path)
    return CkptFileSystemError(f"{action}: {text}" if action else text)
