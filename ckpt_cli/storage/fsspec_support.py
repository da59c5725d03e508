"""fsspec filesystems for object-store URLs, made the ecosystem's way, and their errors in
ckpt's words.

`filesystem()` is the one factory (imported only when a URL is used: a local `ckpt latest`
never loads fsspec), and `translated()` turns what fsspec, s3fs and botocore raise into one
`CkptFileSystemError` line (exit 4 for access, a missing bucket, an unreachable endpoint).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..core.errors import CkptFileSystemError, UsageError
from ..core.paths import ObjectPath

#: What install line brings object-store support.
EXTRA_HINT = "pip install 'ckpt-cli[s3]'"


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
