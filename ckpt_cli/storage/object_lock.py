"""The run lock on an object store, where there is no flock: a lock object and conditional writes.

`save` and `prune` on one run prefix exclude each other with `<run>/.ckpt.lock`, a small JSON
object naming its owner and when it expires. What makes it a lock is the store, not ckpt:

- **acquire** is `PutObject` with `If-None-Match: *`: the store creates the object only if no
  object has that key, so of any number of concurrent writers exactly one succeeds (412 for the
  others). AWS S3 (since 2024), SeaweedFS, MinIO and Ceph honour it.
- **renew**: the holder rewrites the object every `ttl / 3` seconds with `If-Match: <its ETag>`,
  so a renewal succeeds only while the object is still the holder's own.
- **take over** a holder that stopped renewing (killed, or cut off): a waiter that has seen the
  same ETag for longer than `ttl` on its own monotonic clock, or that reads an `expires_at`
  more than `ttl` in the past (clocks up to `ttl` apart are tolerated), replaces the object with
  `If-Match: <that ETag>`: of several waiters, exactly one wins.
- **release** is `DeleteObject` with `If-Match: <own ETag>`: never deletes someone else's lock.
- a holder whose renewal fails because the lock was taken over learns it, and `check()`
  (called before each commit marker and each deletion) stops it with exit 5.

On fsspec filesystems other than S3 the same steps run with the filesystem's exclusive create
(`mode="create"`) and without ETags: the lock is then advisory, only as good as that filesystem's
create-if-absent (documented in the README).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..core.errors import LockTimeoutError
from ..core.paths import ObjectPath
from ..core.records import LOCK_NAME
from .fsspec_support import translated

#: seconds without renewal after which a lock counts as abandoned
DEFAULT_TTL = 60.0


class LockLostError(LockTimeoutError):
    """The run lock was taken over while this process held it (it stalled past the TTL)."""


class _ConditionFailed(Exception):
    """A conditional write or delete was refused (412, or 409 for a concurrent conditional)."""


def _condition_failed(exc: BaseException) -> bool:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return False
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    code = response.get("Error", {}).get("Code")
    return status in (409, 412) or code in ("PreconditionFailed", "ConditionalRequestConflict")


class _S3Objects:
    """Conditional writes through the botocore client that s3fs holds (not s3fs's wrappers,
    which turn a 412 into a generic OSError)."""

    def __init__(self, fs: Any, key: str) -> None:
        self.fs = fs
        self.bucket, self.key, _ = fs.split_path(key)

    def _call(self, method: str, **kwargs: Any) -> Any:
        from botocore.exceptions import ClientError  # type: ignore[import-untyped]
        from fsspec.asyn import sync  # type: ignore[import-untyped]

        sync(self.fs.loop, self.fs.set_session)
        try:
            return sync(self.fs.loop, getattr(self.fs.s3, method), **kwargs)
        except ClientError as exc:
            if _condition_failed(exc):
                raise _ConditionFailed(method) from exc
            code = exc.response.get("Error", {}).get("Code")
            if code in ("NoSuchKey", "404", "NotFound"):
                raise FileNotFoundError(self.key) from exc
            if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 403:
                raise PermissionError(str(exc)) from exc
            raise

    def create(self, body: bytes) -> str:
        return str(
            self._call("put_object", Bucket=self.bucket, Key=self.key, Body=body, IfNoneMatch="*")[
                "ETag"
            ]
        )

    def replace(self, body: bytes, etag: str) -> str:
        return str(
            self._call("put_object", Bucket=self.bucket, Key=self.key, Body=body, IfMatch=etag)[
                "ETag"
            ]
        )

    def read(self) -> tuple[bytes, str] | None:
        from fsspec.asyn import sync

        try:
            out = self._call("get_object", Bucket=self.bucket, Key=self.key)
        except FileNotFoundError:
            return None
        body = out["Body"]

        async def read_body() -> bytes:
            async with body as stream:
                return bytes(await stream.read())

        return sync(self.fs.loop, read_body), str(out["ETag"])

    def delete(self, etag: str) -> None:
        self._call("delete_object", Bucket=self.bucket, Key=self.key, IfMatch=etag)


class _PlainObjects:
    """Any other fsspec filesystem: exclusive create where it has one; the content itself
    stands in for an ETag (compare, then act: not atomic, hence advisory)."""

    def __init__(self, fs: Any, key: str) -> None:
        self.fs = fs
        self.key = key

    def create(self, body: bytes) -> str:
        try:
            self.fs.pipe_file(self.key, body, mode="create")
        except FileExistsError:
            raise _ConditionFailed("create") from None
        return body.decode()

    def read(self) -> tuple[bytes, str] | None:
        try:
            body = bytes(self.fs.cat_file(self.key))
        except FileNotFoundError:
            return None
        return body, body.decode(errors="replace")

    def replace(self, body: bytes, etag: str) -> str:
        current = self.read()
        if current is None or current[1] != etag:
            raise _ConditionFailed("replace")
        self.fs.pipe_file(self.key, body)
        return body.decode()

    def delete(self, etag: str) -> None:
        current = self.read()
        if current is None or current[1] != etag:
            raise _ConditionFailed("delete")
        self.fs.rm_file(self.key)


class ObjectLock:
    """`<run>/.ckpt.lock` on an object store; see the module docstring for the protocol."""

    def __init__(self, fs: Any, run: ObjectPath, run_key: str, ttl: float = DEFAULT_TTL) -> None:
        self.run = run
        self.url = run / LOCK_NAME
        self.ttl = ttl
        key = f"{run_key}/{LOCK_NAME}"
        is_s3 = run.protocol in ("s3", "s3a") and hasattr(fs, "split_path")
        self._objects: _S3Objects | _PlainObjects = (
            _S3Objects(fs, key) if is_s3 else _PlainObjects(fs, key)
        )
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"
        self._etag: str | None = None
        self._lost = False
        self._guard = threading.Lock()
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def _body(self) -> bytes:
        now = time.time()
        doc = {"owner": self.owner, "acquired_at": now, "expires_at": now + self.ttl}
        return json.dumps(doc).encode()

    def _abandoned(self, body: bytes, seen_for: float) -> bool:
        if seen_for > self.ttl:
            return True
        try:
            expires_at = float(json.loads(body)["expires_at"])
        except (ValueError, KeyError, TypeError):
            return seen_for > self.ttl  # unreadable: only by observation
        return time.time() > expires_at + self.ttl

    def acquire(self, timeout: float | None) -> None:
        """Wait for the lock; LockTimeoutError (exit 5) after `timeout` seconds."""
        start = time.monotonic()
        delay = 0.05
        seen: tuple[str, float] | None = None  # (etag, when first seen) of the current holder
        holder = "another ckpt"
        with translated(self.url, "cannot lock run directory"):
            while True:
                try:
                    self._etag = self._objects.create(self._body())
                    break
                except _ConditionFailed:
                    pass
                current = self._objects.read()
                if current is None:
                    continue  # released in between: try again at once
                body, etag = current
                holder = _owner_of(body) or holder
                now = time.monotonic()
                if seen is None or seen[0] != etag:
                    seen = (etag, now)
                if self._abandoned(body, now - seen[1]):
                    try:
                        self._etag = self._objects.replace(self._body(), etag)
                        break
                    except _ConditionFailed:
                        seen = None
                        continue
                if timeout is not None and now - start >= timeout:
                    raise LockTimeoutError(
                        f"{self.run}: another ckpt save or prune ({holder}) held the lock "
                        f"for more than {timeout:g}s"
                    )
                remaining = float("inf") if timeout is None else timeout - (now - start)
                time.sleep(max(0.0, min(delay, remaining)))
                delay = min(delay * 2, 0.5)
        self._renewer = threading.Thread(target=self._renew, name="ckpt-lock-renew", daemon=True)
        self._renewer.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            with self._guard:
                etag = self._etag
                if etag is None or self._lost:
                    return
                try:
                    self._etag = self._objects.replace(self._body(), etag)
                except _ConditionFailed:
                    self._lost = True
                    return
                except Exception:  # noqa: BLE001 - a network blip: try again next round
                    continue

    def check(self) -> None:
        """Raise LockLostError when another process has taken the lock over."""
        with self._guard:
            if self._lost:
                raise LockLostError(
                    f"{self.run}: lost the run lock (not renewed for {self.ttl:g}s, "
                    "another ckpt took it over); stopped before changing anything more"
                )

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        with self._guard:
            etag, self._etag = self._etag, None
            if etag is None or self._lost:
                return
        try:
            with translated(self.url, "cannot release the run lock"):
                self._objects.delete(etag)
        except _ConditionFailed:
            pass  # taken over after all: it is not ours to delete


def _owner_of(body: bytes) -> str | None:
    try:
        owner = json.loads(body)["owner"]
    except (ValueError, KeyError, TypeError):
        return None
    return str(owner).rsplit(":", 1)[0] if isinstance(owner, str) else None


@contextmanager
def object_lock(
    fs: Any, run: ObjectPath, run_key: str, timeout: float | None, ttl: float = DEFAULT_TTL
) -> Iterator[ObjectLock]:
    """Hold `<run>/.ckpt.lock` for the duration of the block."""
    lock = ObjectLock(fs, run, run_key, ttl)
    lock.acquire(timeout)
    try:
        yield lock
    finally:
        lock.release()
