"""The user's payload files, on the local disk whatever the backend: walking a payload folder
for an upload, and the second half of a `--move`, once the checkpoint is committed."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

from . import atomic
from .listing import Payload


def remove_path(path: Path) -> None:
    """Remove a file, a link (never followed) or a folder with all it holds."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        os.unlink(path)


def remove_sources(payloads: Sequence[Payload]) -> None:
    """Remove the originals of moved payloads, once the checkpoint is committed.

    Best effort: a source that cannot be removed is left where it was, which loses nothing.
    """
    for payload in payloads:
        with contextlib.suppress(OSError):
            remove_path(payload.source)
        atomic.fault_point("save:source-removed")


def local_files(payload: Payload) -> Iterator[tuple[str, Path]]:
    """(relative path in the checkpoint, local file) for a payload file or folder; links are
    neither followed nor uploaded, as locally they are not hashed."""
    source, name = payload.source, payload.name
    if not source.is_dir():
        yield name, source
        return
    for current, dirs, files in os.walk(source, followlinks=False):
        dirs.sort()
        for file in sorted(files):
            path = Path(current) / file
            if path.is_file() and not path.is_symlink():
                yield f"{name}/{path.relative_to(source).as_posix()}", path
