"""sha256 of a local file in chunks: the one place ckpt hashes, loaded only by what hashes
(a save records hashes in the manifest, verify checks them)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

_CHUNK = 1 << 20


def _no_progress(_: int) -> None:
    return None


def sha256_file(path: Path, progress: Callable[[int], None] = _no_progress) -> str:
    """The hex sha256 of a file, reporting each chunk's bytes to `progress`."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            progress(len(chunk))
    return digest.hexdigest()
