"""Where checkpoints live, as values: a local `Path` or an `ObjectPath` URL, told apart once.

Every entry point (CLI argument or Python API path) goes through `location()`: a string with a
`protocol://` prefix becomes an `ObjectPath`, anything else a `pathlib.Path`, so a URL is never
taken for a local path. `ObjectPath` has no `__fspath__`: passed to `open`, `os.*` or `Path` by
mistake, it fails loudly instead of creating a folder called `s3:`. Pure: no I/O here; which
backend serves a location is `storage.backend_for`'s choice.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError

# `protocol://`: two characters at least, so that a Windows drive (`C:/`) is never a protocol.
_URL_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+)://(.*)", re.DOTALL)
# `s3:/bucket` (one slash): a URL with a typo. As a local path it would create `./s3:`.
_BROKEN_URL_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+:/(?!/)")


@dataclass(frozen=True, order=True)
class ObjectPath:
    """A location on an fsspec filesystem: `protocol://path`, e.g. `s3://bucket/runs/exp7`.

    Only the pure-path operations that ckpt's records and output use (`name`, `parent`, `/`,
    `str`); everything that does I/O lives in `storage/objects.py`. Deliberately not
    `os.PathLike`.
    """

    protocol: str
    path: str

    @classmethod
    def parse(cls, url: str) -> ObjectPath:
        match = _URL_RE.fullmatch(url)
        if match is None:
            raise ValueError(f"not a URL: {url!r}")
        path = match.group(2)
        stripped = path.rstrip("/")
        return cls(match.group(1).lower(), stripped if stripped else path)

    def __str__(self) -> str:
        return f"{self.protocol}://{self.path}"

    def __truediv__(self, name: str) -> ObjectPath:
        return ObjectPath(self.protocol, f"{self.path.rstrip('/')}/{name}")

    @property
    def name(self) -> str:
        return self.path.rstrip("/").rpartition("/")[2]

    @property
    def parent(self) -> ObjectPath:
        head, sep, _ = self.path.rstrip("/").rpartition("/")
        return ObjectPath(self.protocol, head) if sep and head else self


#: A run directory, checkpoint folder or file: local or on an object store.
Location = Path | ObjectPath
#: What callers may hand in: a string (URL or path), a PathLike, or an already parsed location.
Target = str | os.PathLike[str] | ObjectPath


def is_url(text: object) -> bool:
    """True for `protocol://...` strings and ObjectPaths (`file://` is a local path)."""
    if isinstance(text, ObjectPath):
        return True
    if not isinstance(text, str):
        return False
    match = _URL_RE.fullmatch(text)
    return match is not None and match.group(1).lower() != "file"


def location(target: Target) -> Location:
    """The Path or ObjectPath a user meant. `file://` URLs are local paths, with every POSIX
    guarantee; a broken URL (`s3:/bucket`) is a usage error rather than a local folder."""
    if isinstance(target, ObjectPath):
        return target
    if isinstance(target, Path):
        return target
    text = os.fspath(target)
    if is_url(text):
        return ObjectPath.parse(text)
    match = _URL_RE.fullmatch(text)
    if match is not None:  # file://
        return Path(match.group(2) or "/")
    if _BROKEN_URL_RE.match(text):
        raise UsageError(f"{text}: looks like a URL with a slash missing (write s3://...)")
    return Path(text)


def local(target: Location) -> Path:
    """A location that the caller has already dispatched as local, typed as such."""
    if not isinstance(target, Path):
        raise TypeError(f"{target} is not a local path")
    return target
