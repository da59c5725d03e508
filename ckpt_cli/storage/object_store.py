"""One fsspec filesystem and the keys of locations on it: the object-store backend's client,
shared by its listing and reading (`objects.py`) and its commit and deletion
(`object_commit.py`)."""

from __future__ import annotations

import contextlib
import glob as globlib
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from ..core.format import parse_timestamp
from ..core.paths import ObjectPath
from .fsspec_support import filesystem

#: concurrent requests when reading many small objects (metadata.json of every checkpoint)
READ_CONCURRENCY = 32
#: ranged reads of this many bytes when hashing an object
HASH_CHUNK = 8 << 20
#: the object that condemns a checkpoint folder being deleted (see object_commit.py)
DELETING_MARK = ".ckpt-deleting"


def mtime_of(info: dict[str, Any]) -> float | None:
    for key in ("LastModified", "mtime", "last_modified", "created", "updated"):
        value = info.get(key)
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                return parse_timestamp(value)
    return None


class Store:
    """One fsspec filesystem, and the keys of locations on it."""

    def __init__(self, target: ObjectPath) -> None:
        self.fs = filesystem(target)
        self.protocol = target.protocol

    @property
    def read_options(self) -> dict[str, Any]:
        # s3fs asks for an object's size (a HEAD) before every read, to split big ones into
        # parallel ranges; a metadata.json is read whole, in one GET
        return {"max_concurrency": 1} if self.protocol in ("s3", "s3a") else {}

    def read(self, key: str, start: int | None = None, end: int | None = None) -> bytes:
        """One object's content (or a range of it)."""
        return bytes(self.fs.cat_file(key, start=start, end=end, **self.read_options))

    def sha256(self, key: str, size: int, progress: Callable[[int], None] | None = None) -> str:
        """The sha256 of an object of known size (from a listing), in ranged GETs: no HEAD,
        no read-ahead, never the whole object in memory."""
        import hashlib

        digest = hashlib.sha256()
        for start in range(0, size, HASH_CHUNK):
            chunk = self.read(key, start, min(start + HASH_CHUNK, size))
            digest.update(chunk)
            if progress is not None:
                progress(len(chunk))
        return digest.hexdigest()

    def key(self, where: ObjectPath) -> str:
        return str(self.fs._strip_protocol(str(where))).rstrip("/")

    def children(self, run: ObjectPath) -> list[str]:
        """Names of the entries directly under `run` (one delimited, paginated listing);
        empty when nothing is there."""
        root = self.key(run)
        try:
            entries = self.fs.ls(root, detail=True)
        except FileNotFoundError as exc:
            if "bucket" in str(exc).lower():
                raise
            return []
        names = []
        for entry in entries:
            name = str(entry["name"]).rstrip("/")
            if name.startswith(root + "/"):
                names.append(name[len(root) + 1 :])
        return names

    def objects(self, where: ObjectPath) -> dict[str, dict[str, Any]]:
        """Every object below `where`, by path relative to it (one recursive listing)."""
        root = self.key(where)
        parent, sep, name = root.rpartition("/")
        if self.protocol in ("s3", "s3a") and sep and parent:
            # as a prefix of the parent: s3fs then lists once, and does not follow an empty
            # listing with a HEAD and another listing to see whether `root` is a file
            found = self.fs.find(parent, detail=True, prefix=f"{name}/")
        else:
            found = self.fs.find(root, detail=True)
        out = {}
        for name, info in found.items():
            name = str(name)
            if info.get("type") == "directory" or name.endswith("/"):
                continue
            if name.startswith(root + "/"):
                out[name[len(root) + 1 :]] = info
        return out

    def remove(self, keys: Sequence[str]) -> None:
        """Delete objects (bulk deletes of up to 1,000 keys per request on S3)."""
        literal = [k for k in keys if not globlib.has_magic(k)]
        if literal:
            self.fs.rm(literal)
        for key in keys:
            if globlib.has_magic(key):
                self.fs.rm_file(key)
