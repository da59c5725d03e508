"""What the storage verbs take and return, as plain data: the entries of a listing, the files
below a folder, the payloads of a save, the outcome of a deletion."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from ..core.retention import PlanEntry

#: What a listing says an entry is. `link` is never followed; `other` is a FIFO, a socket, ...
EntryType = Literal["dir", "file", "link", "other"]


@dataclass(frozen=True)
class FileInfo:
    """One file below a checkpoint folder: its size and, for the listing, its kind."""

    size: int
    mtime: float | None = None
    kind: Literal["file", "link"] = "file"


@dataclass(slots=True)  # not frozen: a listing makes one per entry, and frozen costs
class Entry:
    """One entry of a run directory, as one listing of it shows it."""

    name: str
    type: EntryType
    #: POSIX seconds: the entry's own mtime (local), or its newest object's (object store)
    mtime: float | None
    #: bytes below it when the listing tells them at no cost (object stores), else None
    size: int | None = None
    #: every file below it by relative path when the listing tells them (object stores), else
    #: None: the backend's `files()` walks the folder when asked
    files: Mapping[str, FileInfo] | None = None
    #: condemned by a deletion that was interrupted (an object store's tombstone); a local
    #: deletion renames the folder aside instead, which its name shows
    condemned: bool = False
    #: what the backend needs to delete it later (an object store: its keys)
    keys: tuple[str, ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class Payload:
    """A local file or folder that a save puts into the checkpoint under `name`."""

    source: Path
    name: str


@dataclass
class Deletion:
    """What a backend's `delete` did with each entry it was given."""

    deleted: list[tuple[PlanEntry, int | None]] = field(default_factory=list)
    failed: list[tuple[PlanEntry, str]] = field(default_factory=list)
