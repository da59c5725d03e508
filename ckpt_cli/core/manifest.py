"""The payload manifest as data: what a checkpoint's files must match, and how they differ.

`save` records every file of the checkpoint folder but `metadata.json` (path relative to the
folder, size, sha256); `verify` compares what is there now with `compare_manifest`, on any
storage backend: the backend only says each file's size and hashes it on request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from .errors import InvalidCheckpointError
from .format import ManifestEntry, leaves_folder
from .records import display_name

Progress = Callable[[int], None]


def check_recordable_name(path: Path, name: str) -> None:
    """Refuse a file name that metadata.json (UTF-8 JSON) cannot record."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidCheckpointError(
            f"{display_name(str(path))}: the file name is not valid UTF-8, so the checkpoint's "
            "manifest cannot record it; rename the file"
        ) from None


@dataclass(frozen=True)
class ManifestProblem:
    """One way a checkpoint's files differ from its manifest."""

    path: str
    problem: str  # "missing", "replaced by a symlink", "size changed", "content changed", ...

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


def unsafe_path(relative: str) -> bool:
    """True when a manifest path would leave the checkpoint folder (absolute or with `..`)."""
    return leaves_folder(relative) or relative.startswith("\\")


def compare_manifest(
    manifest: list[ManifestEntry],
    size_of: Callable[[str], int | str],
    digest_of: Callable[[ManifestEntry], str],
    present: Iterable[str],
    progress: Progress,
) -> list[ManifestProblem]:
    """The problems of a checkpoint against its recorded manifest, on any medium.

    `size_of(path)` is the size of the file at a manifest path, or the problem that stands
    for it ("missing", ...); `digest_of(entry)` its sha256 (reporting its own progress);
    `present` the payload files there now (to find extra ones), read after the entries."""
    problems = []
    recorded = set()
    for entry in manifest:
        if unsafe_path(entry.path):
            problems.append(
                ManifestProblem(entry.path, "unsafe path (leaves the checkpoint folder)")
            )
            continue
        recorded.add(entry.path)
        size = size_of(entry.path)
        if isinstance(size, str):
            problem = size
        elif size != entry.size:
            problem = f"size changed ({entry.size} -> {size})"
        else:
            if entry.sha256 is not None and digest_of(entry) != entry.sha256:
                problems.append(ManifestProblem(entry.path, "content changed (sha256 differs)"))
            continue
        problems.append(ManifestProblem(entry.path, problem))
        progress(entry.size)  # the bytes that will not be hashed
    for relative in present:
        if relative not in recorded:
            problems.append(ManifestProblem(relative, "extra (not in the manifest)"))
    return problems
