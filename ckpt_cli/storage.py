"""Where checkpoints live: a local folder or an object-store URL, told apart once, at the edge.

Every entry point (CLI argument or Python API path) goes through `location()`: a string with a
`protocol://` prefix becomes an `ObjectPath` (handled by `remote.py` through fsspec), anything
else a `pathlib.Path` (handled by the POSIX code: rename, fsync, flock), so a URL is never taken
for a local path. `ObjectPath` has no `__fspath__`: passed to `open`, `os.*` or `Path` by
mistake, it fails loudly instead of creating a folder called `s3:`.

`filesystem()` is the one factory for fsspec filesystems, imported here only when a URL is
used (a local `ckpt latest` never loads fsspec), and `translated()` turns what fsspec, s3fs
and botocore raise into ckpt's errors (exit 4 for access, missing bucket, unreachable endpoint).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import CkptFileSystemError, UsageError

#: What install line brings object-store support.
EXTRA_HINT = "pip install 'ckpt-cli[s3]'"

# `protocol://`: two characters at least, so that a Windows drive (`C:/`) is never a protocol.
_URL_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+)://(.*)", re.DOTALL)
# `s3:/bucket` (one slash): a URL with a typo. As a local path it would create `./s3:`.
_BROKEN_URL_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+:/(?!/)")


@dataclass(frozen=True, order=True)
class ObjectPath:
    """A location on an fsspec filesystem: `protocol://path`, e.g. `s3://bucket/runs/exp7`.

    Only the pure-path operations that ckpt's records and output use (`name`, `parent`, `/`,
    `str`); everything that does I/O lives in `remote.py`. Deliberately not `os.PathLike`.
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


# botocore's defaults retry up to 5 times with backoff and wait 60 s per connection: an
# unreachable endpoint takes minutes to report. Bounded here, overridable by fsspec config
# (`config_kwargs` under "s3") or the AWS_MAX_ATTEMPTS / AWS_RETRY_MODE variables.
_S3_CONFIG: dict[str, Any] = {"connect_timeout": 5, "read_timeout": 60}
_S3_RETRIES: dict[str, Any] = {"max_attempts": 3, "mode": "standard"}


def _s3_options() -> dict[str, Any]:
    import fsspec.config  # type: ignore[import-untyped]

    user = fsspec.config.conf.get("s3", {})
    config = dict(_S3_CONFIG)
    if not (os.environ.get("AWS_MAX_ATTEMPTS") or os.environ.get("AWS_RETRY_MODE")):
        config["retries"] = dict(_S3_RETRIES)
    config.update(user.get("config_kwargs", {}))
    return {"config_kwargs": config}


# One filesystem per protocol and configuration, per process: connecting an S3 client costs
# ~0.5 s, which a training loop calling the API every few minutes should pay once. Keyed by
# what configures it (so that changed credentials get a new client) and by pid (an fsspec
# instance does not survive a fork).
_filesystems: dict[tuple[object, ...], Any] = {}


def _config_key(protocol: str) -> tuple[object, ...]:
    env = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith(("AWS_", "FSSPEC_"))))
    return (protocol, os.getpid(), env)


def filesystem(target: ObjectPath) -> Any:
    """The fsspec filesystem for `target`'s protocol, configured the ecosystem's way.

    Credentials and endpoints come from where the backend looks (for s3fs: AWS_* variables,
    AWS_PROFILE, ~/.aws, fsspec config, FSSPEC_S3_* variables). No listing cache, so that every
    listing shows the store's current state. Raises UsageError (exit 2) when the extra that
    serves the protocol is not installed.
    """
    key = _config_key(target.protocol)
    cached = _filesystems.get(key)
    if cached is not None:
        return cached
    fs = _new_filesystem(target)
    _filesystems[key] = fs
    return fs


def _new_filesystem(target: ObjectPath) -> Any:
    try:
        import fsspec
    except ImportError:
        raise UsageError(f"{target}: object-store URLs need the s3 extra: {EXTRA_HINT}") from None
    options: dict[str, Any] = {"skip_instance_cache": True, "use_listings_cache": False}
    is_s3 = target.protocol in ("s3", "s3a")
    try:
        if is_s3:
            options.update(_s3_options())
        return fsspec.filesystem(target.protocol, **options)
    except ImportError as exc:
        if is_s3:
            raise UsageError(
                f"{target}: object-store URLs need the s3 extra: {EXTRA_HINT}"
            ) from None
        raise UsageError(f"{target}: {_one_line(str(exc))}") from None
    except ValueError as exc:
        raise UsageError(f"{target}: {_one_line(str(exc))}") from None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _botocore_errors() -> tuple[type[BaseException], ...]:
    try:
        from botocore.exceptions import (  # type: ignore[import-untyped]
            BotoCoreError,
            ClientError,
        )
    except ImportError:
        return ()
    return (BotoCoreError, ClientError)


def describe(exc: BaseException) -> str:
    """One line for what the store said, without Python's repr noise."""
    name = type(exc).__name__
    if name in ("NoCredentialsError", "PartialCredentialsError"):
        return "no credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)"
    if name in ("EndpointConnectionError", "ConnectTimeoutError", "ConnectionClosedError"):
        return f"cannot reach the object store ({_one_line(str(exc))})"
    if name == "ReadTimeoutError":
        return f"the object store did not answer in time ({_one_line(str(exc))})"
    if isinstance(exc, PermissionError):
        text = _one_line(str(exc)) or "access denied"
        return f"access denied: {text} (check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)"
    if isinstance(exc, FileNotFoundError):
        text = _one_line(str(exc))
        if "bucket does not exist" in text.lower():
            return "no such bucket"
        return "not found"
    text = _one_line(str(exc)) if str(exc) else name
    if isinstance(exc, OSError) and exc.strerror:
        text = _one_line(exc.strerror)
    return text


@contextmanager
def translated(target: object, action: str | None = None) -> Iterator[None]:
    """Turn a remote failure into one CkptFileSystemError line naming `target` (exit 4)."""
    caught: tuple[type[BaseException], ...] = (OSError, *_botocore_errors())
    try:
        yield
    except caught as exc:
        text = f"{target}: {describe(exc)}"
        raise CkptFileSystemError(f"{action}: {text}" if action else text) from exc
