"""Loading one checkpoint: the folder a user named, its metadata read in full and validated."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import layouts
from ..core.format import Metadata
from ..core.paths import Location, Target
from ..core.records import METADATA_NAME
from ..storage import backend_for

if TYPE_CHECKING:
    from ..storage.base import Backend


def folder_of(backend: Backend, path: Location) -> Location:
    """The checkpoint folder a user named: the folder itself, or the folder of a metadata.json
    (on a file system, unless a folder is called so)."""
    if path.name != METADATA_NAME:
        return path
    if backend.real_folders and backend.state(path, follow=True) == "dir":
        return path
    return path.parent


def checkpoint_folder(target: Target) -> Location:
    """`folder_of` for a path or URL."""
    backend, path = backend_for(target)
    return folder_of(backend, path)


def read_metadata(target: Target, layout: str | None = None) -> Metadata:
    """A checkpoint's values, validated whole, by its layout (or by `layout` alone; see
    `layouts.ckpt.load` for ckpt's own errors)."""
    backend, folder = backend_for(target)
    return layouts.load(backend, folder, layout)
